"""Free-text replies a person should read (responses.distress): danger or a call for help in every supported
language is flagged; plain or positive replies are not; the console's split of the unrecognised replies."""

from __future__ import annotations

import pytest

from broadcaster.responses.distress import distress_terms, languages, needs_a_person
from broadcaster.settings import Settings

FLAGGED = [
    ("not safe", "not safe"),
    ("NOT SAFE!!", "not safe"),
    ("help", "help"),
    ("we are trapped on the roof", "trapped"),
    ("Im not ok", "not ok"),
    ("no estoy bien", "no estoy bien"),
    ("ayuda por favor", "ayuda"),
    ("AYÚDENME", "ayudenme"),
    ("estamos atrapados", "atrapados"),
    ("pas en sécurité", "pas en securite"),
    ("pas en securite", "pas en securite"),
    ("à l'aide", "l'aide"),
    ("A L’AIDE", "l'aide"),
    ("je ne vais pas bien", "pas bien"),
    ("au secours", "secours"),
    ("hilfe", "hilfe"),
    ("wir sind nicht sicher", "nicht sicher"),
    ("eingeschlossen im Keller", "eingeschlossen"),
]
NOT_FLAGGED = ["maybe", "I'm safe", "safe", "ok", "estoy bien", "je vais bien", "alles gut", "3", "", "thanks"]


@pytest.mark.parametrize(("text", "term"), FLAGGED)
def test_danger_or_help_in_any_supported_language_needs_a_person(text: str, term: str) -> None:
    assert needs_a_person(text), text
    assert term in distress_terms(text)


@pytest.mark.parametrize("text", NOT_FLAGGED)
def test_plain_or_positive_replies_do_not(text: str) -> None:
    assert not needs_a_person(text), (text, distress_terms(text))


def test_every_supported_language_has_a_word_list() -> None:
    supported = set(Settings.model_fields["supported_locales"].default_factory())  # type: ignore[misc]
    assert supported and supported <= set(languages())


def test_terms_are_listed_once_in_reading_order() -> None:
    assert distress_terms("help, not safe, help") == ["help", "not safe"]
