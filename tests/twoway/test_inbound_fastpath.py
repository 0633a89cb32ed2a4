"""The raw ASGI fast path for inbound SMS answers answers exactly as the FastAPI route does (issue 12)."""

from __future__ import annotations

import asyncio

import pytest
from tests.twoway.conftest import PHONES, sms

from broadcaster.responses import inbound_fastpath as fp

PATH = "/v1/webhooks/twilio/inbound"


@pytest.mark.parametrize(
    "url",
    [
        "http://testserver/v1/webhooks/twilio/inbound",
        "https://alerts.example.org/v1/webhooks/twilio/inbound",
        "https://alerts.example.org:443/v1/webhooks/twilio/inbound",
        "http://alerts.example.org:8080/v1/webhooks/twilio/inbound",
        "https://alerts.example.org/base/v1/webhooks/twilio/inbound",
    ],
)
def test_signature_matches_twilio_validator(url):
    from pydantic import SecretStr
    from twilio.request_validator import RequestValidator

    from broadcaster.delivery.receipts import twilio_signature_ok
    from broadcaster.settings import Settings

    token = "tok-\u00e9-123"
    settings = Settings.model_construct(twilio_auth_token=SecretStr(token))
    params = {"From": "+15550000001", "Body": "Ça va? <safe> & 1", "MessageSid": "SM1", "Empty": "", "b": "x"}
    variants = {url, url.replace(":443/", "/").replace(":8080/", "/")}
    if "://" in url and ":" not in url.split("://")[1].split("/")[0]:
        host = url.split("/")[2]
        variants.add(url.replace(host, host + (":443" if url.startswith("https") else ":80"), 1))
    for signed_url in variants:
        good = RequestValidator(token).compute_signature(signed_url, params)
        for sig in (good, good[:-2] + "AA", "", None, "é" + good[1:]):
            expected = twilio_signature_ok(settings, url, params, sig)
            got = fp.signature_ok(token, url, params, sig.encode("utf-8") if sig is not None else None)
            assert got == expected, (signed_url, sig)
    assert not fp.signature_ok(None, url, params, b"x")
    assert not fp.signature_ok("", url, params, b"x")


@pytest.mark.parametrize(
    "message", [None, "", "plain", "a & b < c > d \"q\" 'a'", "Ünïcødé ✓ 😀", "line\nbreak\r\ttab", "\ud800"]
)
def test_twiml_matches_twilio_library(message):
    from twilio.twiml.messaging_response import MessagingResponse

    reply = MessagingResponse()
    if message:
        reply.message(message)
    assert fp.twiml(message) == str(reply).encode("utf-8")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"From=%2B15550000001&Body=Safe&MessageSid=SM1",
        b"Body=&From=x",
        b"Body=a+b%20c%26d%3D&x=%C3%A9%E2%9C%93",
        b"Body=%FF%FE&x=\xe9",
        b"Body=1&Body=2",
        b"a=b=c",
    ],
)
def test_plain_form_matches_starlette(body):
    from starlette.requests import Request

    async def starlette_form() -> dict[str, str]:
        sent = False

        async def receive():
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        scope = {
            "type": "http",
            "method": "POST",
            "path": PATH,
            "headers": [(b"content-type", b"application/x-www-form-urlencoded")],
        }
        form = await Request(scope, receive).form()
        return {k: v for k, v in form.items() if isinstance(v, str)}

    assert fp._plain_form(body) == asyncio.run(starlette_form())


@pytest.mark.parametrize("body", [b"a&b=1", b"a=1;b=2", b"a=1&&b=2", b"&a=1"])
def test_irregular_forms_go_to_the_route(body):
    assert fp._plain_form(body) is None


def _same(fast, routed):
    assert fast.status_code == routed.status_code
    assert fast.headers["content-type"] == routed.headers["content-type"]
    assert fast.content == routed.content


def test_fast_path_answers_as_the_route(client, asked, monkeypatch):
    """The same signed requests, answered by the fast path and by the route (an `Origin` header that the
    app accepts sends a request to the route): same status, content type and body."""
    calls = {"n": 0}
    answer = fp.TwilioInboundFastPath._answer

    async def counting(self, params):
        calls["n"] += 1
        return await answer(self, params)

    monkeypatch.setattr(fp.TwilioInboundFastPath, "_answer", counting)
    routed_headers = {"Origin": "http://testserver"}

    fast = sms(client, PHONES[0], "safe", sid="SMfast1")
    assert fast.status_code == 200, fast.text
    assert b"<Message>" in fast.content
    assert calls["n"] == 1
    # a retry of the same MessageSid through the route gets the same reply
    from tests.twoway.conftest import twilio_post

    params = {"From": PHONES[0], "To": "+15005550006", "Body": "safe", "MessageSid": "SMfast1"}
    orig_post = client.post

    def post_with_origin(*a, **kw):
        kw["headers"] = {**kw.get("headers", {}), **routed_headers}
        return orig_post(*a, **kw)

    monkeypatch.setattr(client, "post", post_with_origin)
    routed = twilio_post(client, PATH, params)
    monkeypatch.setattr(client, "post", orig_post)
    assert calls["n"] == 1
    _same(fast, routed)

    for body, sign in (("HELP", True), ("safe", False)):
        fast = sms(client, PHONES[1], body, sid="SMx" + body, sign=sign)
        monkeypatch.setattr(client, "post", post_with_origin)
        routed = sms(client, PHONES[1], body, sid="SMx" + body, sign=sign)
        monkeypatch.setattr(client, "post", orig_post)
        _same(fast, routed)
    assert calls["n"] == 1
    forged = client.post(PATH, data=params, headers={"X-Twilio-Signature": "bm90IGl0"})
    assert forged.status_code == 403
    assert forged.json() == {"error": "forbidden", "detail": "Invalid Twilio signature.", "field": "X-Twilio-Signature"}


def test_errors_in_the_answer_go_to_the_route(client, asked, monkeypatch):
    async def broken(self, params):
        raise RuntimeError("database went away")

    monkeypatch.setattr(fp.TwilioInboundFastPath, "_answer", broken)
    resp = sms(client, PHONES[2], "safe")
    assert resp.status_code == 200, resp.text  # the route answered it
    assert b"<Message>" in resp.content
