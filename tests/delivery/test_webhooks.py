"""Receipts and opt-in/opt-out: signed Twilio/SendGrid webhooks (403 and nothing changed when the
signature is bad), inbound STOP/START/HELP, RFC 8058 one-click unsubscribe, double opt-in."""

from __future__ import annotations

import base64
import json
import time

import pytest
from sqlalchemy import func, select

TOKEN = "twilio-test-token"


@pytest.fixture
def signed(monkeypatch, memory):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from broadcaster.settings import get_settings

    key = ec.generate_private_key(ec.SECP256R1())
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("SENDGRID_EVENT_PUBLIC_KEY", base64.b64encode(der).decode())
    monkeypatch.setenv("SECRET_KEY", "test-secret-key-for-tokens")
    get_settings.cache_clear()

    def sendgrid_headers(body: bytes, ts: str | None = None) -> dict[str, str]:
        ts = ts or str(int(time.time()))  # SendGrid signs when it sends; more than 5 minutes off is refused
        sig = key.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(sig).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": ts,
            "Content-Type": "application/json",
        }

    return sendgrid_headers


def twilio_sig(path: str, params: dict[str, str]) -> dict[str, str]:
    from twilio.request_validator import RequestValidator

    return {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(f"http://testserver{path}", params)}


def _sent_broadcast(drain, add_subscribers, publish, channel="memory"):
    add_subscribers(2)
    bid = publish(channels=[channel])["broadcast_id"]
    drain()
    from broadcaster.db import session_scope
    from broadcaster.models.delivery import Delivery

    with session_scope() as session:
        return list(session.scalars(select(Delivery).where(Delivery.broadcast_id == bid).order_by(Delivery.id)))


def _delivery(i: int):
    from broadcaster.db import session_scope
    from broadcaster.models.delivery import Delivery

    with session_scope() as session:
        return session.get(Delivery, i)


def _events() -> int:
    from broadcaster.db import session_scope
    from broadcaster.models.delivery import DeliveryEvent

    with session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(DeliveryEvent)))


def test_twilio_status_callback(signed, client, drain, add_subscribers, publish, emergency_category):
    d1, d2 = _sent_broadcast(drain, add_subscribers, publish)
    path = f"/v1/webhooks/twilio/status?delivery_id={d1.id}"
    params = {"MessageSid": "SM123", "MessageStatus": "delivered"}
    bad = client.post(path, data=params, headers={"X-Twilio-Signature": "bm9wZQ=="})
    assert bad.status_code == 403
    assert client.post(path, data=params).status_code == 403
    tampered = client.post(path, data=params | {"MessageStatus": "failed"}, headers=twilio_sig(path, params))
    assert tampered.status_code == 403
    assert _delivery(d1.id).status == "sent" and _events() == 0
    ok = client.post(path, data=params, headers=twilio_sig(path, params))
    assert ok.status_code == 204
    assert _delivery(d1.id).status == "delivered" and _events() == 1
    late = {"MessageSid": "SM123", "MessageStatus": "sent"}
    assert client.post(path, data=late, headers=twilio_sig(path, late)).status_code == 204
    assert _delivery(d1.id).status == "delivered"  # never backwards
    # matched by provider message id when no delivery_id is given
    mid = d2.provider_message_id
    path2 = "/v1/webhooks/twilio/status"
    failed = {"MessageSid": mid, "MessageStatus": "undelivered", "ErrorCode": "30003", "ErrorMessage": "Unreachable"}
    assert client.post(path2, data=failed, headers=twilio_sig(path2, failed)).status_code == 204
    row = _delivery(d2.id)
    assert (row.status, row.error_code, row.error_reason) == ("undelivered", "30003", "Unreachable")


def test_twilio_inbound_stop_start_help(signed, client, add_subscribers, emergency_category):
    from broadcaster.db import session_scope
    from broadcaster.models.delivery import Subscriber

    [sid] = add_subscribers(1, phone="+15550001111")
    path = "/v1/webhooks/twilio/inbound"

    def post(body: str, sign: bool = True):
        params = {"From": "+15550001111", "Body": body, "MessageSid": "SMin"}
        return client.post(path, data=params, headers=twilio_sig(path, params) if sign else {})

    def opted_out() -> bool:
        with session_scope() as session:
            return session.get(Subscriber, sid).sms_opted_out

    assert post("STOP", sign=False).status_code == 403
    assert not opted_out()
    resp = post(" stop ")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/xml")
    assert "<Message>" not in resp.text
    assert opted_out()
    assert post("START").status_code == 200 and not opted_out()
    assert post("unsubscribe").status_code == 200 and opted_out()
    help_reply = post("HELP")
    assert "Example Org" in help_reply.text and "STOP" in help_reply.text and opted_out()


