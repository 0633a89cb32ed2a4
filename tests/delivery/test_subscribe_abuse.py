"""The anonymous /v1/subscribe form cannot be used to pump SMS or bomb a mailbox (issue 10).

SMS double opt-in, confirmations throttled per address and number, rate limits per client IP (X-Forwarded-For
only from trusted proxies) and per number prefix, a country allow-list, the optional human check, and the
figure: 200 anonymous subscribes from one IP, counted at the fake Twilio server.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from sqlalchemy import select

PEER = "10.0.0.1"


@pytest.fixture
def client(app) -> Iterator:
    """The app as seen from the TCP peer PEER (an IP, so proxy rules apply to it)."""
    from fastapi.testclient import TestClient

    with TestClient(app, client=(PEER, 50000)) as c:
        yield c


def _env(monkeypatch, **values: str) -> None:
    from broadcaster.settings import get_settings

    for key, value in values.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()


@pytest.fixture
def us_phones(monkeypatch, db_url):
    """Public phone signups from the US, as with a US TWILIO_FROM_NUMBER; limits generous unless a test says."""
    _env(monkeypatch, SUBSCRIBE_PHONE_COUNTRIES="US", SUBSCRIBE_RATE_LIMIT="1000/minute")


def _subscriber(**where: Any):
    from broadcaster.db import session_scope
    from broadcaster.models.delivery import Subscriber

    with session_scope() as session:
        conds = [getattr(Subscriber, k) == v for k, v in where.items()]
        row = session.scalar(select(Subscriber).where(*conds))
        if row is not None:
            session.expunge(row)
        return row


def _inbound(client, sender: str, body: str, token: str):
    from twilio.request_validator import RequestValidator

    path = "/v1/webhooks/twilio/inbound"
    params = {"From": sender, "Body": body}
    sig = RequestValidator(token).compute_signature(f"http://testserver{path}", params)
    resp = client.post(path, data=params, headers={"X-Twilio-Signature": sig})
    assert resp.status_code == 200, resp.text
    return resp


# --- SMS double opt-in ------------------------------------------------------------------------------------


def test_public_number_gets_one_confirmation_text_and_no_alert_until_it_replies_yes(
    memory, drain, publish, client, emergency_category, us_phones, monkeypatch
):
    _env(monkeypatch, TWILIO_AUTH_TOKEN="inbound-token")
    phone = "+12025550123"
    resp = client.post("/v1/subscribe", json={"phone": phone, "categories": ["emergency"]})
    assert resp.status_code == 202, resp.text
    assert resp.json()["status"] == "pending_confirmation" and "YES" in resp.json()["detail"]
    row = _subscriber(phone=phone)
    assert (row.phone_confirmed, row.source) == (False, "self")

    publish(channels=["memory"])  # an SMS-kind alert while the number is unconfirmed
    drain()
    to_phone = [s for s in memory.sent if s[1] == phone]
    assert len(to_phone) == 1 and "reply YES" in to_phone[0][3]  # the confirmation, and nothing else

    _inbound(client, phone, "yes", "inbound-token")
    assert _subscriber(phone=phone).phone_confirmed
    publish(channels=["memory"])
    drain()
    assert len([s for s in memory.sent if s[1] == phone]) == 2  # now the alert arrives


def test_api_and_imported_numbers_stay_confirmed(client, auth, emergency_category):
    """Numbers added with an API key (the API, CSV import, which leaves the column to its default) are
    confirmed by whoever added them, as before."""
    from broadcaster.db import session_scope
    from broadcaster.models.delivery import Subscriber

    w = auth("write")
    assert client.post("/v1/subscribers", json={"phone": "+12025550101"}, headers=w).status_code == 201
    with session_scope() as session:
        session.add(Subscriber(phone="+12025550102", source="csv"))
    assert _subscriber(phone="+12025550101").phone_confirmed and _subscriber(phone="+12025550102").phone_confirmed


def test_confirmations_are_throttled_per_address_and_number(memory, drain, client, emergency_category, us_phones):
    for _ in range(5):
        assert client.post("/v1/subscribe", json={"email": "victim@example.org"}).status_code == 202
        assert client.post("/v1/subscribe", json={"phone": "+12025550111"}).status_code == 202
    drain()
    assert [s[0] for s in memory.sent if s[1] == "victim@example.org"] == ["memory-email"]
    assert len([s for s in memory.sent if s[1] == "+12025550111"]) == 1


# --- rate limits ------------------------------------------------------------------------------------------


def test_rate_limit_per_client_ip_is_429_with_retry_after(client, emergency_category, monkeypatch, db_url):
    _env(monkeypatch, SUBSCRIBE_RATE_LIMIT="3/minute")
    codes = [client.post("/v1/subscribe", json={"email": f"a{i}@example.org"}).status_code for i in range(5)]
    assert codes == [202, 202, 202, 429, 429]
    resp = client.post("/v1/subscribe", json={"email": "late@example.org"})
    assert resp.status_code == 429
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    body = resp.json()
    assert body["error"] == "rate_limited" and set(body) >= {"error", "detail", "field"}
    assert _subscriber(email="late@example.org") is None  # nothing written


def test_forwarded_for_is_trusted_only_from_configured_proxies(client, emergency_category, monkeypatch, db_url):
    _env(monkeypatch, SUBSCRIBE_RATE_LIMIT="2/minute")
    # not a trusted proxy: a made-up X-Forwarded-For per request does not escape the limit
    codes = [
        client.post(
            "/v1/subscribe", json={"email": f"b{i}@example.org"}, headers={"X-Forwarded-For": f"198.51.100.{i}"}
        ).status_code
        for i in range(4)
    ]
    assert codes == [202, 202, 429, 429]
    from broadcaster.throttle import reset_limits

    reset_limits()
    _env(monkeypatch, TRUSTED_PROXIES="10.0.0.0/8")
    # behind the trusted proxy each client has its own budget; what the client put left of it is ignored
    for i in range(3):
        xff = {"X-Forwarded-For": f"6.6.6.{i}, 198.51.100.7"}
        code = client.post("/v1/subscribe", json={"email": f"c{i}@example.org"}, headers=xff).status_code
        assert code == (202 if i < 2 else 429)
    other = client.post("/v1/subscribe", json={"email": "d@example.org"}, headers={"X-Forwarded-For": "198.51.100.8"})
    assert other.status_code == 202


def test_client_ip_rules():
    from starlette.requests import Request

    from broadcaster.settings import Settings
    from broadcaster.throttle import client_ip

    def ip(peer: str, xff: str | None, proxies: list[str]) -> str:
        headers = [(b"x-forwarded-for", xff.encode())] if xff is not None else []
        req = Request({"type": "http", "headers": headers, "client": (peer, 1)})
        return client_ip(req, Settings(trusted_proxies=proxies))

    assert ip("203.0.113.9", "1.2.3.4", []) == "203.0.113.9"
    assert ip("203.0.113.9", "1.2.3.4", ["10.0.0.0/8"]) == "203.0.113.9"  # peer is not a proxy
    assert ip("10.1.2.3", "1.2.3.4", ["10.0.0.0/8"]) == "1.2.3.4"
    assert ip("10.1.2.3", "9.9.9.9, 1.2.3.4, 10.0.0.7", ["10.0.0.0/8"]) == "1.2.3.4"
    assert ip("10.1.2.3", None, ["10.0.0.0/8"]) == "10.1.2.3"


def test_ip_limit_key_masks_ipv6_to_its_network_and_unwraps_mapped_ipv4():
    from broadcaster.settings import Settings
    from broadcaster.throttle import ip_limit_key

    default = Settings()
    assert ip_limit_key("203.0.113.9", default) == "203.0.113.9"
    assert ip_limit_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd", default) == "2001:db8:1:2::/64"
    assert ip_limit_key("2001:DB8:1:2::1", default) == "2001:db8:1:2::/64"  # one spelling per network
    assert ip_limit_key("2001:db8:1:3::1", default) == "2001:db8:1:3::/64"
    assert ip_limit_key("::ffff:203.0.113.9", default) == "203.0.113.9"  # dual-stack sockets report IPv4 so
    assert ip_limit_key("2001:db8:1:2::1", Settings(rate_limit_ipv6_prefix=48)) == "2001:db8:1::/48"
    assert ip_limit_key("2001:db8:1:2::1", Settings(rate_limit_ipv6_prefix=128)) == "2001:db8:1:2::1/128"
    assert ip_limit_key("not-an-ip", default) == "not-an-ip"  # a key of its own, as before


@pytest.mark.parametrize("prefix", ["0", "129", "sixty-four"])
def test_ipv6_prefix_setting_is_validated(prefix, monkeypatch):
    from pydantic import ValidationError

    from broadcaster.settings import Settings

    monkeypatch.setenv("RATE_LIMIT_IPV6_PREFIX", prefix)
    with pytest.raises(ValidationError) as info:
        Settings()
    assert [e["loc"] for e in info.value.errors()] == [("rate_limit_ipv6_prefix",)]


def test_ipv6_prefix_setting_error_names_the_setting_in_the_cli(monkeypatch):
    from typer.testing import CliRunner

    from broadcaster.cli import app
    from broadcaster.settings import get_settings

    monkeypatch.setenv("RATE_LIMIT_IPV6_PREFIX", "129")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["users", "list"])
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "RATE_LIMIT_IPV6_PREFIX: Input should be less than or equal to 128" in result.output


def test_ipv6_client_rotating_addresses_inside_its_64_hits_the_limit_once(client, emergency_category, monkeypatch):
    """Issue 19, item 7: 20 addresses of one /64 (behind the trusted proxy) share one budget; another /64
    has its own."""
    _env(monkeypatch, SUBSCRIBE_RATE_LIMIT="3/minute", TRUSTED_PROXIES="10.0.0.0/8")
    codes = [
        client.post(
            "/v1/subscribe",
            json={"email": f"v6-{i}@example.org"},
            headers={"X-Forwarded-For": f"2001:db8:1:2:{i:x}:{i * 7:x}::{i + 1:x}"},
        ).status_code
        for i in range(20)
    ]
    assert codes == [202] * 3 + [429] * 17
    assert _subscriber(email="v6-3@example.org") is None and _subscriber(email="v6-19@example.org") is None
    other = client.post(
        "/v1/subscribe", json={"email": "v6-other@example.org"}, headers={"X-Forwarded-For": "2001:db8:1:3::1"}
    )
    assert other.status_code == 202


@pytest.mark.parametrize(("prefix", "expected"), [("48", [202, 202, 429, 429]), ("128", [202] * 4)])
def test_ipv6_prefix_setting_sets_what_counts_as_one_client(client, emergency_category, monkeypatch, prefix, expected):
    _env(monkeypatch, SUBSCRIBE_RATE_LIMIT="2/minute", TRUSTED_PROXIES="10.0.0.0/8", RATE_LIMIT_IPV6_PREFIX=prefix)
    addresses = ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:3::1", "2001:db8:1:ffff::1"]  # one /48
    codes = [
        client.post("/v1/subscribe", json={"email": f"p{i}@example.org"}, headers={"X-Forwarded-For": a}).status_code
        for i, a in enumerate(addresses)
    ]
    assert codes == expected


def test_ipv4_mapped_ipv6_counts_as_the_ipv4_client(client, emergency_category, monkeypatch):
    _env(monkeypatch, SUBSCRIBE_RATE_LIMIT="2/minute", TRUSTED_PROXIES="10.0.0.0/8")
    codes = [
        client.post("/v1/subscribe", json={"email": f"m{i}@example.org"}, headers={"X-Forwarded-For": a}).status_code
        for i, a in enumerate(["198.51.100.7", "::ffff:198.51.100.7", "::ffff:c633:6407"])
    ]
    assert codes == [202, 202, 429]


def test_a_trusted_proxy_on_a_dual_stack_socket_is_recognised():
    """A proxy at 10.0.0.1 seen as ::ffff:10.0.0.1 (an IPv6 listening socket) is still TRUSTED_PROXIES' 10.0.0.0/8."""
    from starlette.requests import Request

    from broadcaster.settings import Settings
    from broadcaster.throttle import client_ip

    req = Request({"type": "http", "headers": [(b"x-forwarded-for", b"2001:db8::5")], "client": ("::ffff:10.0.0.1", 1)})
    assert client_ip(req, Settings(trusted_proxies=["10.0.0.0/8"])) == "2001:db8::5"


