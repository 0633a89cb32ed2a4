"""Table-driven: Bluesky's limit is 300 graphemes (extended grapheme clusters), URLs counted in full, and
at most 3,000 UTF-8 bytes; fitting a Bluesky post uses the summary, then shortens, never inside a URL."""

from __future__ import annotations

import pytest

from broadcaster.models import Category, Incident, Update
from broadcaster.rendering import render_update
from broadcaster.settings import Settings
from broadcaster.text.length import LengthRule, bluesky_fits, grapheme_length

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # man, woman, girl, boy joined by ZWJ
RAINBOW_FLAG = "\U0001f3f3\ufe0f\u200d\U0001f308"
FLAG_FR = "\U0001f1eb\U0001f1f7"  # two regional indicators
THUMBS_MEDIUM = "\U0001f44d\U0001f3fd"  # emoji + skin tone modifier
URL = "https://example.org/" + "a" * 80  # 100 characters: Bluesky does not shorten URLs

GRAPHEME_CASES = [
    ("", 0),
    ("abc", 3),
    ("e\u0301", 1),  # e + combining acute
    ("é", 1),
    (FAMILY, 1),  # seven code points
    (RAINBOW_FLAG, 1),
    (FLAG_FR, 1),
    (FLAG_FR * 2, 2),  # regional indicators pair up
    (THUMBS_MEDIUM, 1),
    ("\U0001f600", 1),  # one astral code point (two UTF-16 units)
    ("क्षि", 1),  # Devanagari conjunct (virama joins; Unicode 15.1 rules)
    ("한국어", 3),
    ("\u1100\u1161\u11a8", 1),  # conjoining Hangul jamo form one syllable
    ("\r\n", 1),
    ("日本語", 3),
    (URL, 100),
    (f"Water off {FAMILY} {URL}", 112),
]


@pytest.mark.parametrize(("text", "length"), GRAPHEME_CASES)
def test_grapheme_length(text, length):
    assert grapheme_length(text) == length
    assert LengthRule("bluesky", 300).measure(text).length == length


FIT_CASES = [
    ("a" * 300, True),
    ("a" * 301, False),
    (FAMILY * 100 + "a" * 200, True),  # 300 graphemes, 2,700 bytes
    (FAMILY * 100 + "a" * 201, False),
    ("a" * 199 + " " + URL, True),  # a URL at the limit counts in full: exactly 300
    ("a" * 200 + " " + URL, False),
    ("e\u0301" * 300, True),  # 600 code points, 300 graphemes
    (FAMILY * 120, True),  # 3,000 bytes exactly
    (FAMILY * 121, False),  # 121 graphemes but 3,025 bytes: over the record's byte limit
    ("水" * 300, True),
]


@pytest.mark.parametrize(("text", "fits"), FIT_CASES)
def test_bluesky_rule(text, fits):
    assert LengthRule("bluesky", 300).measure(text).fits is fits
    assert bluesky_fits(text) is fits


@pytest.fixture
def settings(monkeypatch, tmp_path) -> Settings:
    monkeypatch.chdir(tmp_path)
    return Settings(_env_file=None, public_url="https://bc.example", org_name="City")


def make_update(body: str, summary: str = "") -> Update:
    category = Category(slug="water", name="Water", contact={})
    incident = Incident(id=7, title="Water outage", severity="critical", status="identified", category=category)
    update = Update(id=11, body=body, summary=summary, locale="en", translations={}, kind="normal", links=[])
    update.incident = incident
    return update


STATUS = " https://bc.example/status"  # what social.txt.j2 appends: 26 graphemes


# (body, summary, used_summary, truncated, expected text or None, expected length)
RENDER_CASES = [
    # emoji ZWJ sequences count one each: 100 families (700 code points, 2,500 bytes) + 174 = 274 graphemes
    (FAMILY * 100 + " " + "a" * 173, "", False, False, FAMILY * 100 + " " + "a" * 173 + STATUS, 300),
    # 279 + 26 graphemes does not fit: the summary is used
    ("word " * 56, "Water off north.", True, False, "Water off north." + STATUS, 42),
    # no summary: shortened at a word boundary with "..."
    ("word " * 56, "", False, True, ("word " * 54).rstrip() + "..." + STATUS, 298),
    # a URL in the body is never cut: it is dropped whole with the words after it
    ("a" * 180 + " " + URL + " tail", "", False, True, "a" * 180 + "..." + STATUS, 209),
]


@pytest.mark.parametrize(("body", "summary", "used_summary", "truncated", "text", "length"), RENDER_CASES)
def test_render_for_bluesky(settings, body, summary, used_summary, truncated, text, length):
    r = render_update(None, make_update(body, summary), "bluesky", "en", settings=settings)
    assert (r.adapter, r.max_length) == ("bluesky", 300)
    assert (r.used_summary, r.truncated) == (used_summary, truncated), r.actions
    assert r.message.text == text
    assert r.length == grapheme_length(r.message.text) == length <= 300
    assert not any(w.startswith("over limit") for w in r.warnings)


def test_bluesky_allows_more_than_x_for_cjk(settings):
    """X weighs a CJK character 2; Bluesky counts it as one grapheme: the same text fits Bluesky only."""
    body = "水" * 200
    x = render_update(None, make_update(body), "x", "en", settings=settings)
    bsky = render_update(None, make_update(body), "bluesky", "en", settings=settings)
    assert any(w.startswith("over limit") for w in x.warnings)  # no space to cut at, and 426 > 280
    assert bsky.message.text == body + STATUS and bsky.length == 226 and not bsky.warnings
