"""Provider errors map to transient (retry, honouring Retry-After / rate-limit resets) or permanent."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from broadcaster.channels.base import ErrorClass, Message, Recipient
from broadcaster.channels.mastodon import MastodonPost
from broadcaster.channels.sendgrid import SendGridEmail
from broadcaster.channels.twilio import TwilioSms, TwilioVoice
from broadcaster.channels.webhook import Webhook
from broadcaster.channels.x import XPost

T, P = ErrorClass.transient, ErrorClass.permanent
SMS_TO = "+15550001111"


def _in(seconds: int) -> str:
    return str(int(time.time()) + seconds)


def _iso_in(seconds: int) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


MASTODON_LIMIT = {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0"}

# (adapter class, provider, injected status, injected headers/body, recipient address,
#  expected class, expected code, expected retry_after range)
CASES = [
    (TwilioSms, "twilio", 429, {"headers": {"Retry-After": "7"}}, SMS_TO, T, "20429", (7, 7)),
    (TwilioSms, "twilio", 503, {}, SMS_TO, T, "503", None),
    (TwilioSms, "twilio", 500, {}, SMS_TO, T, "500", None),
    (
        TwilioSms,
        "twilio",
        401,
        {"body": {"code": 20003, "message": "Authenticate", "status": 401}},
        SMS_TO,
        P,
        "20003",
        None,
    ),
    (
        TwilioSms,
        "twilio",
        403,
        {"body": {"code": 20403, "message": "Forbidden", "status": 403}},
        SMS_TO,
        P,
        "20403",
        None,
    ),
    (TwilioSms, "twilio", None, {}, "+15005550001", P, "21211", None),  # invalid To (fake's validation)
    (TwilioSms, "twilio", None, {}, "not-a-number", P, "21211", None),
    (TwilioSms, "twilio", None, {}, "+15005550004", P, "21610", None),  # unsubscribed (STOP)
    (
        TwilioSms,
        "twilio",
        400,
        {"body": {"code": 30001, "message": "Queue overflow", "status": 400}},
        SMS_TO,
        T,
        "30001",
        None,
    ),
    (TwilioVoice, "twilio", 429, {"headers": {"Retry-After": "3"}}, SMS_TO, T, "20429", (3, 3)),
    (
        SendGridEmail,
        "sendgrid",
        429,
        {"headers": {"X-RateLimit-Reset": lambda: _in(30)}},
        "a@example.org",
        T,
        "http_429",
        (25, 31),
    ),
    (SendGridEmail, "sendgrid", 429, {"headers": {"Retry-After": "12"}}, "a@example.org", T, "http_429", (12, 12)),
    (SendGridEmail, "sendgrid", 500, {}, "a@example.org", T, "http_500", None),
    (SendGridEmail, "sendgrid", 503, {}, "a@example.org", T, "http_503", None),
    (SendGridEmail, "sendgrid", 400, {}, "a@example.org", P, "http_400", None),
    (SendGridEmail, "sendgrid", 401, {}, "a@example.org", P, "http_401", None),
    (SendGridEmail, "sendgrid", 403, {}, "a@example.org", P, "http_403", None),
    (SendGridEmail, "sendgrid", 413, {}, "a@example.org", P, "http_413", None),
    (XPost, "x", 429, {"headers": {"x-rate-limit-reset": lambda: _in(60)}}, "x", T, "x_429", (55, 61)),
    (XPost, "x", 500, {}, "x", T, "x_500", None),
    (XPost, "x", 503, {}, "x", T, "x_503", None),
    (XPost, "x", 400, {}, "x", P, "x_400", None),
    (XPost, "x", 401, {}, "x", P, "x_401", None),
    (
        XPost,
        "x",
        403,
        {"body": {"detail": "You are not allowed to create a Tweet with duplicate content."}},
        "x",
        P,
        "x_403",
        None,
    ),
    (
        MastodonPost,
        "mastodon",
        429,
        {"headers": {**MASTODON_LIMIT, "X-RateLimit-Reset": lambda: _iso_in(40)}},
        "m",
        T,
        "mastodon_429",
        (30, 45),  # Mastodon.py corrects the reset by the server clock (whole seconds)
    ),
    (MastodonPost, "mastodon", 502, {}, "m", T, "mastodon_502", None),
    (MastodonPost, "mastodon", 503, {}, "m", T, "mastodon_503", None),
    (MastodonPost, "mastodon", 401, {}, "m", P, "mastodon_401", None),
    (MastodonPost, "mastodon", 422, {}, "m", P, "mastodon_422", None),
    (Webhook, "webhook", 429, {"headers": {"Retry-After": "9"}}, "webhook", T, "http_429", (9, 9)),
    (Webhook, "webhook", 500, {}, "webhook", T, "http_500", None),
    (Webhook, "webhook", 408, {}, "webhook", T, "http_408", None),
    (Webhook, "webhook", 404, {}, "webhook", P, "http_404", None),
    (Webhook, "webhook", 410, {}, "webhook", P, "http_410", None),
]


@pytest.mark.parametrize(
    ("cls", "provider", "status", "fault", "address", "expected", "code", "retry"),
    CASES,
    ids=[f"{c[0].name}-{c[2] or c[4]}-{i}" for i, c in enumerate(CASES)],
)
async def test_error_mapping(fake, make_settings, cls, provider, status, fault, address, expected, code, retry):
    adapter = cls.from_settings(make_settings())
    if status is not None:
        # reset times are computed now, not at collection (the suite may run long before this test)
        headers = {k: v() if callable(v) else v for k, v in fault.get("headers", {}).items()}
        fake.inject(provider, status, **{**fault, "headers": headers})
    message = Message(
        text=f"error mapping {provider} {status} {address}", subject="s", data={"voice_language": "en-US"}
    )
    try:
        [result] = await adapter.send(message, [Recipient("d0", address, idempotency_key="k")])
    finally:
        await adapter.aclose()
    assert not result.ok
    error = result.error
    assert error.error_class is expected, error
    assert error.code == code, error
    if retry is None:
        assert error.retry_after is None
    else:
        assert retry[0] <= error.retry_after <= retry[1], error
    if status is not None:
        assert error.status == status


@pytest.mark.parametrize("cls", [TwilioSms, SendGridEmail, XPost, MastodonPost, Webhook])
async def test_timeouts_are_transient(fake, make_settings, cls):
    provider = {"twilio-sms": "twilio", "sendgrid": "sendgrid", "x": "x", "mastodon": "mastodon"}.get(
        cls.name, "webhook"
    )
    adapter = cls.from_settings(make_settings(provider_timeout_seconds="0.3"))
    fake.inject(provider, None, delay=1.0)  # answer normally, but too late
    address = {"twilio-sms": SMS_TO, "sendgrid": "a@example.org"}.get(cls.name, "webhook")
    try:
        [result] = await adapter.send(Message(text="slow", subject="s"), [Recipient("d0", address)])
    finally:
        await adapter.aclose()
    assert not result.ok
    assert result.error.error_class is T
    assert result.error.code in {"timeout", "network"}


async def test_slow_response_within_timeout_succeeds(fake, make_settings):
    adapter = TwilioSms.from_settings(make_settings(provider_timeout_seconds="5"))
    fake.inject("twilio", None, delay=0.2)
    try:
        [result] = await adapter.send(Message(text="slow but fine"), [Recipient("d0", SMS_TO)])
    finally:
        await adapter.aclose()
    assert result.ok


async def test_connection_refused_is_transient(make_settings):
    from broadcaster.fakes.testing import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    adapter = TwilioSms.from_settings(make_settings(twilio_base_url=dead))
    try:
        [result] = await adapter.send(Message(text="x"), [Recipient("d0", SMS_TO)])
    finally:
        await adapter.aclose()
    assert result.error.error_class is T and result.error.code == "network"


async def test_one_failure_in_a_batch_does_not_fail_the_others(fake, make_settings):
    adapter = TwilioSms.from_settings(make_settings())
    rcpts = [Recipient("ok1", SMS_TO), Recipient("bad", "+15005550004"), Recipient("ok2", "+15550002222")]
    try:
        results = await adapter.send(Message(text="x"), rcpts)
    finally:
        await adapter.aclose()
    assert [(r.delivery_id, r.ok) for r in results] == [("ok1", True), ("bad", False), ("ok2", True)]
    assert results[1].error.code == "21610" and results[1].error.error_class is P
