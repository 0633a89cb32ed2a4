"""How long a rendered text is in its channel's own unit, and whether it fits.

* ``sms_segments``: GSM-7/UCS-2 units and segments; the limit is a number of segments.
* ``x_weighted``: X's weighted length (twitter-text-parser: CJK and emoji weigh 2, every URL 23, NFC).
* ``mastodon``: characters with every URL counted as 23 (Mastodon's `characters_reserved_per_url`;
  URLs found by twitter-text's extractor, as Mastodon does).
* ``bluesky``: user-perceived characters (extended grapheme clusters, UAX #29, counted with the `regex`
  module's ``\\X``: an emoji ZWJ sequence, a flag or "e" + combining accent is one); URLs count in full
  (Bluesky does not shorten them); and the post's record also allows at most 3,000 UTF-8 bytes.
* ``chars``: plain Unicode characters.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import re
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import regex

from broadcaster.text import sms


def _load_parse_tweet() -> Callable[[str], Any]:
    """Import twitter-text-parser's `parse_tweet`.

    Its emoji table is read at import time through `pkg_resources.resource_string`, which setuptools >= 81
    no longer ships (and which a venv without setuptools lacks). When it is missing, a stand-in offering
    just that function is put in `sys.modules` for the duration of the import only."""
    if importlib.util.find_spec("pkg_resources") is not None:
        from twitter_text import parse_tweet

        return parse_tweet
    shim = types.ModuleType("pkg_resources")

    def resource_string(package: str, name: str) -> bytes:
        return importlib.resources.files(package.rpartition(".")[0] or package).joinpath(name).read_bytes()

    shim.resource_string = resource_string  # type: ignore[attr-defined]
    sys.modules["pkg_resources"] = shim
    try:
        from twitter_text import parse_tweet

        return parse_tweet
    finally:
        sys.modules.pop("pkg_resources", None)


parse_tweet = _load_parse_tweet()
from twitter_text import extract_urls_with_indices  # noqa: E402 (after the pkg_resources-safe import)

URL_RE = re.compile(r"(?:https?://|www\.)[^\s<>\"']+", re.IGNORECASE)
MASTODON_URL_WEIGHT = 23
#: app.bsky.feed.post `text`: maxGraphemes 300 (the limit), maxLength 3000 (UTF-8 bytes)
BLUESKY_MAX_GRAPHEMES = 300
BLUESKY_MAX_BYTES = 3000
_GRAPHEME = regex.compile(r"\X")


@dataclass(frozen=True)
class Measure:
    length: int
    max_length: int | None
    fits: bool
    encoding: str | None = None
    segments: int | None = None


@dataclass(frozen=True)
class LengthRule:
    """A channel's length unit and limit (`limit` is segments for SMS, units otherwise; None = unlimited)."""

    unit: str
    limit: int | None

    def measure(self, text: str) -> Measure:
        if self.unit == "sms_segments":
            info = sms.analyze(text)
            max_segments = self.limit or 1
            return Measure(
                info.units,
                sms.max_units(info.encoding, max_segments),
                info.segments <= max_segments,
                info.encoding,
                info.segments,
            )
        if self.unit == "bluesky":
            length = grapheme_length(text)
            fits = (self.limit is None or length <= self.limit) and len(text.encode("utf-8")) <= BLUESKY_MAX_BYTES
            return Measure(length, self.limit, fits)
        if self.unit == "x_weighted":
            length = x_weighted_length(text)
        elif self.unit == "mastodon":
            length = mastodon_length(text)
        else:
            length = len(text)
        return Measure(length, self.limit, self.limit is None or length <= self.limit)


def x_weighted_length(text: str) -> int:
    return int(parse_tweet(text).weightedLength)


def mastodon_length(text: str) -> int:
    """Characters, every URL (as twitter-text extracts them, like Mastodon does) counting 23."""
    urls = extract_urls_with_indices(text)
    return len(text) - sum(end - start for start, end in (u["indices"] for u in urls)) + MASTODON_URL_WEIGHT * len(urls)


def grapheme_length(text: str) -> int:
    """User-perceived characters: extended grapheme clusters (UAX #29), as Bluesky counts its limit."""
    return len(_GRAPHEME.findall(text))


def bluesky_fits(text: str, limit: int = BLUESKY_MAX_GRAPHEMES) -> bool:
    """Whether `text` is a valid Bluesky post text: at most `limit` graphemes and 3,000 UTF-8 bytes."""
    return grapheme_length(text) <= limit and len(text.encode("utf-8")) <= BLUESKY_MAX_BYTES
