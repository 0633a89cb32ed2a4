"""Unicode bidirectional controls removed from text shown to the public (banner, status page, feeds, SMS,
voice, social, e-mail).

The embeddings and overrides (U+202A-U+202E: LRE, RLE, PDF, LRO, RLO) and isolates (U+2066-U+2069: LRI, RLI,
FSI, PDI) are invisible and reorder the characters around them: "Trojan Source" (CVE-2021-42574) in an
alert reads "call 555-0199" where the bytes say another number, or turns "evil.example/moc.knab" into what
looks like a bank's address. They are removed, not isolated:

* removal cannot leave an embedding open (a title that ends inside an RLO would reverse the rest of the page
  or the rest of the SMS), whereas isolating each field needs every surface to wrap it (HTML `<bdi>`, JSON
  consumers, SMS with no markup at all);
* right-to-left text (Arabic, Hebrew) needs none of them: the Unicode bidi algorithm orders it from the
  characters' own directions. Only mixed-direction text loses fine control, a small cost for an alert;
* in SMS every one of them forces UCS-2 (70 instead of 160 characters a segment).

The implicit marks U+200E/U+200F/U+061C (LRM, RLM, ALM) are kept: they cannot open a run that spills past
the field, and RTL writers use them to place punctuation. Stored content is left as entered (the API shows
what was written); the controls are removed where content is rendered.
"""

from __future__ import annotations

BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_REMOVE: dict[int, None] = dict.fromkeys(map(ord, BIDI_CONTROLS))


def strip_bidi(text: str) -> str:
    """`text` without bidi embedding, override and isolate controls (a `Markup` stays `Markup`)."""
    return text.translate(_REMOVE)


def has_bidi(text: str) -> bool:
    return any(c in text for c in BIDI_CONTROLS)
