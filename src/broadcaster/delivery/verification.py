"""The optional human check of the public subscribe form (`SUBSCRIBE_VERIFIER`).

- `pow`: built-in proof of work. `GET /v1/subscribe/challenge` hands out a signed challenge; the client finds a
  `nonce` such that SHA-256 of `challenge:nonce` starts with `SUBSCRIBE_POW_DIFFICULTY` zero bits and sends
  `verification=challenge:nonce`. A challenge is valid for 10 minutes and once.
- `siteverify`: hCaptcha and Cloudflare Turnstile (and reCAPTCHA) share one server-side check: POST `secret`,
  `response` and `remoteip` to `SUBSCRIBE_VERIFIER_URL`, which answers JSON `{"success": true|false}`.
- `module:function`: your own `function(token: str | None, client_ip: str) -> bool`.

Each runs synchronously (call it from a thread in async code). A failed check is a 403 naming `verification`.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import secrets
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from broadcaster.delivery import abuse, tokens
from broadcaster.errors import AppError
from broadcaster.settings import get_settings

log = logging.getLogger(__name__)

POW_MAX_AGE = 600
#: form fields the hCaptcha and Turnstile widgets fill in, besides our own `verification`
TOKEN_FIELDS = ("verification", "h-captcha-response", "cf-turnstile-response")


class VerificationFailed(AppError):
    status_code, code = 403, "verification_failed"


def token_from(data: Mapping[str, Any]) -> str | None:
    for name in TOKEN_FIELDS:
        value = data.get(name)
        if isinstance(value, str) and value:
            return value
    return None


# --- proof of work ---------------------------------------------------------------------------------------


def new_challenge() -> dict[str, Any]:
    difficulty = get_settings().subscribe_pow_difficulty
    challenge = tokens.sign("pow", {"t": int(time.time()), "r": secrets.token_urlsafe(9), "d": difficulty})
    return {"algorithm": "sha256", "challenge": challenge, "difficulty": difficulty, "expires_in": POW_MAX_AGE}


def leading_zero_bits(digest: bytes) -> int:
    bits = 0
    for byte in digest:
        if byte:
            return bits + 8 - byte.bit_length()
        bits += 8
    return bits


def solve(challenge: str, difficulty: int) -> str:
    """The `verification` value for `challenge` (what a client does; used by tests and the CLI)."""
    nonce = 0
    while leading_zero_bits(hashlib.sha256(f"{challenge}:{nonce}".encode()).digest()) < difficulty:
        nonce += 1
    return f"{challenge}:{nonce}"


def pow_ok(token: str | None, _client_ip: str) -> bool:
    if not token:
        return False
    challenge, _, nonce = token.rpartition(":")
    payload = tokens.verify("pow", challenge, max_age=POW_MAX_AGE)
    if payload is None or not nonce.isdigit() or len(nonce) > 20:
        return False
    difficulty = max(int(payload.get("d", 0)), get_settings().subscribe_pow_difficulty)
    if leading_zero_bits(hashlib.sha256(f"{challenge}:{nonce}".encode()).digest()) < difficulty:
        return False
    # single use: a solved challenge is spent (in the rate-limit storage, shared when that is Redis)
    return abuse.limiter().hit(abuse.parsed_limits(f"1/{POW_MAX_AGE} seconds"), "pow", challenge) is None


# --- siteverify (hCaptcha / Turnstile) -------------------------------------------------------------------


def siteverify_ok(token: str | None, client_ip: str) -> bool:
    settings = get_settings()
    url = settings.subscribe_verifier_url
    if not token or not url.startswith(("https://", "http://")):
        return False
    secret = settings.subscribe_verifier_secret.get_secret_value() if settings.subscribe_verifier_secret else ""
    form = urllib.parse.urlencode({"secret": secret, "response": token, "remoteip": client_ip}).encode()
    request = urllib.request.Request(url, data=form, method="POST")  # noqa: S310 (http(s) checked above)
    try:
        with urllib.request.urlopen(request, timeout=settings.provider_timeout_seconds) as resp:  # noqa: S310
            answer = json.loads(resp.read(65536))
    except (OSError, ValueError) as exc:
        log.warning("subscribe verifier unreachable or answered garbage: %s", type(exc).__name__)
        return False
    return isinstance(answer, dict) and answer.get("success") is True


# --- the hook --------------------------------------------------------------------------------------------

Verifier = Callable[[str | None, str], bool]
BUILT_IN: dict[str, Verifier] = {"pow": pow_ok, "siteverify": siteverify_ok}


def verifier(name: str) -> Verifier | None:
    if not name:
        return None
    if name in BUILT_IN:
        return BUILT_IN[name]
    module, _, attr = name.partition(":")
    fn: Verifier = getattr(importlib.import_module(module), attr)
    return fn


def check(data: Mapping[str, Any], client_ip: str) -> None:
    """Raise a 403 naming `verification` unless the configured verifier (if any) accepts the request."""
    fn = verifier(get_settings().subscribe_verifier)
    if fn is None:
        return
    if not fn(token_from(data), client_ip):
        raise VerificationFailed(
            "The human check failed or is missing (send it as 'verification').", field="verification"
        )
