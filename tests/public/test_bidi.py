"""Bidi controls (U+202A-U+202E, U+2066-U+2069) never reach the banner, the status page, the feeds or SMS.

"Trojan Source": an RLO in a title makes `call 9910-555 now` display as another number, and an unclosed one
reverses everything after it on the page."""

from __future__ import annotations

import pytest

from broadcaster.bidi import BIDI_CONTROLS

TITLE = "Gas leak \u202ecall 9910-555\u202c now \u2067\u05e9\u05dc\u05d5\u05dd"
BODY = "Evacuate \u202dMain St\u202c. Details: \u2066bank.example\u2069 \u202b(unclosed"
SUMMARY = "Evacuate \u202eMain St"


def _assert_clean(text: str, where: str) -> None:
    found = sorted({f"U+{ord(c):04X}" for c in text if c in BIDI_CONTROLS})
    assert not found, f"{where}: {found}"


def test_banner_status_page_and_feeds_drop_bidi_controls(client, publish):
    update = publish(TITLE, BODY, summary=SUMMARY)
    iid = update["incident_id"]
    banner = client.get("/v1/banner").json()["banners"][0]
    assert banner["title"] == "Gas leak call 9910-555 now \u05e9\u05dc\u05d5\u05dd"  # Hebrew stays
    assert "Main St" in banner["text"]
    for path in (
        "/v1/banner",
        "/v1/banner.html",
        "/status",
        f"/status/incidents/{iid}",
        "/v1/feeds/rss.xml",
        "/v1/feeds/atom.xml",
        "/v1/feeds/cap.xml",
    ):
        resp = client.get(path)
        assert resp.status_code == 200, path
        _assert_clean(resp.text, path)
    page = client.get(f"/status/incidents/{iid}").text
    assert "Details: bank.example (unclosed" in page


@pytest.mark.parametrize("channel", ["sms", "voice", "social", "banner", "webhook", "email"])
def test_rendered_messages_drop_bidi_controls(channel):
    from tests.rendering.test_render import make_update

    from broadcaster.rendering import render_update
    from broadcaster.settings import Settings

    update = make_update(BODY, SUMMARY)
    update.incident.title = TITLE
    update.links = [{"title": "\u202eMap", "url": "https://bc.example/map"}]
    rendered = render_update(None, update, channel, "en", settings=Settings(_env_file=None, org_name="City"))
    message = rendered.message
    for part in (message.text, message.subject or "", message.html or "", str(message.data)):
        _assert_clean(part, channel)
    if channel == "sms":
        assert rendered.encoding == "GSM-7"  # each control forced UCS-2 (70 characters a segment)
