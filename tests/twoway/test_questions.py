"""A question on an update: validation (422 naming the field), and how each channel asks it, counted at the
fake provider through the real Twilio and SendGrid SDKs."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from tests.twoway.conftest import EMAILS, PHONES, QUESTION, local, new_update

LONG = "x" * 41


@pytest.mark.parametrize(
    ("question", "field"),
    [
        ({"text": "Are you safe?", "options": [{"label": "Yes"}]}, "question.options"),
        ({"text": "Are you safe?", "options": [{"label": str(i)} for i in range(6)]}, "question.options"),
        (
            {"text": "Are you safe?", "options": [{"label": "a"}, {"label": "b"}, {"label": LONG}]},
            "question.options.2.label",
        ),
        (
            {"text": "Are you safe?", "options": [{"label": "a", "keywords": ["STOP"]}, {"label": "b"}]},
            "question.options.0.keywords",
        ),
        ({"text": "Are you safe?", "options": [{"label": "a", "key": "1"}, {"label": "b", "key": "1"}]}, "question"),
        ({"text": " ", "options": [{"label": "a"}, {"label": "b"}]}, "question.text"),
        ({"options": [{"label": "a"}, {"label": "b"}]}, "question.text"),
    ],
)
def test_bad_questions_are_422_naming_the_field(client, admin, emergency_category, question, field):
    from broadcaster.db import session_scope
    from broadcaster.models import Update

    inc = client.post(
        "/v1/incidents", headers=admin, json={"title": "Flooding", "category": "emergency", "severity": "major"}
    ).json()
    resp = client.post(
        f"/v1/incidents/{inc['id']}/updates", headers=admin, json={"body": "Flooding.", "question": question}
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["field"] == field
    with session_scope() as session:  # nothing written
        assert session.query(Update).count() == 0


def test_question_is_stored_with_default_keys_and_editable_while_draft(client, admin, emergency_category):
    update = new_update(client, admin, channels=["twilio-sms"])
    q = update["question"]
    assert q["state"] == "draft"
    assert [(o["key"], o["label"], o["needs_help"]) for o in q["options"]] == [
        ("1", "I'm safe", False),
        ("2", "I need help", True),
    ]
    assert q["options"][0]["keywords"] == ["SAFE", "OK", "YES"]
    patched = client.patch(
        f"/v1/updates/{update['id']}",
        headers=admin,
        json={"question": {"text": "Do you have water?", "options": [{"label": "Yes", "key": "Y"}, {"label": "No"}]}},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["question"]["text"] == "Do you have water?"
    assert [o["key"] for o in patched.json()["question"]["options"]] == ["Y", "2"]
    removed = client.patch(f"/v1/updates/{update['id']}", headers=admin, json={"question": None})
    assert removed.json()["question"] is None
    assert client.get(f"/v1/updates/{update['id']}/question", headers=admin).status_code == 404


def asks_in_every_channel(preview: dict[str, Any]) -> None:
    """A preview renders the question in each channel's own way."""
    by = {c["channel"]: c for c in preview["channels"]}
    assert by["twilio-sms"]["text"].endswith("Are you safe? Reply 1 for I'm safe, 2 for I need help.")
    assert "Are you safe? Press 1 for I'm safe. Press 2 for I need help." in by["twilio-voice"]["text"]
    assert "-answer_url_1-" in by["sendgrid"]["html"] and "-answer_url_2-" in by["sendgrid"]["html"]
    assert "Are you safe? (1 = I'm safe, 2 = I need help)" in by["webhook"]["text"]


def test_preview_shows_the_question_per_channel(client, admin, emergency_category):
    update = new_update(client, admin, channels=["twilio-sms", "twilio-voice", "sendgrid", "webhook"])
    resp = client.post(f"/v1/updates/{update['id']}/preview", headers=admin)
    if resp.status_code == 405:
        resp = client.get(f"/v1/updates/{update['id']}/preview", headers=admin)
    assert resp.status_code == 200, resp.text
    asks_in_every_channel(resp.json())


def _requests(fake, provider: str, suffix: str) -> list[Any]:
    return [r for r in fake.requests(provider) if r.method == "POST" and r.path.endswith(suffix)]


