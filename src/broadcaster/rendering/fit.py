"""Shortening text to a limit without cutting inside a URL, a phone number, an e-mail address or a word."""

from __future__ import annotations

import re
from collections.abc import Callable

from broadcaster.text.length import URL_RE

PHONE_RE = re.compile(r"\+?\(?\d[\d\s().\-/]{5,}\d")
EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
ELLIPSIS = "..."  # three dots stay in GSM-7, unlike "…"


def protected_spans(text: str) -> list[tuple[int, int]]:
    """Character ranges that must never be cut: URLs, phone numbers, e-mail addresses."""
    spans = [m.span() for rx in (URL_RE, PHONE_RE, EMAIL_RE) for m in rx.finditer(text)]
    return sorted(spans)


def cut_points(text: str) -> list[int]:
    """Prefix lengths where `text` may be cut: before a whitespace run, outside every protected span."""
    spans = protected_spans(text)

    def protected(i: int) -> bool:
        return any(start < i < end for start, end in spans)

    points = [m.start() for m in re.finditer(r"\s+", text) if m.start() > 0]
    return [i for i in points if not protected(i)]


def shorten(text: str, fits: Callable[[str], bool], ellipsis: str = ELLIPSIS) -> str | None:
    """The longest word-boundary prefix of `text` (plus `ellipsis`) for which `fits` holds; None if none does.

    `fits` is assumed monotone (a shorter prefix fits if a longer one does), so this is a binary search."""
    if fits(text):
        return text
    points = cut_points(text)
    candidates = [text[:i].rstrip(" ,;:-") + ellipsis for i in points]
    lo, hi, best = 0, len(candidates) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        if fits(candidates[mid]):
            best = candidates[mid]
            lo = mid + 1
        else:
            hi = mid - 1
    return best
