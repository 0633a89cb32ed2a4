"""SMS encoding detection (GSM-7 vs UCS-2) and segment counting (3GPP TS 23.038 / 23.040).

GSM-7: 160 septets in one message, 153 per segment once split (the 6-byte UDH takes 7 septets); the
extension-table characters (``^ { } \\ [ ~ ] | €`` and form feed) take two septets and are never split
across segments. UCS-2: any character outside GSM-7 switches the whole message; 70 UTF-16 code units
single, 67 per segment; astral characters (most emoji) take two units and are not split either.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7 = "GSM-7"
UCS2 = "UCS-2"

#: GSM 03.38 default alphabet (the escape 0x1B itself excluded)
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: characters reached through the escape, two septets each
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

SINGLE = {GSM7: 160, UCS2: 70}
MULTI = {GSM7: 153, UCS2: 67}


@dataclass(frozen=True)
class SmsInfo:
    encoding: str
    #: septets (GSM-7) or UTF-16 code units (UCS-2)
    units: int
    segments: int
    #: units that fit in one segment for this text's encoding (160/70 when single, 153/67 when split)
    per_segment: int


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def char_units(ch: str, encoding: str) -> int:
    if encoding == GSM7:
        return 2 if ch in GSM7_EXTENSION else 1
    return 2 if ord(ch) > 0xFFFF else 1


def analyze(text: str) -> SmsInfo:
    """Encoding, length in units and the number of segments `text` is sent as."""
    encoding = GSM7 if is_gsm7(text) else UCS2
    sizes = [char_units(ch, encoding) for ch in text]
    units = sum(sizes)
    if units <= SINGLE[encoding]:
        return SmsInfo(encoding, units, 1 if units else 0, SINGLE[encoding])
    per = MULTI[encoding]
    segments, used = 1, 0
    for size in sizes:
        if used + size > per:  # a two-unit character is never split across segments
            segments += 1
            used = 0
        used += size
    return SmsInfo(encoding, units, segments, per)


def max_units(encoding: str, max_segments: int) -> int:
    """The most units `max_segments` segments can carry in `encoding`."""
    if max_segments <= 1:
        return SINGLE[encoding]
    return MULTI[encoding] * max_segments