def test_every_channel_asks_in_its_own_way(client, admin, fake, asked):
    from broadcaster.responses.links import read

    sms = _requests(fake, "twilio", "/Messages.json")
    assert sorted(r.form_value("To") for r in sms) == PHONES
    for r in sms:
        assert (r.form_value("Body") or "").endswith("Are you safe? Reply 1 for I'm safe, 2 for I need help.")

    calls = _requests(fake, "twilio", "/Calls.json")
    assert sorted(r.form_value("To") for r in calls) == PHONES
    tokens = set()
    for r in calls:
        twiml = r.form_value("Twiml") or ""
        gather = re.search(r'<Gather action="([^"]+)" method="POST" numDigits="1"', twiml)
        assert gather, twiml
        action = gather.group(1).replace("&amp;", "&")
        assert action.startswith("http://testserver/v1/webhooks/twilio/voice-answer?token=")
        payload = read("voice-answer", action.split("token=", 1)[1])
        assert payload is not None and payload["q"] == asked["question"]["id"]
        tokens.add(payload["s"])
        assert "Press 1 for I'm safe. Press 2 for I need help." in twiml
    assert len(tokens) == 3  # one signed action per person

    mails = _requests(fake, "sendgrid", "/mail/send")
    personalizations = [p for r in mails for p in r.json["personalizations"]]
    assert sorted(p["to"][0]["email"] for p in personalizations) == EMAILS
    html = next(c["value"] for c in mails[0].json["content"] if c["type"] == "text/html")
    assert html.count("-answer_url_1-") == 1 and html.count("-answer_url_2-") == 1
    links = set()
    for p in personalizations:
        for key in ("1", "2"):
            url = p["substitutions"][f"-answer_url_{key}-"]
            payload = read("answer", url.split("token=", 1)[1])
            assert payload is not None and payload["o"] == key
            links.add(url)
    assert len(links) == 6

    hooks = [r for r in fake.requests("webhook") if r.method == "POST"]
    assert len(hooks) == 1
    question = json.loads(hooks[0].body)["question"]
    assert question["text"] == "Are you safe?"
    assert [(o["key"], o["needs_help"]) for o in question["options"]] == [("1", False), ("2", True)]
    assert local(question["response_url"]).startswith("/v1/answer/webhook?token=")

    q = client.get(f"/v1/updates/{asked['id']}/question", headers=admin).json()
    assert q["state"] == "open" and q["recipients"] == 3
    assert QUESTION["text"] == q["text"]


def test_a_draft_preview_shows_its_question_before_anything_is_saved(client, admin, emergency_category):
    """POST /v1/preview (the console's compose form, nothing stored) renders the draft's question per channel."""
    draft = {
        "category": "emergency",
        "severity": "major",
        "update": {
            "body": "Flooding in the north district.",
            "summary": "Flooding (north)",
            "channels": ["twilio-sms", "twilio-voice", "sendgrid", "webhook"],
            "question": QUESTION,
        },
    }
    resp = client.post("/v1/preview", headers=admin, json=draft)
    assert resp.status_code == 200, resp.text
    asks_in_every_channel(resp.json())
    # nothing was stored, and a bad question is refused naming its field
    assert client.get("/v1/incidents", headers=admin).json()["items"] == []
    bad = client.post(
        "/v1/preview",
        headers=admin,
        json={**draft, "update": {**draft["update"], "question": {"text": "?", "options": [{"label": "x"}]}}},
    )
    assert bad.status_code == 422 and "question" in bad.json()["field"]


def test_how_to_answer_is_said_in_the_message_language(client, admin, emergency_category):
    """A French update asks in French: "Répondez 1 pour ..." by text, "Tapez 1 pour ..." by phone."""
    question = {
        "text": "Êtes-vous en sécurité ?",
        "options": [{"label": "Je vais bien"}, {"label": "J'ai besoin d'aide", "needs_help": True}],
    }
    draft = {
        "category": "emergency",
        "severity": "major",
        "update": {
            "body": "Inondation dans le quartier nord.",
            "locale": "fr",
            "channels": ["twilio-sms", "twilio-voice"],
            "question": question,
        },
    }
    resp = client.post("/v1/preview", headers=admin, json=draft)
    assert resp.status_code == 200, resp.text
    by = {c["channel"]: c for c in resp.json()["channels"]}
    assert by["twilio-sms"]["text"].endswith(
        "Êtes-vous en sécurité ? Répondez 1 pour Je vais bien, 2 pour J'ai besoin d'aide."
    )
    assert "Tapez 1 pour Je vais bien. Tapez 2 pour J'ai besoin d'aide." in by["twilio-voice"]["text"]


def test_the_reply_to_an_answer_is_in_the_persons_language(
    client, add_subscribers, admin, emergency_category, monkeypatch
):
    """A French subscriber who answers gets "Merci, ..." (and the hint in French when the reply is not
    understood); the SMS goes through the signed inbound webhook on both backends."""
    from sqlalchemy import select
    from tests.twoway.conftest import sms

    from broadcaster.db import session_scope
    from broadcaster.delivery import planner
    from broadcaster.models.delivery import Broadcast
    from broadcaster.settings import get_settings

    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "reply-language-token")
    monkeypatch.setenv("MEMORY_ADAPTER_ENABLED", "true")
    get_settings.cache_clear()
    add_subscribers(1, locale="fr")
    add_subscribers(1, locale="en")
    update = new_update(client, admin, channels=["memory"])
    assert client.post(f"/v1/updates/{update['id']}/publish", headers=admin).status_code == 200
    with session_scope() as session:
        assert planner.plan_next(session) == session.scalar(select(Broadcast.id))
    french = sms(client, "+15550000001", "peut-être")
    assert french.status_code == 200, french.text
    assert "Désolé, nous n&apos;avons pas compris votre réponse. Are you safe? Répondez 1 pour" in french.text or (
        "Désolé, nous n'avons pas compris votre réponse. Are you safe? Répondez 1 pour" in french.text
    )
    assert "Merci, nous avons enregistré votre réponse : I'm safe." in sms(client, "+15550000001", "1").text.replace(
        "&apos;", "'"
    )
    assert "Thank you, we recorded your answer: I need help." in sms(client, "+15550000002", "2").text