def test_stop_suppresses_pending_deliveries(signed, client, add_subscribers, publish, emergency_category):
    from broadcaster.db import session_scope
    from broadcaster.delivery.planner import plan_next
    from broadcaster.models.delivery import Delivery

    add_subscribers(2)
    bid = publish(channels=["memory"])["broadcast_id"]
    with session_scope() as session:
        plan_next(session)
    path = "/v1/webhooks/twilio/inbound"
    params = {"From": "+15550000001", "Body": "STOP"}
    assert client.post(path, data=params, headers=twilio_sig(path, params)).status_code == 200
    with session_scope() as session:
        rows = dict(
            session.execute(select(Delivery.address, Delivery.status).where(Delivery.broadcast_id == bid)).all()
        )
    assert rows == {"+15550000001": "suppressed", "+15550000002": "pending"}


def test_sendgrid_events(signed, client, drain, add_subscribers, publish, emergency_category):
    d1, d2 = _sent_broadcast(drain, add_subscribers, publish, channel="memory-email")
    events = [
        {"email": d1.address, "event": "delivered", "delivery_id": str(d1.id), "sg_message_id": "x.filter0"},
        {"email": d2.address, "event": "bounce", "delivery_id": str(d2.id), "reason": "550 no such user"},
        {"email": d1.address, "event": "open", "delivery_id": str(d1.id)},
    ]
    body = json.dumps(events).encode()
    headers = signed(body)
    assert client.post("/v1/webhooks/sendgrid/events", content=body + b" ", headers=headers).status_code == 403
    wrong_ts = headers | {"X-Twilio-Email-Event-Webhook-Timestamp": "1700000001"}
    assert client.post("/v1/webhooks/sendgrid/events", content=body, headers=wrong_ts).status_code == 403
    garbage = headers | {"X-Twilio-Email-Event-Webhook-Signature": "%%%not-base64"}
    assert client.post("/v1/webhooks/sendgrid/events", content=body, headers=garbage).status_code == 403
    unsigned = {"Content-Type": "application/json"}
    assert client.post("/v1/webhooks/sendgrid/events", content=body, headers=unsigned).status_code == 403
    assert (_delivery(d1.id).status, _delivery(d2.id).status, _events()) == ("sent", "sent", 0)
    assert client.post("/v1/webhooks/sendgrid/events", content=body, headers=headers).status_code == 204
    assert _delivery(d1.id).status == "opened"
    row2 = _delivery(d2.id)
    assert (row2.status, row2.error_reason) == ("bounced", "550 no such user")
    assert _events() == 3


def test_sendgrid_events_replayed_or_retried_are_applied_once(
    signed, client, add_subscribers, publish, emergency_category
):
    """A signed batch is refused when its timestamp is more than 5 minutes off (a captured request replayed
    later), and events are deduplicated by `sg_event_id` (SendGrid retries a batch it got no 2xx for)."""
    from broadcaster.db import session_scope
    from broadcaster.delivery.planner import plan_next
    from broadcaster.models.delivery import Delivery, DeliveryEvent

    add_subscribers(1)
    bid = publish(channels=["memory-email"])["broadcast_id"]
    with session_scope() as session:
        plan_next(session)
        d = session.scalars(select(Delivery).where(Delivery.broadcast_id == bid)).one()
    events = [
        {"email": d.address, "event": "delivered", "delivery_id": str(d.id), "sg_event_id": "ZGVsaXZlcmVk-1"},
        {"email": d.address, "event": "open", "delivery_id": str(d.id), "sg_event_id": "b3Blbg-2"},
        {"email": d.address, "event": "open", "delivery_id": str(d.id), "sg_event_id": "b3Blbg-2"},  # same batch
        {"email": d.address, "event": "unsubscribe", "delivery_id": str(d.id), "sg_event_id": "x" * 300},
    ]
    body = json.dumps(events).encode()
    url = "/v1/webhooks/sendgrid/events"
    now = int(time.time())
    for ts in (now - 600, now + 600, 1700000000, "not-a-number"):  # the 300 s boundary: test below
        resp = client.post(url, content=body, headers=signed(body, str(ts)))
        assert resp.status_code == 403, (ts, resp.text)
        assert resp.json()["field"] == "X-Twilio-Email-Event-Webhook-Timestamp", resp.json()
    assert _events() == 0 and _delivery(d.id).status == "pending"
    assert client.post(url, content=body, headers=signed(body, str(now - 240))).status_code == 204
    assert _events() == 3 and _delivery(d.id).status == "opened"
    for _ in range(2):  # SendGrid's retries of the same batch, signed afresh
        assert client.post(url, content=body, headers=signed(body)).status_code == 204
    with session_scope() as session:
        rows = session.scalars(select(DeliveryEvent).order_by(DeliveryEvent.id)).all()
        assert [r.event for r in rows] == ["delivered", "open", "unsubscribe"]
        assert [r.payload["sg_event_id"][:8] for r in rows] == ["ZGVsaXZl", "b3Blbg-2", "xxxxxxxx"]
    # a later event on the same delivery still applies; an event without sg_event_id cannot be deduplicated
    later = json.dumps([{"event": "bounce", "delivery_id": str(d.id), "sg_event_id": "Ym91bmNl-3"}]).encode()
    assert client.post(url, content=later, headers=signed(later)).status_code == 204
    assert _events() == 4


