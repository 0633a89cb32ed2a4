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