def test_rate_limit_per_number_prefix(client, emergency_category, us_phones, monkeypatch):
    _env(monkeypatch, SUBSCRIBE_PHONE_PREFIX_RATE_LIMIT="3/hour", TRUSTED_PROXIES="10.0.0.0/8")
    codes = []
    for i in range(5):  # five different clients, one number range
        resp = client.post(
            "/v1/subscribe", json={"phone": f"+1202555{i:04d}"}, headers={"X-Forwarded-For": f"198.51.100.{i}"}
        )
        codes.append(resp.status_code)
    assert codes == [202, 202, 202, 429, 429]
    assert resp.json()["field"] == "phone" and "Retry-After" in resp.headers
    other_range = client.post("/v1/subscribe", json={"phone": "+12125550199"}, headers={"X-Forwarded-For": "1.1.1.1"})
    assert other_range.status_code == 202


# --- which numbers may sign up ----------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["+881612345678", "+882123456789", "+883510012345"])
def test_satellite_and_international_network_numbers_are_refused(client, emergency_category, monkeypatch, number):
    _env(monkeypatch, SUBSCRIBE_PHONE_COUNTRIES="*")
    resp = client.post("/v1/subscribe", json={"phone": number})
    assert resp.status_code == 422, resp.text
    assert resp.json()["field"] == "phone" and "satellite" in resp.json()["detail"]
    assert _subscriber(phone=number) is None