def test_sendgrid_timestamp_tolerance_is_five_minutes_either_way():
    from broadcaster.delivery.receipts import _fresh

    now = 1_800_000_000.0
    assert [_fresh(str(int(now) + d), now) for d in (-301, -300, 0, 300, 301)] == [False, True, True, True, False]
    assert not _fresh("", now) and not _fresh("1.5e9", now) and _fresh(" 1800000000 ", now)


def test_one_click_unsubscribe(signed, client, add_subscribers, emergency_category):
    from broadcaster.db import session_scope
    from broadcaster.models.delivery import Subscriber
    from broadcaster.subscribers.tokens import unsubscribe_url

    [sid] = add_subscribers(1)
    url = unsubscribe_url(sid)
    path = url.removeprefix("http://testserver")
    page = client.get(path)
    assert page.status_code == 200 and "List-Unsubscribe" in page.text
    with session_scope() as session:
        assert not session.get(Subscriber, sid).email_opted_out  # GET alone never unsubscribes
    forged = client.post(path[:-3] + "abc", data={"List-Unsubscribe": "One-Click"})
    assert forged.status_code == 400
    resp = client.post(path, data={"List-Unsubscribe": "One-Click"})  # no cookies, no auth
    assert resp.status_code == 200
    with session_scope() as session:
        assert session.get(Subscriber, sid).email_opted_out


def test_self_service_subscribe_double_opt_in(signed, client, drain, emergency_category, monkeypatch):
    from broadcaster.db import session_scope
    from broadcaster.models.delivery import Subscriber
    from broadcaster.settings import get_settings

    monkeypatch.setenv("SUBSCRIBE_PHONE_COUNTRIES", "US")
    get_settings.cache_clear()

    bad = client.post("/v1/subscribe", json={"email": "nope", "categories": ["emergency"]})
    assert bad.status_code == 422 and bad.json()["field"] == "email"
    assert client.post("/v1/subscribe", json={"categories": ["emergency"]}).status_code == 422
    assert client.post("/v1/subscribe", json={"email": "a@example.org", "categories": ["x"]}).status_code == 422
    resp = client.post("/v1/subscribe", json={"email": "Reader@Example.org", "categories": ["emergency"]})
    assert resp.status_code == 202 and resp.json()["status"] == "pending_confirmation"
    form = client.post("/v1/subscribe", data={"phone": "+15550002222", "categories": "emergency"})
    assert form.status_code == 202 and "text/html" in form.headers["content-type"]
    drain()
    [(_, to, _, text)] = [s for s in signed_memory_sent() if s[0] == "memory-email"]
    assert to == "reader@example.org"
    link = next(w for w in text.split() if "/v1/subscribe/confirm?token=" in w)
    with session_scope() as session:
        sub = session.scalar(select(Subscriber).where(Subscriber.email == "reader@example.org"))
        assert not sub.email_confirmed
    assert client.get(link.removeprefix("http://testserver") + "x").status_code == 400
    assert client.post(link.removeprefix("http://testserver") + "x").status_code == 400
    assert client.get(link.removeprefix("http://testserver")).status_code == 200  # the landing page
    with session_scope() as session:  # GET alone never confirms (mail scanners follow links)
        assert not session.scalar(select(Subscriber).where(Subscriber.email == "reader@example.org")).email_confirmed
    assert client.post(link.removeprefix("http://testserver")).status_code == 200
    with session_scope() as session:
        sub = session.scalar(select(Subscriber).where(Subscriber.email == "reader@example.org"))
        from broadcaster.subscribers import memberships

        assert sub.email_confirmed and memberships.read(session, [sub.id])[sub.id].categories == ["emergency"]
        phone = session.scalar(select(Subscriber).where(Subscriber.phone == "+15550002222"))
        assert phone is not None and phone.source == "self" and not phone.phone_confirmed


