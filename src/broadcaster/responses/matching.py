"""Which option an SMS reply chooses. Documented in docs/responses.md ("Matching rules").

1. The reply is trimmed, upper-cased, and split into words at spaces and punctuation ("1.", "1)", "#1").
2. The first word is an option key ("1", " 1 ", "1 safe", "2-help") -> that option.
3. Otherwise, when the reply contains a negation (NOT, NO, DON'T, ...; and in French, Spanish and German: NE,
   PAS, NUNCA, NICHT, ...) that is not itself a keyword, it is not recognised ("not safe" must never count as
   "safe", nor "je ne vais pas bien" as "Je vais bien"): a person reads it.
4. Otherwise every word that is an option's keyword, or a distinctive word of its label (3+ letters, in one
   option's label only, not a filler word), points at that option; exactly one option pointed at -> it.
5. Anything else (no word, or words pointing at two options) is not recognised: stored and shown, counted
   nowhere.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

_WORDS = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
#: words that turn a reply around, in the languages messages ship in (templates/labels.yaml: en, fr, es, de):
#: "je ne vais pas bien" must never count as "Je vais bien"
NEGATIONS = frozenset(
    {"NOT", "NO", "NOPE", "DONT", "DON'T", "CANT", "CAN'T", "ISNT", "ISN'T", "NEVER", "AINT"}
    | {"NE", "PAS", "NON", "JAMAIS", "AUCUN", "AUCUNE"}  # fr ("n'ai pas": PAS)
    | {"NUNCA", "NADA", "NI", "TAMPOCO"}  # es ("NO" above)
    | {"NICHT", "NEIN", "KEIN", "KEINE", "KEINEN", "NIE", "NIEMALS"}  # de
)
FILLER = frozenset({"I'M", "IM", "AND", "THE", "ARE", "YOU", "NEED", "FOR", "WITH", "HAVE", "AM", "I", "WE"})


def words(text: str) -> list[str]:
    return [w.upper().replace("\u2019", "'") for w in _WORDS.findall(text.replace("\u2019", "'"))]


def _label_words(options: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Distinctive label word -> option key (words found in two labels are dropped)."""
    owner: dict[str, str | None] = {}
    for option in options:
        for word in set(words(str(option.get("label", "")))):
            if len(word) < 3 or word in FILLER or word in NEGATIONS:
                continue
            owner[word] = None if word in owner and owner[word] != option["key"] else option["key"]
    return {w: k for w, k in owner.items() if k is not None}


def option_by_key(options: Sequence[dict[str, Any]], key: str | None) -> dict[str, Any] | None:
    """The option whose key is `key` (None when `key` is None or no option has it)."""
    return next((o for o in options if key is not None and str(o["key"]) == key), None)


def match(text: str, options: Sequence[dict[str, Any]]) -> str | None:
    """The key of the option `text` chooses, or None when it is not recognised."""
    found = words(text)
    if not found:
        return None
    keys = {str(o["key"]).upper(): str(o["key"]) for o in options}
    if found[0] in keys:
        return keys[found[0]]
    keywords = {str(w).upper(): str(o["key"]) for o in options for w in (o.get("keywords") or [])}
    if any(w in NEGATIONS and w not in keywords for w in found):
        return None
    labels = _label_words(options)
    chosen = {keywords.get(w) or labels.get(w) for w in found} - {None}
    return chosen.pop() if len(chosen) == 1 else None


def digit_option(digits: str, options: Sequence[dict[str, Any]]) -> str | None:
    """The option a pressed digit chooses on a call: the option whose key is that digit, else by position."""
    digits = digits.strip()
    if len(digits) != 1 or not digits.isdigit():
        return None
    for option in options:
        if str(option["key"]) == digits:
            return str(option["key"])
    index = int(digits) - 1
    return str(options[index]["key"]) if 0 <= index < len(options) else None


def press_digit(position: int, option: dict[str, Any]) -> str:
    """The digit to press for an option: its key when a single digit, else its position (1-based)."""
    key = str(option["key"])
    return key if len(key) == 1 and key.isdigit() else str(position)
