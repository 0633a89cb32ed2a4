"""Table-driven: SMS encoding and segments at the GSM-7/UCS-2 boundaries, X and Mastodon lengths."""

from __future__ import annotations

import pytest

from broadcaster.text.length import LengthRule, mastodon_length, x_weighted_length
from broadcaster.text.sms import GSM7, UCS2, analyze, max_units

URL = "https://example.org/" + "a" * 80  # 100 characters, counts 23 on X and Mastodon

SMS_CASES = [
    # text, encoding, units, segments
    ("", GSM7, 0, 0),
    ("a" * 160, GSM7, 160, 1),
    ("a" * 161, GSM7, 161, 2),
    ("a" * 306, GSM7, 306, 2),
    ("a" * 307, GSM7, 307, 3),
    ("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¡ÄÖÑÜ§¿äöñüà", GSM7, 41, 1),  # basic table, one septet each
    ("€" * 80, GSM7, 160, 1),  # extension table: two septets each
    ("€" * 81, GSM7, 162, 2),
    ("a" * 159 + "[", GSM7, 161, 2),  # one extension char tips it over 160
    ("a" * 158 + "^", GSM7, 160, 1),
    ("{}[]~|\\^€", GSM7, 18, 1),
    ("a" * 152 + "€" + "a" * 152, GSM7, 306, 3),  # an escape pair is never split across segments
    ("ê" * 70, UCS2, 70, 1),  # ê is not in GSM-7
    ("ê" * 71, UCS2, 71, 2),
    ("a" * 69 + "ç", UCS2, 70, 1),  # lowercase ç is not GSM-7 (only Ç is)
    ("a" * 70 + "ç", UCS2, 71, 2),
    ("Ç" * 161, GSM7, 161, 2),
    ("ê" * 134, UCS2, 134, 2),
    ("ê" * 135, UCS2, 135, 3),
    ("😀" * 35, UCS2, 70, 1),  # astral emoji: two UTF-16 units
    ("😀" * 36, UCS2, 72, 2),
    ("ê" * 66 + "😀" + "ê" * 66, UCS2, 134, 3),  # a surrogate pair is never split either
    ("Привет", UCS2, 6, 1),
    ("水" * 70, UCS2, 70, 1),
    ("a" * 160 + "😀", UCS2, 162, 3),
]


@pytest.mark.parametrize(("text", "encoding", "units", "segments"), SMS_CASES)
def test_sms_encoding_and_segments(text, encoding, units, segments):
    info = analyze(text)
    assert (info.encoding, info.units, info.segments) == (encoding, units, segments)


@pytest.mark.parametrize(
    ("encoding", "segments", "expected"), [(GSM7, 1, 160), (GSM7, 3, 459), (UCS2, 1, 70), (UCS2, 3, 201)]
)
def test_max_units(encoding, segments, expected):
    assert max_units(encoding, segments) == expected


SMS_RULE_CASES = [
    ("a" * 459, 3, True),
    ("a" * 460, 3, False),
    ("ê" * 201, 3, True),
    ("ê" * 202, 3, False),
    ("a" * 160, 1, True),
    ("a" * 161, 1, False),
]


@pytest.mark.parametrize(("text", "max_segments", "fits"), SMS_RULE_CASES)
def test_sms_rule(text, max_segments, fits):
    assert LengthRule("sms_segments", max_segments).measure(text).fits is fits


X_CASES = [
    ("a" * 280, 280),
    ("a" * 281, 281),
    (URL, 23),
    ("a" * 256 + " " + URL, 280),  # URL at the limit: exactly 280
    ("a" * 257 + " " + URL, 281),
    ("日本語", 6),  # CJK weighs 2
    ("😀", 2),
    ("é", 1),
    ("e\u0301", 1),  # NFC-normalised before counting
]


@pytest.mark.parametrize(("text", "weighted"), X_CASES)
def test_x_weighted_length(text, weighted):
    assert x_weighted_length(text) == weighted


@pytest.mark.parametrize(
    ("text", "length"),
    [("a" * 500, 500), (URL, 23), ("a" * 476 + " " + URL, 500), ("see www.example.org/x now", 31)],
)
def test_mastodon_length(text, length):
    assert mastodon_length(text) == length
