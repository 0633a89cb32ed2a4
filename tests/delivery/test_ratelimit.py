"""The shared token bucket: reservations from any number of workers add up to the adapter's rate."""

from __future__ import annotations


def test_reservations_queue_behind_each_other(db_url):
    from broadcaster.db import get_engine
    from broadcaster.delivery.ratelimit import reserve

    engine = get_engine()
    # burst: one second of tokens is available at once
    assert reserve(engine, "twilio-sms", 10.0, 10) == 0.0
    # the next 10 must wait about a second, the 10 after that about two (as if from another worker)
    second = reserve(engine, "twilio-sms", 10.0, 10)
    third = reserve(engine, "twilio-sms", 10.0, 10)
    assert 0.8 < second <= 1.0
    assert 1.8 < third <= 2.0
    # buckets are per adapter
    assert reserve(engine, "sendgrid", 10.0, 5) == 0.0


def test_sms_reserves_one_token_per_segment(memory, drain, add_subscribers, publish, monkeypatch, emergency_category):
    """Sender throughput is counted in segments: 3 recipients of a 2-segment text take 6 tokens."""
    from sqlalchemy import select

    from broadcaster.channels.base import Limits
    from broadcaster.db import session_scope
    from broadcaster.delivery.testing import MemoryAdapter
    from broadcaster.models.delivery import RateBucket
    from broadcaster.rendering.sms import analyze

    monkeypatch.setattr(MemoryAdapter, "limits", Limits(batch_size=100, rate_per_second=1000.0))
    add_subscribers(3)
    body = "Water is off in the north district until further notice. " * 3  # GSM-7, 2 segments
    assert analyze(body.strip()).segments == 2
    publish(channels=["memory"], body=body.strip(), summary="")
    drain()
    assert len(memory.sent) == 3
    assert analyze(memory.sent[0][3]).segments == 2  # what was sent is the 2-segment text
    with session_scope() as session:
        tokens = session.scalar(select(RateBucket.tokens).where(RateBucket.name == "memory"))
    assert tokens == 1000.0 - 3 * 2


def test_rate_cost_counts_segments_for_sms_only():
    from broadcaster.channels.base import Message
    from broadcaster.channels.webhook import Webhook
    from broadcaster.delivery.testing import MemoryAdapter

    long_text = "x" * 200  # GSM-7, 2 segments
    assert MemoryAdapter(None).rate_cost(Message(text="short"), 5) == 5
    assert MemoryAdapter(None).rate_cost(Message(text=long_text), 5) == 10
    assert MemoryAdapter(None).rate_cost(Message(text="Überschwemmung 🌊"), 4) == 4  # UCS-2, one segment
    assert Webhook.rate_cost(object.__new__(Webhook), Message(text=long_text), 5) == 5
