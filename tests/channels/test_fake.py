"""The fake provider server on its own: provider-side validation and the control API over HTTP."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from broadcaster.fakes.credentials import MASTODON_TOKEN, SENDGRID_KEY, TWILIO_SID, TWILIO_TOKEN
from broadcaster.fakes.testing import running_fake

BASIC = "Basic " + base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
MESSAGES = f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"


@pytest.fixture
def http(fake):
    with httpx.Client(base_url=fake.url, timeout=5) as client:
        yield client


@pytest.fixture(scope="module")
def lenient_server():
    with running_fake(strict=False) as fake:
        yield fake


@pytest.fixture
def lenient(lenient_server):
    """A fake that accepts any well-formed credentials (X Bearer tokens included)."""
    lenient_server.reset()
    with httpx.Client(base_url=lenient_server.url, timeout=5) as client:
        yield client


TWILIO_CASES = [
    ({"To": "+15550001111", "From": "+15005550006"}, BASIC, 400, 21602),  # no Body
    ({"From": "+15005550006", "Body": "x"}, BASIC, 400, 21604),  # no To
    ({"To": "555", "From": "+15005550006", "Body": "x"}, BASIC, 400, 21211),
    ({"To": "+15550001111", "Body": "x"}, BASIC, 400, 21603),  # neither From nor MessagingServiceSid
    ({"To": "+15550001111", "From": "+15005550006", "Body": "x" * 1601}, BASIC, 400, 21617),
    ({"To": "+15550001111", "From": "+15005550006", "Body": "x"}, None, 401, 20003),
    (
        {"To": "+15550001111", "From": "+15005550006", "Body": "x"},
        "Basic " + base64.b64encode(b"ACother:t").decode(),
        401,
        20003,
    ),
]


@pytest.mark.parametrize(("form", "auth", "status", "code"), TWILIO_CASES)
def test_twilio_validation(http, form, auth, status, code):
    headers = {"Authorization": auth} if auth else {}
    resp = http.post(MESSAGES, data=form, headers=headers)
    assert resp.status_code == status
    assert resp.json()["code"] == code


def test_twilio_success_shape(http):
    resp = http.post(
        MESSAGES,
        data={"To": "+15550001111", "From": "+15005550006", "Body": "é" * 71},
        headers={"Authorization": BASIC},
    )
    assert resp.status_code == 201
    body = resp.json()
    assert body["sid"].startswith("SM") and len(body["sid"]) == 34
    assert (body["status"], body["num_segments"], body["to"]) == ("queued", "1", "+15550001111")  # é is GSM-7


def _mail(n: int, **extra) -> dict:
    return {
        "from": {"email": "a@example.org"},
        "subject": "s",
        "personalizations": [{"to": [{"email": f"u{i}@example.org"}]} for i in range(n)],
        "content": [{"type": "text/plain", "value": "v"}],
        **extra,
    }


SENDGRID_CASES = [
    (_mail(1000), 202, None),
    (_mail(1001), 400, "personalizations"),
    (_mail(0), 400, "personalizations"),
    (
        {**_mail(2), "personalizations": [{"to": [{"email": "x@e.org"}]}, {"to": [{"email": "X@e.org"}]}]},
        400,
        "personalizations.1.to",
    ),
    ({**_mail(1), "subject": ""}, 400, "subject"),
    (
        {**_mail(1), "content": [{"type": "text/html", "value": "h"}, {"type": "text/plain", "value": "t"}]},
        400,
        "content",
    ),
    ({**_mail(1), "from": {"email": "nope"}}, 400, "from.email"),
    ({**_mail(1), "headers": {"X-Count": 3}}, 400, "headers.X-Count"),
]


@pytest.mark.parametrize(("mail", "status", "field"), SENDGRID_CASES)
def test_sendgrid_validation(http, mail, status, field):
    resp = http.post("/v3/mail/send", json=mail, headers={"Authorization": f"Bearer {SENDGRID_KEY}"})
    assert resp.status_code == status, resp.text
    if status == 202:
        assert resp.content == b"" and resp.headers["x-message-id"]
    else:
        assert resp.json()["errors"][0]["field"] == field


def test_sendgrid_needs_bearer(http):
    assert http.post("/v3/mail/send", json=_mail(1)).status_code == 401


def test_x_validation(lenient):
    http = lenient
    auth = {"Authorization": "Bearer user-token"}
    assert http.post("/2/tweets", json={"text": "hi"}).status_code == 401
    assert http.post("/2/tweets", json={"text": "a" * 281}, headers=auth).status_code == 403
    first = http.post("/2/tweets", json={"text": "hello"}, headers=auth)
    assert first.status_code == 201 and first.json()["data"]["text"] == "hello"
    dup = http.post("/2/tweets", json={"text": "hello"}, headers=auth)
    assert dup.status_code == 403 and "duplicate" in dup.json()["detail"]
    assert http.post("/2/tweets", json={}, headers=auth).status_code == 400


def test_mastodon_validation(http):
    auth = {"Authorization": f"Bearer {MASTODON_TOKEN}"}
    assert http.post("/api/v1/statuses", data={"status": "x"}).status_code == 401
    assert http.post("/api/v1/statuses", data={"status": ""}, headers=auth).status_code == 422
    assert http.post("/api/v1/statuses", data={"status": "a" * 501}, headers=auth).status_code == 422
    assert http.post("/api/v1/statuses", data={"status": "a", "visibility": "x"}, headers=auth).status_code == 422
    ok = http.post("/api/v1/statuses", data={"status": "a" * 500}, headers=auth)
    assert ok.status_code == 200 and ok.json()["id"]


def test_control_api(lenient):
    http = lenient
    assert http.post(
        "/_fake/inject", json={"provider": "x", "status": 503, "headers": {"Retry-After": "4"}}
    ).json() == {"ok": True}
    assert http.post("/_fake/inject", json={"provider": "nope"}).status_code == 400
    resp = http.post("/2/tweets", json={"text": "t"}, headers={"Authorization": "Bearer a"})
    assert resp.status_code == 503 and resp.headers["retry-after"] == "4"
    assert http.post("/2/tweets", json={"text": "t"}, headers={"Authorization": "Bearer a"}).status_code == 201
    recorded = http.get("/_fake/requests", params={"provider": "x"}).json()
    assert [(r["path"], r["status"]) for r in recorded] == [("/2/tweets", 503), ("/2/tweets", 201)]
    assert json.loads(recorded[0]["body"]) == {"text": "t"}
    assert http.post("/_fake/reset").json() == {"ok": True}
    assert http.get("/_fake/requests").json() == []
    assert http.get("/nowhere").status_code == 404


def test_fault_limited_to_a_path_and_repeated(http, fake):
    fake.inject("twilio", 500, path="/Calls.json", times=2)
    ok = http.post(
        MESSAGES, data={"To": "+15550001111", "From": "+1555", "Body": "x"}, headers={"Authorization": BASIC}
    )
    assert ok.status_code == 201
    calls = MESSAGES.replace("Messages", "Calls")
    form = {"To": "+15550001111", "From": "+15005550006", "Twiml": "<Response/>"}
    assert [http.post(calls, data=form, headers={"Authorization": BASIC}).status_code for _ in range(3)] == [
        500,
        500,
        201,
    ]


def test_strict_fake_checks_credentials_exactly(http, lenient):
    twilio = {"To": "+15550001111", "From": "+15005550006", "Body": "x"}
    wrong_basic = "Basic " + base64.b64encode(f"{TWILIO_SID}:wrong".encode()).decode()
    assert http.post(MESSAGES, data=twilio, headers={"Authorization": wrong_basic}).status_code == 401
    assert lenient.post(MESSAGES, data=twilio, headers={"Authorization": wrong_basic}).status_code == 201
    wrong_bearer = {"Authorization": "Bearer wrong"}
    assert http.post("/v3/mail/send", json=_mail(1), headers=wrong_bearer).status_code == 401
    assert lenient.post("/v3/mail/send", json=_mail(1), headers=wrong_bearer).status_code == 202
    assert http.post("/api/v1/statuses", data={"status": "x"}, headers=wrong_bearer).status_code == 401
    assert http.post("/2/tweets", json={"text": "x"}, headers=wrong_bearer).status_code == 401


async def test_strict_fake_verifies_the_x_oauth1_signature(make_settings, fake):
    from broadcaster.channels.base import Message, Recipient
    from broadcaster.channels.x import XPost

    good = XPost.from_settings(make_settings())
    bad = XPost.from_settings(make_settings(x_consumer_secret="not-the-secret"))
    try:
        [ok] = await good.send(Message(text="signed: a&b=c"), [Recipient("d0", "x")])
        [refused] = await bad.send(Message(text="signed badly"), [Recipient("d1", "x")])
    finally:
        await good.aclose()
        await bad.aclose()
    assert ok.ok
    assert not refused.ok and refused.error.code == "x_401" and not refused.error.transient
