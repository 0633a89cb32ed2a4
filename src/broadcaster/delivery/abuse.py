"""Limits on the anonymous subscribe form: the client's IP, rate limits, and which phone numbers may sign up.

Per-IP limits (the subscribe form here, password sign-in in users/pages.py) count a client under
`ip_limit_key`: an IPv6 client by its network (RATE_LIMIT_IPV6_PREFIX, default /64, what one subscriber line
or one server usually gets), so rotating addresses inside it does not buy a fresh budget.

Rate limits use the maintained `limits` package (moving windows). Its storage is `RATE_LIMIT_STORAGE_URI`:
`memory://` counts per process (right for the embedded single process), `redis://...` shares the counts
between API processes. The money-critical rule, at most one confirmation text per number per
`SUBSCRIBE_CONFIRM_INTERVAL_SECONDS`, does not depend on it: that is kept in the database (subscribers.py).
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from limits import RateLimitItem, parse_many
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from starlette.requests import HTTPConnection

from broadcaster.errors import AppError, Unprocessable
from broadcaster.settings import Settings, get_settings

#: phonenumbers' region of non-geographic numbers: satellite (+881 Iridium/Globalstar, +870 Inmarsat),
#: international networks (+882, +883) and global services; premium rates, the usual SMS-pumping targets
NON_GEOGRAPHIC = "001"


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


def check_ip(ip: str) -> None:
    wait = hit_ip(get_settings().subscribe_rate_limit, "subscribe-ip", ip)
    if wait is not None:
        raise rate_limited(f"Too many subscribe requests from this address; try again in {wait} s.", None, wait)


def phone_prefix(phone: str, digits: int) -> str:
    return "+" + phone.lstrip("+")[:digits]


def check_phone_prefix(phone: str) -> None:
    settings = get_settings()
    prefix = phone_prefix(phone, settings.subscribe_phone_prefix_digits)
    wait = limiter().hit(parsed_limits(settings.subscribe_phone_prefix_rate_limit), "subscribe-prefix", prefix)
    if wait is not None:
        raise rate_limited(f"Too many signups for numbers starting {prefix}; try again in {wait} s.", "phone", wait)


# --- which numbers may sign up ---------------------------------------------------------------------------


def allowed_countries(settings: Settings | None = None) -> set[str]:
    """SUBSCRIBE_PHONE_COUNTRIES, else the country of TWILIO_FROM_NUMBER, else none; `*` means any."""
    settings = settings or get_settings()
    if settings.subscribe_phone_countries:
        return {c.upper() for c in settings.subscribe_phone_countries}
    if settings.twilio_from_number:
        try:
            number = phonenumbers.parse(settings.twilio_from_number, None)
        except phonenumbers.NumberParseException:
            return set()
        region = phonenumbers.region_code_for_number(number) or phonenumbers.region_code_for_country_code(
            number.country_code or 0
        )
        return {region} if region and region != NON_GEOGRAPHIC else set()
    return set()


def check_phone_country(phone: str) -> None:
    """422 naming `phone` for satellite/international-network numbers and countries not on the allow-list."""
    try:
        parsed = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException as exc:
        raise Unprocessable(f"phone: is not a phone number ({exc})", field="phone") from exc
    # a number outside the known ranges counts for its calling code's main country (+1 -> US, +44 -> GB)
    region = phonenumbers.region_code_for_number(parsed) or phonenumbers.region_code_for_country_code(
        parsed.country_code or 0
    )
    if region == NON_GEOGRAPHIC:
        raise Unprocessable(
            "phone: satellite and international-network numbers (e.g. +881, +882) cannot sign up", field="phone"
        )
    allowed = allowed_countries()
    if "*" in allowed or region in allowed:
        return
    if not allowed:
        raise Unprocessable("phone: text-message signups are not available here", field="phone")
    raise Unprocessable(
        f"phone: numbers from {region} cannot sign up here (accepted: {', '.join(sorted(allowed))})", field="phone"
    )