def test_country_allow_list_defaults_to_the_twilio_sender_country(client, emergency_category, monkeypatch, db_url):
    _env(monkeypatch, SUBSCRIBE_RATE_LIMIT="1000/minute")
    # no sender and no list: no public phone signups (nothing anonymous costs money)
    resp = client.post("/v1/subscribe", json={"phone": "+12025550123"})
    assert resp.status_code == 422 and resp.json()["field"] == "phone"
    _env(monkeypatch, TWILIO_FROM_NUMBER="+15005550006")
    assert client.post("/v1/subscribe", json={"phone": "+12025550123"}).status_code == 202
    resp = client.post("/v1/subscribe", json={"phone": "+447700900123"})
    assert resp.status_code == 422 and resp.json()["field"] == "phone" and "GB" in resp.json()["detail"]
    _env(monkeypatch, SUBSCRIBE_PHONE_COUNTRIES="GB, us")
    assert client.post("/v1/subscribe", json={"phone": "+447700900123"}).status_code == 202
    assert client.post("/v1/subscribe", json={"phone": "+33612345678"}).status_code == 422
    # an email signup is not affected
    assert client.post("/v1/subscribe", json={"email": "x@example.org"}).status_code == 202


# --- optional human check ---------------------------------------------------------------------------------


def test_proof_of_work_verifier(client, emergency_category, monkeypatch, db_url):
    from broadcaster.subscribers.verification import solve

    _env(monkeypatch, SUBSCRIBE_VERIFIER="pow", SUBSCRIBE_POW_DIFFICULTY="8")
    missing = client.post("/v1/subscribe", json={"email": "p@example.org"})
    assert missing.status_code == 403 and missing.json()["field"] == "verification"
    challenge = client.get("/v1/subscribe/challenge").json()
    assert challenge["difficulty"] == 8 and challenge["algorithm"] == "sha256"
    wrong = f"{challenge['challenge']}:0"
    from broadcaster.subscribers.verification import leading_zero_bits  # noqa: F401 (documents the rule)

    good = solve(challenge["challenge"], 8)
    if good != wrong:
        assert client.post("/v1/subscribe", json={"email": "p@example.org", "verification": wrong}).status_code == 403
    assert client.post("/v1/subscribe", json={"email": "p@example.org", "verification": good}).status_code == 202
    replay = client.post("/v1/subscribe", json={"email": "q@example.org", "verification": good})
    assert replay.status_code == 403  # a solved challenge is spent
    forged = client.post("/v1/subscribe", json={"email": "q@example.org", "verification": "abc.def:1"})
    assert forged.status_code == 403
    assert _subscriber(email="q@example.org") is None