def signed_memory_sent():
    from broadcaster.delivery.testing import MemoryAdapter

    return MemoryAdapter.sent


@pytest.mark.parametrize("token", ["abc.é", "é.é", "abc.\u00ff\u00ff", "x.\U0001f600"])
def test_non_ascii_link_tokens_are_not_valid_links(signed, client, token):
    """A non-ASCII signature part was a 500 (hmac.compare_digest refuses such str); now the 'not valid' page."""
    for resp in (
        client.get("/v1/subscribe/confirm", params={"token": token}),
        client.post("/v1/unsubscribe", params={"token": token}),
    ):
        assert resp.status_code == 400, resp.text
        assert "not valid" in resp.text


def test_nul_in_signed_receipts_is_422_naming_it(signed, client):
    """PostgreSQL cannot store NUL: a signed receipt carrying one was a field-less 422 there (and stored on
    SQLite); now refused on both, naming the parameter or the event."""
    from tests.core.helpers import row_counts

    path = "/v1/webhooks/twilio/status"
    params = {"MessageSid": "SM\x00", "MessageStatus": "delivered"}
    before = row_counts()
    resp = client.post(path, data=params, headers=twilio_sig(path, params))
    assert resp.status_code == 422 and resp.json()["field"] == "MessageSid", resp.text
    params = {"": "\x00", "MessageStatus": "delivered"}
    resp = client.post(path, data=params, headers=twilio_sig(path, params))
    assert resp.status_code == 422 and resp.json()["field"] == '""', resp.text
    body = json.dumps([{"event": "open"}, {"event": "open", "email": "a\x00@example.org"}]).encode()
    resp = client.post("/v1/webhooks/sendgrid/events", content=body, headers=signed(body))
    assert resp.status_code == 422 and resp.json()["field"] == "1", resp.text
    assert row_counts() == before


def test_subscribe_without_an_address_names_the_body(client, emergency_category):
    resp = client.post("/v1/subscribe", json={"categories": ["emergency"]})
    assert resp.status_code == 422 and resp.json()["field"] == "body", resp.text


def test_receipt_with_odd_ids_is_logged_not_a_500(signed, client):
    """A delivery_id past int64 was a 500 on SQLite (OverflowError), a SID over the column's 128 characters a
    field-less 422 on PostgreSQL; both are logged as unmatched receipts now."""
    from broadcaster.db import session_scope
    from broadcaster.models.delivery import DeliveryEvent

    path = "/v1/webhooks/twilio/status?delivery_id=99999999999999999999"
    params = {"MessageSid": "SM" + "x" * 200, "MessageStatus": "delivered"}
    assert client.post(path, data=params, headers=twilio_sig(path, params)).status_code == 204
    body = json.dumps([{"event": "open", "delivery_id": 2**70, "sg_message_id": "y" * 300}]).encode()
    assert client.post("/v1/webhooks/sendgrid/events", content=body, headers=signed(body)).status_code == 204
    with session_scope() as session:
        events = session.scalars(select(DeliveryEvent).order_by(DeliveryEvent.id)).all()
        assert [(e.delivery_id, len(e.provider_message_id)) for e in events] == [(None, 128), (None, 128)]


def test_sendgrid_events_with_odd_json_types_are_applied(
    signed, client, drain, add_subscribers, publish, emergency_category
):
    """Event fields are strings from SendGrid but any JSON in the signed batch: a non-string `email` was a 500
    (bound as a parameter), and so was a non-string `status` on a matched delivery."""
    d1, d2 = _sent_broadcast(drain, add_subscribers, publish, channel="memory-email")
    events = [
        {"event": "open", "sg_message_id": "abc", "email": {"a": 1}},
        {"event": "bounce", "delivery_id": str(d1.id), "status": 550, "reason": ["mailbox full"]},
        {"event": "dropped", "delivery_id": str(d2.id), "status": {"x": 1}},
    ]
    body = json.dumps(events).encode()
    assert client.post("/v1/webhooks/sendgrid/events", content=body, headers=signed(body)).status_code == 204
    assert (_delivery(d1.id).status, _delivery(d1.id).error_code) == ("bounced", "550")
    assert _delivery(d2.id).status == "failed" and _events() == 3
