"""The compose page's server side (issue 21): the channel groups in the audience's words and a draft re-opened
with its question."""

from __future__ import annotations

import json
import re


def _page_data(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="page-data">(.*?)</script>', html, re.S)
    assert found
    return json.loads(found.group(1))


def test_compose_offers_channels_in_the_audiences_words(signed_in) -> None:
    page = signed_in("editor").get("/console/compose")
    assert page.status_code == 200
    data = _page_data(page.text)
    assert [g["label"] for g in data["groups"]] == [
        "Text message",
        "Voice call",
        "E-mail",
        "Social media",
        "Website banner and status page",
        "Webhooks",
    ]
    assert (
        data["kinds"]["twilio-sms"] == "sms"
        and data["kinds"]["x"] == "social"
        and data["kinds"]["webhook"] == "webhook"
    )
    main = page.text.split("<main", 1)[1].lower()
    for jargon in ("routing map", "etag", "version hash", "segments/s"):
        assert jargon not in main, jargon


def test_a_draft_reopens_with_its_question(client, auth, emergency_category, signed_in) -> None:
    body = {
        "title": "Gas smell",
        "category": "emergency",
        "severity": "major",
        "update": {
            "body": "A gas smell was reported.",
            "question": {
                "text": "Are you safe?",
                "options": [{"label": "Safe"}, {"label": "Help", "needs_help": True}],
            },
        },
    }
    resp = client.post("/v1/incidents", headers=auth("write"), json=body)
    assert resp.status_code == 201, resp.text
    update_id = resp.json()["updates"][0]["id"]
    page = signed_in("editor").get(f"/console/compose?update_id={update_id}")
    assert page.status_code == 200
    draft = _page_data(page.text)["draft"]
    assert draft["question"] == {
        "text": "Are you safe?",
        "options": [{"label": "Safe", "needs_help": False}, {"label": "Help", "needs_help": True}],
    }
    assert draft["area"] is None
