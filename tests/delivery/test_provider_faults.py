"""Through the real Twilio and SendGrid adapters to the fake provider server: 429 (Retry-After), 5xx and
timeouts are retried within the attempt limit, permanent errors keep the provider's reason, nothing is lost."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import select
from tests.provider_env import UNLIMITED_RATES, use_fake_provider


@pytest.fixture
def fake(db_url, monkeypatch):
    """A fake provider of this test's own: injected timeouts leave requests hanging on the server after the test
    (a shared server would hand the next test's faults to the wrong requests)."""
    from broadcaster.fakes.testing import running_fake

    with running_fake() as running:
        yield use_fake_provider(
            running,
            monkeypatch,
            webhook=False,
            **UNLIMITED_RATES,
            PROVIDER_TIMEOUT_SECONDS="0.5",
            RETRY_BASE_SECONDS="0.01",
            RETRY_MAX_SECONDS="0.05",
            RETRY_MAX_ATTEMPTS="5",
        )


def _rows(bid: int) -> list:
    from broadcaster.db import session_scope
    from broadcaster.models.delivery import Delivery

    with session_scope() as session:
        return list(session.scalars(select(Delivery).where(Delivery.broadcast_id == bid).order_by(Delivery.id)))


def test_sms_faults_are_retried_bounded_and_nothing_is_lost(fake, drain, add_subscribers, publish, emergency_category):
    n = 20
    add_subscribers(n)
    fake.inject("twilio", 429, headers={"Retry-After": "0"}, times=3)
    fake.inject("twilio", 500, times=3)
    fake.inject("twilio", 503, times=2)
    fake.inject("twilio", None, delay=1.5, times=2)  # longer than PROVIDER_TIMEOUT_SECONDS: a timeout
    fake.inject("twilio", 400, body={"code": 21211, "message": "The 'To' number is not valid.", "status": 400})
    bid = publish(channels=["twilio-sms"])["broadcast_id"]
    drain(max_seconds=60)
    rows = _rows(bid)
    assert len(rows) == n
    statuses = sorted(r.status for r in rows)
    assert statuses == ["failed"] + ["sent"] * (n - 1)
    [failed] = [r for r in rows if r.status == "failed"]
    assert failed.error_code == "21211" and "not valid" in (failed.error_reason or "")
    assert failed.attempts == 1  # permanent: never retried
    assert all(1 <= r.attempts <= 5 for r in rows)
    assert sum(r.attempts for r in rows) == n + 10  # one extra attempt per transient fault, no more
    requests = [r for r in fake.requests("twilio") if r.path.endswith("/Messages.json") and r.method == "POST"]
    # a timed-out attempt the provider had accepted is found by a lookup (GET) and not sent again
    assert len(requests) <= sum(r.attempts for r in rows)
    ok_ids = [
        parse_qs(urlparse(r.form_value("StatusCallback") or "").query)["delivery_id"][0]
        for r in requests
        if r.status == 201
    ]
    assert sorted(ok_ids) == sorted(str(r.id) for r in rows if r.status == "sent")  # each sent exactly once


def test_email_outage_exhausts_attempts_with_reason(fake, drain, add_subscribers, publish, emergency_category):
    add_subscribers(3)
    fake.inject("sendgrid", 503, times=100)
    bid = publish(channels=["sendgrid"])["broadcast_id"]
    drain(max_seconds=60)
    rows = _rows(bid)
    assert [(r.status, r.attempts) for r in rows] == [("failed", 5)] * 3
    assert all((r.error_reason or "").startswith("gave up after 5 attempts") for r in rows)
    # every attempt reached the provider once (batched into SendGrid personalizations), no more
    sends = [r for r in fake.requests("sendgrid") if r.path.endswith("/mail/send")]
    assert sum(len(r.json["personalizations"]) for r in sends) == 15
    assert len(sends) < 15  # recipients retried together share a request
