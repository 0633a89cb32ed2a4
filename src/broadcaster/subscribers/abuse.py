"""Limits on the anonymous subscribe form: requests per client address, signups per number prefix, and which
phone numbers may sign up (the counting itself is broadcaster.throttle).

The money-critical rule, at most one confirmation text per number per `SUBSCRIBE_CONFIRM_INTERVAL_SECONDS`,
does not depend on these counts: that is kept in the database (subscribers/service.py).
"""

from __future__ import annotations

import phonenumbers

from broadcaster.errors import Unprocessable
from broadcaster.settings import Settings, get_settings
from broadcaster.throttle import hit_ip, limiter, parsed_limits, rate_limited

#: phonenumbers' region of non-geographic numbers: satellite (+881 Iridium/Globalstar, +870 Inmarsat),
#: international networks (+882, +883) and global services; premium rates, the usual SMS-pumping targets
NON_GEOGRAPHIC = "001"


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
