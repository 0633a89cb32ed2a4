"""Free-text replies that say the person is in danger or asks for help ("not safe", "ayuda", "à l'aide",
"hilfe"), in every language messages ship in. Documented in docs/responses.md ("Replies a person should read").

A reply that chose no option is normally listed at the bottom of the responses page as "not understood". One that
contains a distress word or phrase of any supported language is shown with the people who need help instead,
marked "a person should read this". The lists err on the side of flagging: a person reading a harmless reply
costs a minute; missing "estoy atrapado" could cost a life. Nothing is counted or answered differently: this
only decides where the console shows the reply.

Matching: the reply is split into words like option matching does (`matching.words`), accents are dropped
("securite" matches "sécurité"), and it is flagged when it holds one of the language's words or one of its
phrases as consecutive words ("not safe", "no estoy bien", "pas en sécurité", "nicht sicher").
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from broadcaster.responses.matching import words


def fold(word: str) -> str:
    """Upper case without accents or curly apostrophes: "sécurité" -> "SECURITE", "L\\u2019AIDE" -> "L'AIDE"."""
    decomposed = unicodedata.normalize("NFKD", word.replace("\u2019", "'").upper())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _phrases(*texts: str) -> frozenset[tuple[str, ...]]:
    return frozenset(tuple(fold(w) for w in words(t)) for t in texts)


#: per language (the locales of settings.supported_locales and templates/labels.yaml): single words that flag a
#: reply wherever they appear
DISTRESS_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        fold(w)
        for w in (
            "help", "sos", "mayday", "trapped", "stuck", "stranded", "injured", "hurt", "bleeding", "unsafe",
            "danger", "emergency", "ambulance", "rescue", "drowning", "dying", "unconscious",
        )
    ),
    "fr": frozenset(
        fold(w)
        for w in (
            "aide", "l'aide", "aidez", "secours", "piégé", "piégée", "piégés", "coincé", "coincée",
            "coincés", "bloqué", "bloquée", "blessé", "blessée", "blessés", "danger", "urgence", "noyade",
        )
    ),
    "es": frozenset(
        fold(w)
        for w in (
            "ayuda", "ayúdenme", "ayudame", "ayúdame", "auxilio", "socorro", "atrapado", "atrapada", "atrapados",
            "herido", "herida", "heridos", "peligro", "emergencia", "urgencia", "ahogando",
        )
    ),
    "de": frozenset(
        fold(w)
        for w in (
            "hilfe", "helft", "helfen", "notfall", "eingeschlossen", "eingeklemmt", "gefangen", "verletzt",
            "gefahr", "lebensgefahr", "notarzt", "rettung", "ertrinke",
        )
    ),
}  # fmt: skip

#: per language: phrases (consecutive words) that flag a reply; mostly a negated "safe" or "well", which option
#: matching refuses to count (matching.NEGATIONS) and which must not read as "not understood"
DISTRESS_PHRASES: dict[str, frozenset[tuple[str, ...]]] = {
    "en": _phrases(
        "not safe", "not ok", "not okay", "not fine", "not well", "not alright", "not all right", "isn't safe",
        "can't get out", "cant get out", "can't breathe", "cant breathe", "can't move", "cant move",
        "no not safe", "need a doctor",
    ),
    "fr": _phrases(
        "pas en sécurité", "pas en securite", "pas bien", "pas ok", "pas sain et sauf", "pas sains et saufs",
        "à l'aide", "au secours", "peux pas sortir", "va pas",
    ),
    "es": _phrases(
        "no estoy bien", "no estamos bien", "no estoy a salvo", "no estamos a salvo", "no estoy seguro",
        "no estoy segura", "no puedo salir", "no puedo respirar", "no ok", "no están bien",
    ),
    "de": _phrases(
        "nicht sicher", "nicht in sicherheit", "nicht gut", "nicht ok", "nicht okay", "nicht in ordnung",
        "komme nicht raus", "kann nicht raus",
    ),
}  # fmt: skip


def distress_terms(text: str) -> list[str]:
    """The distress words and phrases found in `text` (lower case, in reading order; empty when none)."""
    found = [fold(w) for w in words(text)]
    hits: list[tuple[int, str]] = []
    vocabulary = frozenset().union(*DISTRESS_WORDS.values())
    for i, word in enumerate(found):
        if word in vocabulary:
            hits.append((i, word))
    for phrases in DISTRESS_PHRASES.values():
        for phrase in phrases:
            n = len(phrase)
            for i in range(len(found) - n + 1):
                if tuple(found[i : i + n]) == phrase:
                    hits.append((i, " ".join(phrase)))
    return list(dict.fromkeys(term.lower() for _, term in sorted(hits)))


def needs_a_person(text: str) -> bool:
    """Whether a free-text reply says the person is in danger or asks for help, in any supported language."""
    return bool(distress_terms(text))


def languages() -> Iterable[str]:
    """The languages with word lists (tests check they cover settings.supported_locales' default)."""
    return DISTRESS_WORDS.keys() & DISTRESS_PHRASES.keys()
