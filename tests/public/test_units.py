"""Pure functions: Accept-Language, If-None-Match, text shortening, colour contrast."""

from __future__ import annotations

import pytest

from broadcaster.public.negotiation import etag_matches, parse_accept_language, variant_key
from broadcaster.public.palette import PALETTE
from broadcaster.public.snapshot import safe_url, shorten


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("fr-CA,fr;q=0.9,en;q=0.8", ("fr-CA", "fr", "en")),
        ("en;q=0.1, de;q=0.9, fr", ("fr", "de", "en")),
        ("de;q=0, fr", ("fr",)),
        ("*, es", ("es",)),
        ("pt_br", ("pt-BR",)),
        ("zh-hant-tw", ("zh-Hant-TW",)),
        ("", ()),
        ("!!!, fr;q=abc, en", ("en",)),
    ],
)
def test_parse_accept_language(header, expected):
    assert parse_accept_language(header) == expected


def test_variant_key_is_bounded_to_known_languages():
    locales, langs = frozenset({"en", "fr", "pt-BR"}), frozenset({"en", "fr", "pt"})
    assert variant_key(("de", "fr-CA", "en"), locales, langs) == ("fr", "en")
    assert variant_key(("pt",), locales, langs) == ("pt",)
    assert variant_key(("xx", "yy"), locales, langs) == ()


def test_etag_matches():
    tag = b'"abc"'
    assert etag_matches(b'"abc"', tag)
    assert etag_matches(b'W/"abc"', tag)
    assert etag_matches(b'"x", W/"abc"', tag)
    assert etag_matches(b"*", tag)
    assert not etag_matches(b'"abcd"', tag)
    assert not etag_matches(b"abc", tag)


def test_shorten_on_word_boundary():
    text = "word " * 100
    out = shorten(text, 50)
    assert len(out) <= 50 and out.endswith("…") and not out.endswith(" …")
    assert shorten("  short   text ") == "short text"


def test_safe_url():
    assert safe_url("https://x.example") == "https://x.example"
    assert safe_url("javascript:alert(1)") is None


def _luminance(hex_colour: str) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


@pytest.mark.parametrize("severity", ["critical", "major", "minor", "info"])
def test_severity_colours_meet_wcag_aa(severity):
    fg, bg = _luminance(PALETTE[severity]["fg"]), _luminance(PALETTE[severity]["bg"])
    ratio = (max(fg, bg) + 0.05) / (min(fg, bg) + 0.05)
    assert ratio >= 4.5, ratio