@pytest.fixture
def siteverify() -> Iterator[tuple[str, list[dict[str, list[str]]]]]:
    """A local hCaptcha/Turnstile-style siteverify endpoint: token 'good' passes."""
    seen: list[dict[str, list[str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
            seen.append(form)
            body = json.dumps({"success": form.get("response") == ["good"]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/siteverify", seen
    finally:
        server.shutdown()
        server.server_close()


def test_siteverify_verifier_hcaptcha_turnstile_compatible(client, emergency_category, monkeypatch, siteverify):
    url, seen = siteverify
    _env(monkeypatch, SUBSCRIBE_VERIFIER="siteverify", SUBSCRIBE_VERIFIER_URL=url, SUBSCRIBE_VERIFIER_SECRET="s3")
    bad = client.post("/v1/subscribe", json={"email": "h@example.org", "verification": "bad"})
    assert bad.status_code == 403 and bad.json()["error"] == "verification_failed"
    # the widgets' own form field names work too
    ok = client.post("/v1/subscribe", data={"email": "h@example.org", "cf-turnstile-response": "good"})
    assert ok.status_code == 202, ok.text
    assert seen[-1]["secret"] == ["s3"] and seen[-1]["remoteip"] == [PEER]


def custom_verifier(token: str | None, ip: str) -> bool:
    return token == f"ok-{ip}"


def test_custom_verifier_hook(client, emergency_category, monkeypatch, db_url):
    _env(monkeypatch, SUBSCRIBE_VERIFIER=f"{__name__}:custom_verifier")
    assert client.post("/v1/subscribe", json={"email": "k@example.org", "verification": "no"}).status_code == 403
    ok = client.post("/v1/subscribe", json={"email": "k@example.org", "verification": f"ok-{PEER}"})
    assert ok.status_code == 202


# --- malformed input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [2_000, 40_000])
def test_deeply_nested_json_is_400_malformed_json(client, depth, db_url):
    body = "[" * depth + "]" * depth
    resp = client.post("/v1/subscribe", content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == "malformed_json"
    obj = '{"a":' * depth + "1" + "}" * depth
    resp = client.post("/v1/subscribe", content=obj, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and resp.json()["error"] == "malformed_json"


# --- the figure -------------------------------------------------------------------------------------------


def test_figure_200_anonymous_subscribes_from_one_ip(
    fake, drain, publish, client, emergency_category, monkeypatch, capsys
):
    """200 anonymous subscribes from one IP: at most SUBSCRIBE_RATE_LIMIT accepted, 0 broadcast SMS to
    unconfirmed numbers (counted at the fake Twilio), at most one confirmation per number per hour."""
    for key, value in fake.env(webhook=False).items():
        monkeypatch.setenv(key, value)
    _env(monkeypatch, TRUSTED_PROXIES="10.0.0.0/8")  # the test client is the proxy; clients via X-Forwarded-For
    from broadcaster.settings import get_settings
    from broadcaster.throttle import parsed_limits

    limit = min(item.amount for item in parsed_limits(get_settings().subscribe_rate_limit))
    attacker = {"X-Forwarded-For": "203.0.113.66"}
    numbers = [f"+1202555{i:04d}" for i in range(200)]
    codes = [client.post("/v1/subscribe", json={"phone": n}, headers=attacker).status_code for n in numbers]
    accepted = [n for n, c in zip(numbers, codes, strict=True) if c == 202]
    assert set(codes) == {202, 429} and len(accepted) <= limit

    # the same number from 50 different clients (a botnet): still one confirmation
    victim = "+12125550199"
    for i in range(50):
        client.post("/v1/subscribe", json={"phone": victim}, headers={"X-Forwarded-For": f"198.51.100.{i}"})

    drain()
    confirmations = [r.form_value("To") for r in fake.requests("twilio") if r.form_value("To")]
    per_number = {n: confirmations.count(n) for n in set(confirmations)}
    assert max(per_number.values()) == 1 and set(per_number) == {*accepted, victim}

    fake.reset()
    result = publish(channels=["sms"])  # a real alert, with every attacker-chosen number unconfirmed
    drain()
    broadcast_sms = [r for r in fake.requests("twilio") if r.form_value("To")]
    assert broadcast_sms == []
    print(
        f"\nFIGURE 200 subscribes from one IP: accepted {len(accepted)} (limit {limit}), "
        f"confirmation texts per number max {max(per_number.values())} (50 tries of one number: "
        f"{per_number[victim]}), broadcast SMS to unconfirmed numbers {len(broadcast_sms)} "
        f"(broadcast {result['broadcast_id']})"
    )
    with capsys.disabled():
        print(capsys.readouterr().out, end="")
