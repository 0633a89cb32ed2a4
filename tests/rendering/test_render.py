"""render_update: templates per channel, markers, every shipped locale, length-aware fitting."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from broadcaster.models import Category, Incident, Update
from broadcaster.rendering import TemplateError, render_update
from broadcaster.rendering.fit import cut_points, protected_spans, shorten
from broadcaster.settings import PROJECT_ROOT, Settings
from broadcaster.text.length import x_weighted_length
from broadcaster.text.sms import analyze

TEMPLATES = PROJECT_ROOT / "templates"
LOCALES = Settings(_env_file=None).supported_locales
PHONE = "+1 555 123 4567"


@pytest.fixture
def settings(monkeypatch, tmp_path) -> Settings:
    monkeypatch.chdir(tmp_path)
    return Settings(_env_file=None, public_url="https://bc.example", org_name="City")


def make_update(
    body="Water is off in the north district until 18:00.",
    summary="",
    *,
    locale="en",
    translations=None,
    kind="normal",
    test=False,
    corrects_id=None,
    contact=None,
    links=None,
) -> Update:
    category = Category(slug="water", name="Water", contact=contact if contact is not None else {"phone": PHONE})
    incident = Incident(id=7, title="Water outage", severity="critical", status="identified", category=category)
    update = Update(
        id=11,
        body=body,
        summary=summary,
        locale=locale,
        translations=translations or {},
        kind=kind,
        test=test,
        corrects_id=corrects_id,
        links=links or [],
    )
    update.incident = incident
    return update


class OneUpdateSession:
    """Just enough of a Session for render_update to look up the corrected update."""

    def __init__(self, original: Update) -> None:
        self.original = original

    def get(self, _model, ident):
        return self.original if ident == self.original.id else None


def test_every_locale_has_every_label():
    catalogue = yaml.safe_load((TEMPLATES / "labels.yaml").read_text())

    def keys(d, prefix=""):
        return {prefix + k for k, v in d.items()} | {
            x for k, v in d.items() if isinstance(v, dict) for x in keys(v, prefix + k + ".")
        }

    for locale in LOCALES:
        assert locale in catalogue, locale
        assert keys(catalogue[locale]) == keys(catalogue["en"]), locale


MARKERS = {  # locale: (test, correction, cancelled)
    "en": ("[TEST]", "CORRECTION:", "CANCELLED:"),
    "fr": ("[TEST]", "RECTIFICATIF:", "ANNULATION:"),
    "es": ("[PRUEBA]", "CORRECCIÓN:", "CANCELADO:"),
    "de": ("[TEST]", "KORREKTUR:", "WIDERRUFEN:"),
}
CHANNELS = ["sms", "voice", "email", "social", "banner", "webhook"]


def test_markers_cover_every_shipped_locale():
    assert set(MARKERS) == set(LOCALES)


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("channel", CHANNELS)
def test_test_sends_are_marked_in_every_channel_and_locale(settings, locale, channel):
    update = make_update(
        translations={loc: {"body": f"Texte {loc}", "summary": ""} for loc in LOCALES if loc != "en"}, test=True
    )
    r = render_update(None, update, channel, locale, settings=settings)
    assert r.locale == locale
    assert MARKERS[locale][0] in r.message.text
    if channel == "email":
        assert r.message.subject.startswith(MARKERS[locale][0])
    assert r.message.test is True
    assert not [w for w in r.warnings if "missing translation" in w]


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize(("kind", "index"), [("correction", 1), ("cancel", 2)])
@pytest.mark.parametrize("channel", CHANNELS)
def test_corrections_and_cancels_are_marked(settings, locale, kind, index, channel):
    original = make_update()
    original.published_at = datetime(2026, 11, 23, 9, 5, tzinfo=UTC)
    original.id = 5
    update = make_update("Sorry: only the east district is affected.", locale=locale, kind=kind, corrects_id=5)
    r = render_update(OneUpdateSession(original), update, channel, locale, settings=settings)
    assert MARKERS[locale][index] in r.message.text
    if channel in ("email", "webhook", "voice"):
        assert "2026-11-23 09:05 UTC" in r.message.text  # names the message it corrects


@pytest.mark.parametrize("locale", LOCALES)
def test_labels_and_contact_block_per_locale(settings, locale):
    catalogue = yaml.safe_load((TEMPLATES / "labels.yaml").read_text())[locale]
    update = make_update(locale=locale, contact={"phone": PHONE, "live_chat_url": "https://chat.example"})
    email = render_update(None, update, "email", locale, settings=settings)
    assert catalogue["how_to_reach_us"] in email.message.text
    assert f"{catalogue['call']}: {PHONE}" in email.message.text
    assert catalogue["status"]["identified"] in email.message.text
    sms = render_update(None, update, "sms", locale, settings=settings)
    assert f"{catalogue['help']}: {catalogue['call']} {PHONE}" in sms.message.text
    voice = render_update(None, update, "voice", locale, settings=settings)
    assert voice.message.data["voice_language"] == {"en": "en-US", "fr": "fr-FR", "es": "es-ES", "de": "de-DE"}[locale]


def test_missing_translation_falls_back_with_a_warning(settings):
    update = make_update(translations={"fr": {"body": "Eau coupée", "summary": ""}})
    r = render_update(None, update, "sms", "de", settings=settings)
    assert r.locale == "en" and "Water is off" in r.message.text
    assert r.warnings == ["missing translation for de; the en text is used"]
    fr = render_update(None, update, "sms", "fr", settings=settings)
    assert fr.locale == "fr" and "Eau coupée" in fr.message.text and fr.warnings == []


def test_sms_exact_text_and_encoding(settings):
    r = render_update(None, make_update(), "sms", "en", settings=settings)
    assert r.message.text == f"City: Water is off in the north district until 18:00. Help: Call {PHONE}"
    assert (r.encoding, r.segments, r.length, r.max_length) == ("GSM-7", 1, len(r.message.text), 459)
    assert (r.used_summary, r.truncated, r.actions, r.warnings) == (False, False, [], [])


def test_long_body_uses_the_summary(settings):
    update = make_update("Long explanation. " * 40, summary="Water off north until 18:00.")
    r = render_update(None, update, "sms", "en", settings=settings)
    assert r.used_summary and not r.truncated
    assert r.message.text == f"City: Water off north until 18:00. Help: Call {PHONE}"
    assert r.actions == ["body over the limit of 3 segments; used the short summary"]


def test_no_summary_shortens_at_a_word_boundary(settings):
    body = ("Crews are repairing the main. " * 30) + "Call 0800 123 456 for help."
    r = render_update(None, make_update(body), "sms", "en", settings=settings)
    assert r.truncated and not r.used_summary
    assert r.segments <= 3 and analyze(r.message.text).segments <= 3
    assert "..." in r.message.text
    kept = r.message.text.split("City: ", 1)[1].rsplit("...", 1)[0]
    assert body.startswith(kept) and body[len(kept)] == " "  # cut before a space, never inside a word
    assert r.message.text.endswith(f"Help: Call {PHONE}")  # contact kept whole
    assert any("shortened the body" in a for a in r.actions)
    assert any("shortened" in w for w in r.warnings)


def test_ucs2_text_gets_fewer_characters(settings):
    r = render_update(None, make_update("😀 Tuyau cassé, réparation en cours " * 10), "sms", "en", settings=settings)
    assert r.encoding == "UCS-2" and r.segments <= 3 and r.max_length == 201


def test_sms_max_segments_setting(settings):
    one = settings.model_copy(update={"sms_max_segments": 1})
    r = render_update(None, make_update("word " * 60), "sms", "en", settings=one)
    assert r.segments == 1 and r.max_length == 160 and r.truncated


URL = "https://status.example.org/incidents/2026/11/23/water-outage-north-district"


@pytest.mark.parametrize(
    "text",
    [
        "See " + URL + " for updates " * 40,
        "word " * 50 + URL + " more words follow here " * 10,
        "Call " + PHONE + " now " + "please stay calm " * 30,
    ],
)
def test_shorten_never_cuts_urls_phones_or_words(text):
    for limit in range(20, len(text), 7):
        out = shorten(text, lambda t, lim=limit: len(t) <= lim)
        if out is None:
            continue
        assert len(out) <= limit and out.endswith("...")
        kept = out[: -len("...")]
        assert text.startswith(kept)
        assert text[len(kept)] in " \n,;:-" or text[len(kept) - 1] in " \n,;:-" or text[len(kept) :].startswith(" ")
        for start, end in protected_spans(text):
            assert len(kept) <= start or len(kept) >= end, (limit, kept[-20:])


def test_cut_points_skip_protected_spans():
    text = f"Call {PHONE} or see {URL} today"
    points = cut_points(text)
    for start, end in protected_spans(text):
        assert not any(start < p < end for p in points)
    assert 4 in points  # after "Call"


def test_x_url_at_the_limit(settings):
    # the social template appends the status URL (23) after a space: the body may weigh 280 - 24
    # (twitter-text only counts URLs with a real TLD as 23, so the status page is on .org here)
    settings = settings.model_copy(update={"public_url": "https://bc.example.org"})
    body = "a" * 232 + " " + URL
    update = make_update(body, contact={})
    r = render_update(None, update, "x", "en", settings=settings)
    assert x_weighted_length(r.message.text) == 280 == r.length
    assert r.message.text == f"{body} https://bc.example.org/status" and not r.truncated
    longer = render_update(None, make_update("b" + body, contact={}), "x", "en", settings=settings)
    assert longer.truncated and URL not in longer.message.text  # the URL is dropped whole, never cut
    assert longer.message.text == "b" + "a" * 232 + "... https://bc.example.org/status"


def test_mastodon_allows_500(settings):
    body = "word " * 95  # 475 characters
    x = render_update(None, make_update(body, contact={}), "x", "en", settings=settings)
    masto = render_update(None, make_update(body, contact={}), "mastodon", "en", settings=settings)
    assert x.truncated and not masto.truncated
    assert masto.max_length == 500 and masto.length <= 500


def test_banner_short_text(settings):
    update = make_update("Long banner text. " * 30, summary="Water off north until 18:00.")
    r = render_update(None, update, "banner", "en", settings=settings)
    assert r.message.text == "Water off north until 18:00." and r.used_summary and r.max_length == 200


def test_email_parts_unsubscribe_and_escaping(settings):
    update = make_update(
        'Pipes <script>alert("x")</script> & valves', links=[{"title": "Map", "url": "https://m.example"}]
    )
    r = render_update(
        None, update, "email", "en", settings=settings, recipient_vars={"unsubscribe_url": "https://bc.example/u/abc"}
    )
    msg = r.message
    assert msg.subject == "[Critical] Water outage"
    assert msg.headers == {
        "List-Unsubscribe": "<https://bc.example/u/abc>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert "&lt;script&gt;" in msg.html and "<script>" not in msg.html
    assert '<script>alert("x")</script>' in msg.text  # plain text is not escaped
    assert 'href="https://bc.example/u/abc"' in msg.html and "Unsubscribe: https://bc.example/u/abc" in msg.text
    assert "- Map: https://m.example" in msg.text
    shared = render_update(None, update, "email", "en", settings=settings)
    assert shared.message.headers == {} and "-unsubscribe_url-" in shared.message.html


def test_webhook_payload(settings):
    r = render_update(None, make_update(test=True), "webhook", "en", settings=settings)
    payload = r.message.data["payload"]
    assert payload["event"] == "update.test" and payload["test"] is True
    assert payload["incident"]["title"] == "Water outage" and payload["update"]["id"] == 11
    assert payload["text"] == r.message.text and r.message.text.startswith("[TEST] Water outage:")


@pytest.fixture
def own_templates(settings, tmp_path) -> Settings:
    target = tmp_path / "templates"
    shutil.copytree(TEMPLATES, target)
    return settings.model_copy(update={"templates_dir": target})


def test_missing_variable_is_a_clear_error(own_templates):
    path: Path = own_templates.templates_dir / "sms.txt.j2"
    path.write_text("{{ marker }}{{ text }} {{ hotline_number }}")
    with pytest.raises(TemplateError) as info:
        render_update(None, make_update(), "sms", "en", settings=own_templates)
    err = info.value
    assert err.status_code == 422 and err.field == "templates/sms.txt.j2"
    assert err.extra["variable"] == "hotline_number" and "sms.txt.j2" in err.detail


def test_syntax_error_names_the_template(own_templates):
    (own_templates.templates_dir / "email_subject.txt.j2").write_text("{% if %}")
    with pytest.raises(TemplateError) as info:
        render_update(None, make_update(), "email", "en", settings=own_templates)
    assert info.value.field == "templates/email_subject.txt.j2"


def test_marker_survives_a_template_that_drops_it(own_templates):
    (own_templates.templates_dir / "sms.txt.j2").write_text("{{ text }}")
    r = render_update(None, make_update(test=True), "sms", "en", settings=own_templates)
    assert r.message.text.startswith("[TEST] Water is off")
    assert any("marker" in a for a in r.actions)


def test_adapter_specific_template_override(own_templates):
    (own_templates.templates_dir / "twilio-voice.txt.j2").write_text("Override: {{ text }}")
    r = render_update(None, make_update(), "twilio-voice", "en", settings=own_templates)
    assert r.message.text == "Override: Water is off in the north district until 18:00."


@pytest.mark.parametrize("channel", ["sms", "voice", "social", "banner"])
def test_short_channels_read_as_one_line(settings, channel):
    r = render_update(
        None, make_update("Water is off.\n\nBottled   water at the hall."), channel, "en", settings=settings
    )
    assert "\n" not in r.message.text and "Water is off. Bottled water at the hall." in r.message.text


def test_email_keeps_paragraphs(settings):
    r = render_update(
        None, make_update("Water is off.\n\nBottled water at the hall."), "email", "en", settings=settings
    )
    assert "Water is off.\n\nBottled water at the hall." in r.message.text
    assert "<p>Water is off.</p>" in r.message.html and "<p>Bottled water at the hall.</p>" in r.message.html
