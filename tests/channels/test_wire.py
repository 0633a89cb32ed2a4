"""Every built-in adapter, with its real SDK, against the fake provider server: the exact requests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qs, urlparse

import pytest

from broadcaster.channels.banner import Banner
from broadcaster.channels.base import Message, Recipient
from broadcaster.channels.mastodon import MastodonPost
from broadcaster.channels.sendgrid import SendGridEmail
from broadcaster.channels.twilio import TwilioSms, TwilioVoice
from broadcaster.channels.webhook import Webhook
from broadcaster.channels.x import XPost
from broadcaster.fakes.credentials import SENDGRID_KEY, TWILIO_SID, TWILIO_TOKEN


def recipients(n: int, fmt: str = "+1555000{:04d}") -> list[Recipient]:
    return [Recipient(f"d{i}", fmt.format(i), idempotency_key=f"key-{i}") for i in range(n)]


async def test_twilio_sms_requests(fake, make_settings):
    adapter = TwilioSms.from_settings(make_settings(public_url="https://bc.example"))
    try:
        results = await adapter.send(Message(text="Water off £ until 6pm"), recipients(3))
    finally:
        await adapter.aclose()
    assert [r.delivery_id for r in results] == ["d0", "d1", "d2"]
    assert all(r.ok and r.provider_message_id.startswith("SM") for r in results)
    assert len({r.provider_message_id for r in results}) == 3
    reqs = sorted(fake.requests("twilio"), key=lambda r: r.form_value("To"))
    assert len(reqs) == 3
    expected_auth = "Basic " + base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
    for i, req in enumerate(reqs):
        assert req.method == "POST"
        assert req.path == f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
        assert req.headers["authorization"] == expected_auth
        assert req.headers["content-type"].startswith("application/x-www-form-urlencoded")
        form = req.form
        assert set(form) == {"To", "From", "Body", "StatusCallback"}
        assert form["To"] == [f"+1555000{i:04d}"]
        assert form["From"] == ["+15005550006"]
        assert form["Body"] == ["Water off £ until 6pm"]
        callback = urlparse(form["StatusCallback"][0])
        assert callback.netloc == "bc.example" and callback.path == "/v1/webhooks/twilio/status"
        assert parse_qs(callback.query) == {"delivery_id": [f"d{i}"], "idempotency_key": [f"key-{i}"]}


async def test_twilio_messaging_service_replaces_from(fake, make_settings):
    adapter = TwilioSms.from_settings(make_settings(twilio_messaging_service_sid="MG" + "1" * 32))
    try:
        [result] = await adapter.send(Message(text="hi"), recipients(1))
    finally:
        await adapter.aclose()
    assert result.ok
    [req] = fake.requests("twilio")
    assert req.form_value("MessagingServiceSid") == "MG" + "1" * 32
    assert "From" not in req.form


async def test_twilio_voice_twiml_in_update_language(fake, make_settings):
    adapter = TwilioVoice.from_settings(make_settings(twilio_voice_from="+15005550007"))
    message = Message(text="Coupure d'eau & gaz", locale="fr", data={"voice_language": "fr-FR"})
    try:
        [result] = await adapter.send(message, recipients(1))
    finally:
        await adapter.aclose()
    assert result.ok and result.provider_message_id.startswith("CA")
    [req] = fake.requests("twilio")
    assert req.path == f"/2010-04-01/Accounts/{TWILIO_SID}/Calls.json"
    assert req.form_value("From") == "+15005550007"
    assert req.form_value("To") == "+15550000000"
    say = '<Say language="fr-FR" voice="alice">Coupure d\'eau &amp; gaz</Say>'
    assert req.form_value("Twiml") == (
        f'<?xml version="1.0" encoding="UTF-8"?><Response>{say}<Pause length="1" />{say}</Response>'
    )
    assert "delivery_id=d0" in req.form_value("StatusCallback")


async def test_sendgrid_batches_of_1000_personalizations(fake, make_settings):
    adapter = SendGridEmail.from_settings(make_settings())
    message = Message(
        text="Plain -unsubscribe_url-", html="<p>HTML</p>", subject="[TEST] Outage", update_id=42, test=True
    )
    rcpts = [
        Recipient(
            f"d{i}",
            f"user{i}@example.org",
            idempotency_key=f"k{i}",
            variables={"unsubscribe_url": f"https://bc.example/u/{i}"},
        )
        for i in range(2500)
    ]
    results = await adapter.send(message, rcpts)
    assert [r.delivery_id for r in results] == [r.delivery_id for r in rcpts]
    assert all(r.ok for r in results)
    reqs = fake.requests("sendgrid")
    assert sorted(len(r.json["personalizations"]) for r in reqs) == [500, 1000, 1000]
    message_ids = {r.provider_message_id for r in results}
    assert len(message_ids) == 3 and None not in message_ids
    for req in reqs:
        assert req.path == "/v3/mail/send"
        assert req.headers["authorization"] == f"Bearer {SENDGRID_KEY}"
        body = req.json
        assert body["from"] == {"email": "alerts@broadcaster.example", "name": "Alerts"}
        assert body["subject"] == "[TEST] Outage"
        assert body["content"] == [
            {"type": "text/plain", "value": "Plain -unsubscribe_url-"},
            {"type": "text/html", "value": "<p>HTML</p>"},
        ]
        assert body["categories"] == ["broadcaster", "test"]
    first = next(r for r in reqs if r.json["personalizations"][0]["to"] == [{"email": "user0@example.org"}])
    assert first.json["personalizations"][0] == {
        "to": [{"email": "user0@example.org"}],
        "custom_args": {"delivery_id": "d0", "idempotency_key": "k0", "update_id": "42"},
        "substitutions": {"-unsubscribe_url-": "https://bc.example/u/0"},
        "headers": {
            "List-Unsubscribe": "<https://bc.example/u/0>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    }


async def test_sendgrid_never_repeats_an_address_in_one_request(fake, make_settings):
    adapter = SendGridEmail.from_settings(make_settings())
    rcpts = [Recipient("a", "x@example.org"), Recipient("b", "X@example.org"), Recipient("c", "y@example.org")]
    results = await adapter.send(Message(text="t", subject="s"), rcpts)
    assert [r.ok for r in results] == [True, True, True]
    reqs = fake.requests("sendgrid")
    assert sorted(len(r.json["personalizations"]) for r in reqs) == [1, 2]


async def test_x_create_tweet(fake, make_settings):
    adapter = XPost.from_settings(make_settings())
    try:
        [result] = await adapter.send(Message(text="Outage resolved https://bc.example/status"), [Recipient("d0", "x")])
    finally:
        await adapter.aclose()
    assert result.ok and result.provider_message_id.isdigit()
    [req] = fake.requests("x")
    assert (req.method, req.path) == ("POST", "/2/tweets")
    assert req.json == {"text": "Outage resolved https://bc.example/status"}
    auth = req.headers["authorization"]
    assert auth.startswith("OAuth ")
    assert 'oauth_consumer_key="fake-consumer-key"' in auth and 'oauth_token="fake-access-token"' in auth
    assert 'oauth_signature_method="HMAC-SHA1"' in auth


async def test_mastodon_status_with_idempotency_key(fake, make_settings):
    adapter = MastodonPost.from_settings(make_settings())
    message = Message(text="Panne résolue", locale="fr")
    [first] = await adapter.send(message, [Recipient("d0", "mastodon", idempotency_key="idem-1")])
    [again] = await adapter.send(message, [Recipient("d0", "mastodon", idempotency_key="idem-1")])
    assert first.ok and again.ok and first.provider_message_id == again.provider_message_id
    reqs = fake.requests("mastodon")
    assert len(reqs) == 2
    req = reqs[0]
    assert (req.method, req.path) == ("POST", "/api/v1/statuses")
    assert req.headers["authorization"] == "Bearer fake-mastodon-token"
    assert req.headers["idempotency-key"] == "idem-1"
    assert req.form_value("status") == "Panne résolue"
    assert req.form_value("language") == "fr"
    assert req.form_value("visibility") == "public"


def _verify(req, secret: str) -> bool:
    ts = req.headers["x-broadcaster-timestamp"]
    digest = hmac.new(secret.encode(), ts.encode() + b"." + req.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(req.headers["x-broadcaster-signature"], f"sha256={digest}")


@pytest.mark.parametrize("shape", ["json", "slack", "teams"])
async def test_webhook_payload_shapes_and_signature(fake, make_settings, shape):
    settings = make_settings(webhook_format=shape, webhook_urls=f"{fake.webhook_url('a')},{fake.webhook_url('b')}")
    adapter = Webhook.from_settings(settings)
    payload = {"event": "update.published", "text": "Water off", "incident": {"title": "Water outage"}}
    message = Message(text="Water off", severity="critical", data={"payload": payload})
    try:
        [result] = await adapter.send(message, [Recipient("d0", "webhook", idempotency_key="k0")])
    finally:
        await adapter.aclose()
    assert result.ok
    reqs = sorted(fake.requests("webhook"), key=lambda r: r.path)
    assert [r.path for r in reqs] == ["/hooks/a", "/hooks/b"]
    for req in reqs:
        assert req.headers["content-type"] == "application/json"
        assert req.headers["idempotency-key"] == "k0"
        assert _verify(req, "fake-webhook-secret")
        assert not _verify(req, "another-secret")
    body = reqs[0].json
    if shape == "json":
        assert body == payload
    elif shape == "slack":
        assert body == {
            "text": "Water off",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Water off"}}],
            "unfurl_links": False,
        }
    else:
        assert body == {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": "Water outage",
            "themeColor": "DC2626",
            "title": "Water outage",
            "text": "Water off",
        }


async def test_webhook_recipient_url_targets_only_that_url(fake, make_settings):
    adapter = Webhook.from_settings(make_settings(webhook_urls=f"{fake.webhook_url('a')},{fake.webhook_url('b')}"))
    try:
        [result] = await adapter.send(Message(text="x"), [Recipient("d0", fake.webhook_url("b"))])
    finally:
        await adapter.aclose()
    assert result.ok
    assert [r.path for r in fake.requests("webhook")] == ["/hooks/b"]
    assert adapter.broadcast_addresses() == [fake.webhook_url("a"), fake.webhook_url("b")]


async def test_banner_always_configured_and_succeeds(make_settings):
    adapter = Banner.from_settings(make_settings())
    assert adapter.broadcast_addresses() == ["banner"]
    [result] = await adapter.send(Message(text="t", update_id=9), [Recipient("d0", "banner")])
    assert result.ok and result.provider_message_id == "banner:9"


async def test_checks_against_the_fake(fake, make_settings):
    settings = make_settings()
    for cls in (TwilioSms, SendGridEmail, XPost, MastodonPost, Webhook, Banner):
        adapter = cls.from_settings(settings)
        try:
            result = await adapter.check()
        finally:
            await adapter.aclose()
        assert result.ok, (cls.name, result.detail)
    paths = {r.path for r in fake.requests()}
    assert f"/2010-04-01/Accounts/{TWILIO_SID}.json" in paths
    assert {"/v3/scopes", "/2/users/me", "/api/v1/accounts/verify_credentials"} <= paths


async def test_describe_masks_secrets(make_settings):
    settings = make_settings()
    for cls in (TwilioSms, TwilioVoice, SendGridEmail, XPost, MastodonPost, Webhook):
        adapter = cls.from_settings(settings)
        shown = json.dumps(adapter.describe())
        for secret in (
            "fake-twilio-token",
            "SG.fake-sendgrid-key",
            "fake-consumer-secret",
            "fake-access-secret",
            "fake-mastodon-token",
            "fake-webhook-secret",
        ):
            assert secret not in shown, (cls.name, secret)
        assert secret not in repr(adapter)
    twilio = TwilioSms.from_settings(settings).describe()
    assert twilio["config"]["auth_token"] == "****oken"
    assert twilio["kind"] == "sms" and twilio["limits"]["max_length"] == 3


def test_not_configured_without_credentials(monkeypatch, tmp_path):
    from broadcaster.settings import Settings

    monkeypatch.chdir(tmp_path)
    settings = Settings(_env_file=None)
    for cls in (TwilioSms, TwilioVoice, SendGridEmail, XPost, MastodonPost, Webhook):
        assert cls.from_settings(settings) is None
    assert Banner.from_settings(settings) is not None
