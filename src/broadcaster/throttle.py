"""Request rate limits and the client's address behind trusted proxies (the subscribe form, console sign-in).

Per-IP limits count a client under `ip_limit_key`: an IPv6 client by its network (RATE_LIMIT_IPV6_PREFIX,
default /64, what one subscriber line or one server usually gets), so rotating addresses inside it does not buy
a fresh budget.

Rate limits use the maintained `limits` package (moving windows). Its storage is `RATE_LIMIT_STORAGE_URI`:
`memory://` counts per process (right for the embedded single process), `redis://...` shares the counts
between API processes.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

from limits import RateLimitItem, parse_many
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from starlette.requests import HTTPConnection

from broadcaster.errors import AppError
from broadcaster.settings import Settings, get_settings


class TooManyRequests(AppError):
    """429 with `Retry-After` (seconds) as a header and as `retry_after` in the body."""

    status_code, code = 429, "rate_limited"

    def __init__(self, detail: str, *, field: str | None, retry_after: int) -> None:
        super().__init__(detail, field=field, retry_after=retry_after)
        self.headers = {"Retry-After": str(retry_after)}


def rate_limited(detail: str, field: str | None, retry_after: int) -> TooManyRequests:
    return TooManyRequests(detail, field=field, retry_after=retry_after)


# --- client IP -----------------------------------------------------------------------------------------


def _networks(items: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(i, strict=False) for i in items]


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def _within(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> bool:
    """`ip` is in one of `networks` (an IPv4-mapped IPv6 address, as a dual-stack socket reports an IPv4
    peer, also as its IPv4 address)."""
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return any(ip in n or (mapped is not None and mapped in n) for n in networks)


def client_ip(conn: HTTPConnection, settings: Settings | None = None) -> str:
    """The client's address: the TCP peer, or, when the peer is a trusted proxy, the right-most
    `X-Forwarded-For` entry that is not a trusted proxy (entries left of it are client-supplied)."""
    settings = settings or get_settings()
    peer = conn.client.host if conn.client else ""
    trusted = _networks(settings.trusted_proxies)
    peer_ip = _ip(peer)
    if not trusted or peer_ip is None or not _within(peer_ip, trusted):
        return peer
    hops = [h.strip() for h in ",".join(conn.headers.getlist("x-forwarded-for")).split(",") if h.strip()]
    for hop in reversed(hops):
        hop_ip = _ip(hop)
        if hop_ip is None:
            return hop  # garbage from outside the trusted chain: a key of its own, never a trusted address
        if not _within(hop_ip, trusted):
            return str(hop_ip)
    return hops[0] if hops else peer


def ip_limit_key(address: str, settings: Settings | None = None) -> str:
    """The key a per-IP rate limit counts `address` under: an IPv4 address as is, an IPv4-mapped IPv6
    address (::ffff:a.b.c.d) as its IPv4 address, another IPv6 address as its network of
    RATE_LIMIT_IPV6_PREFIX bits (`2001:db8:1:2::/64`), anything else (no address, garbage) as given."""
    ip = _ip(address)
    if ip is None:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        prefix = (settings or get_settings()).rate_limit_ipv6_prefix
        return str(ipaddress.IPv6Network((ip, prefix), strict=False))
    return str(ip)


# --- rate limits -----------------------------------------------------------------------------------------


@dataclass
class Limiter:
    storage: Storage
    strategy: MovingWindowRateLimiter

    def hit(self, limits: list[RateLimitItem], *key: str) -> int | None:
        """Count one request against every limit; None when all allow it, else seconds until one would."""
        waits = []
        for item in limits:
            if not self.strategy.hit(item, *key):
                reset = self.strategy.get_window_stats(item, *key).reset_time
                waits.append(max(1, math.ceil(reset - time.time())))
        return max(waits) if waits else None


_lock = threading.Lock()


@lru_cache(maxsize=4)
def _limiter(uri: str) -> Limiter:
    storage = storage_from_string(uri)
    if not isinstance(storage, Storage):  # an async:// URI: the endpoints call the limiter from threads
        raise ValueError(f"RATE_LIMIT_STORAGE_URI must name a synchronous storage, not {uri.split(':')[0]}")
    return Limiter(storage, MovingWindowRateLimiter(storage))


def limiter() -> Limiter:
    with _lock:
        return _limiter(get_settings().rate_limit_storage_uri)


def reset_limits() -> None:
    """Forget every count of the configured storage (tests)."""
    with _lock:
        _limiter(get_settings().rate_limit_storage_uri).storage.reset()
        _limiter.cache_clear()


@lru_cache(maxsize=16)
def parsed_limits(spec: str) -> list[RateLimitItem]:
    """A `limits` spec (`5/minute;20/hour`) as its items (none for an empty spec)."""
    return list(parse_many(spec)) if spec.strip() else []


def hit_ip(spec: str, scope: str, ip: str) -> int | None:
    """Count one request of client `ip` (keyed by `ip_limit_key`) against the limits `spec` of `scope`;
    None when allowed, else seconds until it would be."""
    return limiter().hit(parsed_limits(spec), scope, ip_limit_key(ip))
