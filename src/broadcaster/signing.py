"""The service's secret key and signed, URL-safe tokens (HMAC-SHA256) carrying a purpose.

The key is `SECRET_KEY`, or a random key generated once and persisted in `var/secret_key` (0600) so
links keep working across restarts. A token carries its purpose, so a confirm token cannot unsubscribe
(subscribers/tokens.py) and an answer link cannot sign anything else (responses/links.py). Console session
cookies are signed with the same key (sessions.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from broadcaster.settings import get_settings

KEY_FILE = Path("var/secret_key")
log = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _persisted_key(path: str) -> bytes:
    """Read the generated key, creating it first if needed (atomically: concurrent processes agree)."""
    p = Path(path)
    if not p.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f"{p.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_urlsafe(48).encode())
        try:
            os.link(tmp, p)  # fails if another process created it first: then theirs is the key
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    if not get_settings().is_sqlite:
        log.warning(
            "SECRET_KEY is not set: using the key generated in %s. Set the same SECRET_KEY on every machine, "
            "or unsubscribe and confirmation links signed on one machine are refused by the others.",
            p,
        )
    return p.read_bytes().strip()


def secret_key() -> bytes:
    configured = get_settings().secret_key
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value().encode()
    return _persisted_key(str(KEY_FILE.resolve()))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def _mac(purpose: str, body: str) -> str:
    return _b64(hmac.new(secret_key(), f"{purpose}.{body}".encode(), hashlib.sha256).digest()[:20])


def sign(purpose: str, payload: dict[str, Any]) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_mac(purpose, body)}"


def verify(purpose: str, token: str, max_age: int | None = None) -> dict[str, Any] | None:
    """The payload when `token` was signed for `purpose` with our key (and, with `max_age`, carries an
    issue time `t` at most that many seconds ago); None otherwise."""
    body, _, mac = token.partition(".")
    # compared as bytes: compare_digest refuses str with non-ASCII characters (a TypeError, not a mismatch)
    if not body or not mac or not hmac.compare_digest(mac.encode(), _mac(purpose, body).encode()):
        return None
    try:
        payload = json.loads(_unb64(body))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(payload, dict):
        return None
    if max_age is not None:
        issued = payload.get("t")
        if (
            not isinstance(issued, int | float)
            or isinstance(issued, bool)
            or not -300 <= time.time() - issued <= max_age
        ):
            return None
    return payload
