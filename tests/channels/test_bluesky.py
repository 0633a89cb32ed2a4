"""The Bluesky adapter with the real atproto SDK against the fake PDS: exact requests, the session
(reuse, refresh, signing in again), error mapping, preview output, describe() masking, and the fake's
own XRPC validation."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import time
from datetime import datetime

import httpx
import pytest

from broadcaster.channels.base import ErrorClass, Message, Recipient
from broadcaster.channels.bluesky import BlueskyPost
from broadcaster.fakes.credentials import BLUESKY_HANDLE, BLUESKY_PASSWORD
from broadcaster.settings import Settings, get_settings
from broadcaster.text.length import grapheme_length

T, P = ErrorClass.transient, ErrorClass.permanent
CREATE_SESSION = "/xrpc/com.atproto.server.createSession"
REFRESH_SESSION = "/xrpc/com.atproto.server.refreshSession"
CREATE_RECORD = "/xrpc/com.atproto.repo.createRecord"
GET_SESSION = "/xrpc/com.atproto.server.getSession"
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # one grapheme, 7 code points


def _claims(jwt: str) -> dict:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _bearer(req) -> dict:
    auth = req.headers["authorization"]
    assert auth.startswith("Bearer ")
    return _claims(auth[len("Bearer ") :])


def _trace(fake) -> list[tuple[str, int]]:
    return [(r.path, r.status) for r in fake.requests("bluesky")]


async def _send(adapter: BlueskyPost, text: str = "Water is back", locale: str = "en"):
    [result] = await adapter.send(Message(text=text, locale=locale), [Recipient("d0", "bluesky", idempotency_key="k")])
    return result


def _span(text: str, part: str) -> dict:
    start = text.encode().index(part.encode())
    return {"byteStart": start, "byteEnd": start + len(part.encode())}


async def test_post_requests(fake, make_settings):
    adapter = BlueskyPost.from_settings(make_settings())
    text = f"Panne résolue {FAMILY} https://bc.example/status?id=7 #panne"
    try:
        result = await _send(adapter, text, locale="fr-CA")
    finally:
        await adapter.aclose()
    assert result.ok, result.error
    login, post = fake.requests("bluesky")
    assert (login.method, login.path) == ("POST", CREATE_SESSION)
    assert "authorization" not in login.headers
    assert login.headers["content-type"] == "application/json"
    assert login.json == {"identifier": BLUESKY_HANDLE, "password": BLUESKY_PASSWORD}

    assert (post.method, post.path, post.status) == ("POST", CREATE_RECORD, 200)
    claims = _bearer(post)
    did = claims["sub"]
    assert claims["scope"] == "com.atproto.access" and did.startswith("did:plc:")
    body = post.json
    assert (body["repo"], body["collection"]) == (did, "app.bsky.feed.post")
    record = body["record"]
    assert set(record) == {"$type", "text", "createdAt", "langs", "facets"}
    assert record["$type"] == "app.bsky.feed.post"
    assert record["text"] == text
    assert record["langs"] == ["fr"]
    assert datetime.fromisoformat(record["createdAt"]).utcoffset() is not None
    facets = [
        {
            "features": facet["features"],
            "index": {k: v for k, v in facet["index"].items() if k != "$type"},
        }
        for facet in record["facets"]
    ]
    assert facets == [
        {
            "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://bc.example/status?id=7"}],
            "index": _span(text, "https://bc.example/status?id=7"),
        },
        {"features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "panne"}], "index": _span(text, "#panne")},
    ]
    assert all(f["$type"] == "app.bsky.richtext.facet" for f in record["facets"])
    assert result.provider_message_id.startswith(f"at://{did}/app.bsky.feed.post/")


async def test_bare_domain_links_and_no_facets(fake, make_settings):
    adapter = BlueskyPost.from_settings(make_settings())
    try:
        assert (await _send(adapter, "Details on status.example.org/water.")).ok
        assert (await _send(adapter, "No links here")).ok
    finally:
        await adapter.aclose()
    first, second = (r.json["record"] for r in fake.requests("bluesky", CREATE_RECORD))
    [facet] = first["facets"]
    assert facet["features"][0]["uri"] == "https://status.example.org/water"  # trailing dot left out
    assert "facets" not in second and second["langs"] == ["en"]


async def test_session_is_reused(fake, make_settings):
    adapter = BlueskyPost.from_settings(make_settings())
    try:
        for i in range(3):
            assert (await _send(adapter, f"post {i}")).ok
        assert (await adapter.check()).ok
    finally:
        await adapter.aclose()
    assert [p for p, _ in _trace(fake)] == [CREATE_SESSION, CREATE_RECORD, CREATE_RECORD, CREATE_RECORD, GET_SESSION]
    tokens = {r.headers["authorization"] for r in fake.requests("bluesky") if r.path != CREATE_SESSION}
    assert len(tokens) == 1


async def test_expiring_token_is_refreshed(fake, make_settings):
    """The SDK refreshes an access token that expires within 15 minutes, before the call."""
    fake.state.bluesky_access_ttl = 60
    adapter = BlueskyPost.from_settings(make_settings())
    try:
        assert (await _send(adapter, "one")).ok
        assert (await _send(adapter, "two")).ok
    finally:
        await adapter.aclose()
    assert _trace(fake) == [
        (CREATE_SESSION, 200),
        (REFRESH_SESSION, 200),
        (CREATE_RECORD, 200),
        (REFRESH_SESSION, 200),
        (CREATE_RECORD, 200),
    ]
    refresh = fake.requests("bluesky", REFRESH_SESSION)[0]
    assert _bearer(refresh)["scope"] == "com.atproto.refresh"


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 400, "body": {"error": "ExpiredToken", "message": "Token has expired"}},
        {"status": 400, "body": {"error": "InvalidToken", "message": "Token could not be verified"}},
        {"status": 401, "body": {"error": "AuthenticationRequired", "message": "Authentication Required"}},
    ],
    ids=["expired", "invalid", "401"],
)
async def test_rejected_session_signs_in_again(fake, make_settings, fault):
    adapter = BlueskyPost.from_settings(make_settings())
    try:
        assert (await _send(adapter, "first")).ok
        fake.inject("bluesky", fault["status"], body=fault["body"], path="createRecord")
        result = await _send(adapter, "second")
    finally:
        await adapter.aclose()
    assert result.ok, result.error
    assert _trace(fake) == [
        (CREATE_SESSION, 200),
        (CREATE_RECORD, 200),
        (CREATE_RECORD, fault["status"]),
        (CREATE_SESSION, 200),
        (CREATE_RECORD, 200),
    ]


async def test_concurrent_sends_sign_in_once(fake, make_settings):
    adapter = BlueskyPost.from_settings(make_settings())
    try:
        results = await asyncio.gather(_send(adapter, "a"), _send(adapter, "b"))
        assert all(r.ok for r in results)
        fake.inject("bluesky", 400, body={"error": "ExpiredToken", "message": "x"}, path="createRecord", times=2)
        results = await asyncio.gather(_send(adapter, "c"), _send(adapter, "d"))
    finally:
        await adapter.aclose()
    assert all(r.ok for r in results), results
    paths = [p for p, _ in _trace(fake)]
    assert paths.count(CREATE_SESSION) == 2  # the first sign-in, and one more for both refused posts
    assert paths.count(CREATE_RECORD) == 6


async def test_failed_refresh_signs_in_again(fake, make_settings):
    fake.state.bluesky_access_ttl = 60
    adapter = BlueskyPost.from_settings(make_settings())
    fake.inject(
        "bluesky", 400, body={"error": "ExpiredToken", "message": "Token has been revoked"}, path="refreshSession"
    )
    try:
        result = await _send(adapter)
    finally:
        await adapter.aclose()
    assert result.ok, result.error
    assert _trace(fake) == [
        (CREATE_SESSION, 200),
        (REFRESH_SESSION, 400),
        (CREATE_SESSION, 200),
        (REFRESH_SESSION, 200),
        (CREATE_RECORD, 200),
    ]


async def test_wrong_app_password_is_permanent(fake, make_settings):
    adapter = BlueskyPost.from_settings(make_settings(bluesky_app_password="wrong-password"))
    try:
        result = await _send(adapter)
        check = await adapter.check()
    finally:
        await adapter.aclose()
    assert not result.ok
    error = result.error
    assert (error.error_class, error.code, error.status) == (P, "bluesky_401", 401)
    assert error.reason == "AuthenticationRequired: Invalid identifier or password"
    assert not check.ok and "Invalid identifier or password" in check.detail
    assert _trace(fake) == [(CREATE_SESSION, 401), (CREATE_SESSION, 401)]  # one per call, no retry loop


def _in(seconds: int) -> str:
    return str(int(time.time()) + seconds)


# (injected status, headers, body, path, expected class, code, retry_after range, reason)
CASES = [
    (429, {"ratelimit-reset": lambda: _in(40), "ratelimit-remaining": "0"}, None, "createRecord", T, (35, 41), None),
    (429, {"ratelimit-reset": lambda: _in(300)}, None, "createSession", T, (295, 301), None),
    (429, {"retry-after": "12"}, None, "createRecord", T, (12, 12), None),
    (500, {}, None, "createRecord", T, None, "InternalServerError: Injected 500"),
    (502, {}, None, "createRecord", T, None, None),
    (503, {}, None, "createSession", T, None, None),
    (
        400,
        {},
        {"error": "InvalidRequest", "message": "Invalid app.bsky.feed.post record: Record/text is bad"},
        "createRecord",
        P,
        None,
        "InvalidRequest: Invalid app.bsky.feed.post record: Record/text is bad",
    ),
    (413, {}, None, "createRecord", P, None, None),
    (403, {}, {"error": "AccountTakedown", "message": "Account has been taken down"}, "createRecord", P, None, None),
]


@pytest.mark.parametrize(
    ("status", "headers", "body", "path", "expected", "retry", "reason"),
    CASES,
    ids=[f"{c[0]}-{c[3]}-{i}" for i, c in enumerate(CASES)],
)
async def test_error_mapping(fake, make_settings, status, headers, body, path, expected, retry, reason):
    adapter = BlueskyPost.from_settings(make_settings())
    fake.inject(
        "bluesky", status, headers={k: v() if callable(v) else v for k, v in headers.items()}, body=body, path=path
    )
    try:
        result = await _send(adapter)
    finally:
        await adapter.aclose()
    assert not result.ok
    error = result.error
    assert (error.error_class, error.code, error.status) == (expected, f"bluesky_{status}", status), error
    if retry is None:
        assert error.retry_after is None
    else:
        assert retry[0] <= error.retry_after <= retry[1], error
    if reason is not None:
        assert error.reason == reason
    assert [s for _, s in _trace(fake)].count(status) == 1  # the SDK does not retry on its own


async def test_permanent_401_after_signing_in_again(fake, make_settings):
    adapter = BlueskyPost.from_settings(make_settings())
    body = {"error": "AuthenticationRequired", "message": "nope"}
    fake.inject("bluesky", 401, body=body, path="createRecord", times=2)
    try:
        result = await _send(adapter)
    finally:
        await adapter.aclose()
    assert (result.error.error_class, result.error.code) == (P, "bluesky_401")
    assert result.error.reason == "AuthenticationRequired: nope"
    assert [p for p, _ in _trace(fake)] == [CREATE_SESSION, CREATE_RECORD, CREATE_SESSION, CREATE_RECORD]


async def test_too_long_for_the_pds_is_permanent(fake, make_settings):
    adapter = BlueskyPost.from_settings(make_settings())
    try:
        fits = await _send(adapter, FAMILY * 100 + "a" * 200)  # 300 graphemes, 2,700 bytes
        too_long = await _send(adapter, "a" * 301)
        too_big = await _send(adapter, FAMILY * 121)  # 121 graphemes but 3,025 bytes
    finally:
        await adapter.aclose()
    assert fits.ok, fits.error
    assert (too_long.error.error_class, too_long.error.code) == (P, "bluesky_400")
    assert too_long.error.reason == (
        "InvalidRequest: Invalid app.bsky.feed.post record: Record/text must not be longer than 300 graphemes"
    )
    assert too_big.error.code == "bluesky_400" and "3000" in too_big.error.reason


async def test_timeouts_and_refused_connections_are_transient(fake, make_settings):
    adapter = BlueskyPost.from_settings(make_settings(provider_timeout_seconds="0.3"))
    fake.inject("bluesky", None, delay=1.0, path="createRecord")  # answers normally, but too late
    try:
        slow = await _send(adapter)
    finally:
        await adapter.aclose()
    assert (slow.error.error_class, slow.error.code) == (T, "timeout")

    from broadcaster.fakes.testing import free_port

    dead = BlueskyPost.from_settings(make_settings(bluesky_base_url=f"http://127.0.0.1:{free_port()}"))
    try:
        refused = await _send(dead)
    finally:
        await dead.aclose()
    assert (refused.error.error_class, refused.error.code) == (T, "network")


async def test_check(fake, make_settings):
    adapter = BlueskyPost.from_settings(make_settings())
    try:
        result = await adapter.check()
    finally:
        await adapter.aclose()
    assert result.ok and result.detail == f"signed in as @{BLUESKY_HANDLE}"
    assert [p for p, _ in _trace(fake)] == [CREATE_SESSION, GET_SESSION]


def test_describe_masks_the_app_password(make_settings):
    adapter = BlueskyPost.from_settings(make_settings(bluesky_app_password="abcd-efgh-ijkl-mnop"))
    described = adapter.describe()
    assert described["name"] == "bluesky" and described["kind"] == "social"
    assert described["limits"] == {"max_length": 300, "batch_size": 1, "rate_per_second": 1.0}
    assert described["config"]["app_password"] == "****mnop"
    assert described["config"]["handle"] == BLUESKY_HANDLE
    assert "abcd-efgh" not in json.dumps(described) and "abcd-efgh" not in repr(adapter)


def test_not_configured_without_handle_and_password(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert BlueskyPost.from_settings(Settings(_env_file=None)) is None
    assert BlueskyPost.from_settings(Settings(_env_file=None, bluesky_handle="a.bsky.social")) is None
    assert BlueskyPost.from_settings(Settings(_env_file=None, bluesky_app_password="x")) is None
    configured = BlueskyPost.from_settings(Settings(_env_file=None, bluesky_handle="a", bluesky_app_password="x"))
    assert configured is not None and configured.base_url == "https://bsky.social"


def test_without_the_sdk_the_adapter_is_skipped_and_the_sdk_loads_lazily():
    code = (
        "import sys\n"
        "import broadcaster.channels.bluesky\n"
        "assert 'atproto_client' not in sys.modules, 'imported at module load'\n"
        "sys.modules['atproto_client'] = None  # as if the extra were not installed\n"
        "del sys.modules['broadcaster.channels.bluesky']\n"
        "from broadcaster.channels.registry import adapter_classes\n"
        "names = adapter_classes()\n"
        "assert 'bluesky' not in names and 'x' in names, sorted(names)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


# --- preview ------------------------------------------------------------------------------------------
@pytest.fixture
def with_fake_env(fake, monkeypatch):
    for key, value in fake.env().items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield fake
    get_settings.cache_clear()


def _incident(client, auth, body: str, summary: str = "") -> int:
    resp = client.post(
        "/v1/incidents",
        headers=auth("write"),
        json={
            "title": "Water outage",
            "category": "emergency",
            "severity": "critical",
            "update": {"body": body, "summary": summary, "channels": ["bluesky", "social"]},
        },
    )
    assert resp.status_code == 201, resp.text
    return resp.json()["updates"][0]["id"]


def test_preview_for_a_bluesky_channel(client, auth, emergency_category, with_fake_env):
    update_id = _incident(client, auth, f"Water is off in the north district until 18:00 {FAMILY}")
    by = _preview(client, auth, update_id)
    assert with_fake_env.requests() == []  # a preview never calls a provider
    bsky = by["bluesky"]
    assert (bsky["adapter"], bsky["kind"], bsky["configured"], bsky["max_length"]) == ("bluesky", "social", True, 300)
    assert bsky["text"].startswith(f"Water is off in the north district until 18:00 {FAMILY}")
    assert bsky["text"].endswith("http://testserver/status")
    assert bsky["length"] == grapheme_length(bsky["text"]) < len(bsky["text"])
    assert not bsky["truncated"] and not bsky["used_summary"]
    assert by["social"]["failover"] == ["mastodon", "bluesky"]


def _preview(client, auth, update_id: int) -> dict[str, dict]:
    resp = client.post(f"/v1/updates/{update_id}/preview", headers=auth("read"))
    assert resp.status_code == 200, resp.text
    return {c["channel"]: c for c in resp.json()["channels"]}


def test_preview_bluesky_uses_the_summary_then_shortens(client, auth, emergency_category, with_fake_env):
    body = "The north district water main burst this morning and crews are digging. " * 5  # ~370 graphemes
    update_id = _incident(client, auth, body, summary="Water off north until 18:00.")
    by = _preview(client, auth, update_id)
    bsky = by["bluesky"]
    assert bsky["used_summary"] and not bsky["truncated"]
    assert bsky["text"].startswith("Water off north until 18:00.") and bsky["length"] <= 300

    update_id = _incident(client, auth, body)
    by = _preview(client, auth, update_id)
    bsky = by["bluesky"]
    assert bsky["truncated"] and "..." in bsky["text"] and bsky["length"] <= 300
    assert bsky["text"].endswith("http://testserver/status")  # the URL is kept whole


# --- the fake PDS on its own --------------------------------------------------------------------------
@pytest.fixture
def xrpc(fake):
    with httpx.Client(base_url=fake.url + "/xrpc", timeout=5) as client:
        yield client


def test_fake_pds_validation(xrpc, fake):
    creds = {"identifier": BLUESKY_HANDLE, "password": BLUESKY_PASSWORD}
    assert xrpc.post("com.atproto.server.createSession", json={"identifier": BLUESKY_HANDLE}).json() == {
        "error": "InvalidRequest",
        "message": 'Input must have the property "password"',
    }
    wrong = xrpc.post("com.atproto.server.createSession", json={**creds, "password": "nope"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "AuthenticationRequired"
    session = xrpc.post("com.atproto.server.createSession", json=creds)
    assert session.status_code == 200 and session.headers["ratelimit-policy"] == "30;w=300"
    s = session.json()
    assert set(s) >= {"accessJwt", "refreshJwt", "did", "handle"} and s["handle"] == BLUESKY_HANDLE
    assert _claims(s["accessJwt"])["exp"] > time.time()
    bearer = {"Authorization": f"Bearer {s['accessJwt']}"}
    record = {"$type": "app.bsky.feed.post", "text": "hi", "createdAt": "2026-01-01T00:00:00Z"}
    body = {"repo": s["did"], "collection": "app.bsky.feed.post", "record": record}

    def create(payload, headers=bearer):
        return xrpc.post("com.atproto.repo.createRecord", json=payload, headers=headers)

    assert create(body, headers={}).status_code == 401
    forged = s["accessJwt"][:-4] + "AAAA"
    assert create(body, headers={"Authorization": f"Bearer {forged}"}).json()["error"] == "InvalidToken"
    refresh_as_access = create(body, headers={"Authorization": f"Bearer {s['refreshJwt']}"})
    assert refresh_as_access.json()["error"] == "InvalidToken"
    assert create({**body, "record": {**record, "$type": "app.bsky.feed.like"}}).status_code == 400
    assert create({**body, "repo": "did:plc:someoneelse"}).status_code == 400
    assert create({**body, "record": {**record, "text": "a" * 301}}).status_code == 400
    assert create({**body, "record": {**record, "langs": ["en", "fr", "de", "es"]}}).status_code == 400
    bad_facet = {"index": {"byteStart": 0, "byteEnd": 99}, "features": [{"$type": "app.bsky.richtext.facet#link"}]}
    assert create({**body, "record": {**record, "facets": [bad_facet]}}).status_code == 400
    ok = create({**body, "record": {**record, "text": FAMILY * 300}})
    assert ok.status_code == 400  # 300 graphemes, but 7,500 bytes
    ok = create(body)
    assert ok.status_code == 200 and ok.json()["uri"].startswith(f"at://{s['did']}/app.bsky.feed.post/")
    assert ok.headers["ratelimit-limit"] == "5000"
    refreshed = xrpc.post("com.atproto.server.refreshSession", headers={"Authorization": f"Bearer {s['refreshJwt']}"})
    assert refreshed.status_code == 200 and refreshed.json()["accessJwt"] != s["accessJwt"]
    again = xrpc.post("com.atproto.server.refreshSession", headers={"Authorization": f"Bearer {s['refreshJwt']}"})
    assert again.status_code == 400 and again.json()["error"] == "ExpiredToken"  # refresh tokens are single use
    profile = xrpc.get("app.bsky.actor.getProfile", params={"actor": BLUESKY_HANDLE}, headers=bearer)
    assert profile.json()["did"] == s["did"]
    assert xrpc.get("app.bsky.feed.getTimeline", headers=bearer).status_code == 501


def test_fake_pds_expired_token(xrpc, fake):
    fake.state.bluesky_access_ttl = -1
    s = xrpc.post(
        "com.atproto.server.createSession", json={"identifier": BLUESKY_HANDLE, "password": BLUESKY_PASSWORD}
    ).json()
    resp = xrpc.get("com.atproto.server.getSession", headers={"Authorization": f"Bearer {s['accessJwt']}"})
    assert resp.status_code == 400 and resp.json() == {"error": "ExpiredToken", "message": "Token has expired"}
