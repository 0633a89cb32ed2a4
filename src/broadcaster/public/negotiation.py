"""HTTP negotiation helpers: Accept-Language preferences and If-None-Match matching."""

from __future__ import annotations

from broadcaster.domain import normalize_locale

#: ignore absurd headers instead of spending CPU on them
MAX_HEADER = 512
MAX_TAGS = 12


def parse_accept_language(value: str) -> tuple[str, ...]:
    """Language tags by descending q (stable for ties), normalised; `*`, q=0 and junk dropped."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(value[:MAX_HEADER].split(",")[:MAX_TAGS]):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip()
        if not tag or tag == "*":
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, raw = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(raw)
                except ValueError:
                    q = 0.0
        if q <= 0:
            continue
        try:
            ranked.append((-q, index, normalize_locale(tag)))
        except ValueError:
            continue
    ranked.sort()
    return tuple(dict.fromkeys(tag for _, _, tag in ranked))


def variant_key(prefs: tuple[str, ...], locales: frozenset[str], languages: frozenset[str]) -> tuple[str, ...]:
    """The preferences that can change the output (those the snapshot has text for), at most three.

    Two requests with the same key get the same bytes, so the number of cached variants stays bounded
    by the languages actually present, whatever clients send.
    """
    out: list[str] = []
    for tag in prefs:
        if tag in locales or tag.split("-")[0] in languages:
            out.append(tag if tag in locales else tag.split("-")[0])
        if len(out) == 3:
            break
    return tuple(dict.fromkeys(out))


def etag_matches(if_none_match: bytes, etag: bytes) -> bool:
    """Weak comparison (RFC 9110 13.1.2): `*`, or any listed tag equal to ours ignoring `W/`."""
    if if_none_match == etag:
        return True
    value = if_none_match.strip()
    if value == b"*":
        return True
    for part in value.split(b","):
        tag = part.strip()
        if tag.startswith(b"W/"):
            tag = tag[2:]
        if tag == etag:
            return True
    return False
