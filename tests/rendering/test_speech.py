"""Voice calls never read emoji or URLs aloud: a URL becomes "the link is in our text message" (or, in TwiML
built from text that was not rendered, its bare domain)."""

from __future__ import annotations

import pytest
import regex
from tests.rendering.test_render import make_update

from broadcaster.channels.base import Message
from broadcaster.rendering import render_update
from broadcaster.settings import Settings

BODY = (
    "🚨 Evacuate the north district now 👨‍👩‍👧! Shelters: https://city.example/shelters?area=north. "
    "Map at www.city.example/map 🗺️ and https://bit.ly/3xYz 👍🏽 #1️⃣"
)
PICTOGRAPHS = regex.compile(r"[\p{Extended_Pictographic}\p{Emoji_Modifier}\p{Regional_Indicator}\uFE0F\u20E3]")


def _spoken_ok(text: str) -> None:
    assert not PICTOGRAPHS.search(text), text
    for part in ("http", "www.", "://", "bit.ly", "/shelters"):
        assert part not in text, text


@pytest.mark.parametrize(
    ("locale", "phrase"), [("en", "the link is in our text message"), ("fr", "le lien est dans notre SMS")]
)
def test_voice_message_has_no_emoji_and_no_url(locale, phrase):
    update = make_update(BODY, translations={"fr": {"body": BODY.replace("Evacuate", "Évacuez")}})
    settings = Settings(_env_file=None, public_url="https://bc.example", org_name="City")
    text = render_update(None, update, "voice", locale, settings=settings).message.text
    _spoken_ok(text)
    assert phrase in text
    assert "north district now!" in text  # emoji gone, punctuation kept in place


def test_twiml_never_spells_out_a_url_or_reads_emoji():
    from lxml import etree

    from broadcaster.channels.twilio import twiml_for

    twiml = twiml_for(Message(text="🚨 Water off. Details: https://www.city.example/water/outage-17."), None)
    says = [e.text for e in etree.fromstring(twiml.encode()).iter("Say")]
    assert len(says) == 2
    for said in says:
        _spoken_ok(said)
        assert said == "Water off. Details: city.example."
