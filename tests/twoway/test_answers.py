"""Answers from every channel: SMS matching rules, STOP/HELP win, unknown numbers, forged webhooks, provider
retries, two channels counted once, e-mail GET-then-POST, voice digits, closing, late answers, CSV, scopes."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from sqlalchemy import func, select
from tests.twoway.conftest import PHONES, local, sms, twilio_post

OPTIONS = [
    {"key": "1", "label": "I'm safe", "keywords": ["SAFE", "OK", "YES"]},
    {"key": "2", "label": "I need help", "keywords": ["SOS"], "needs_help": True},
]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("1", "1"),
        (" 1 ", "1"),
        ("1 safe", "1"),
        ("1.", "1"),
        ("yes", "1"),
        ("YES", "1"),
        ("Safe", "1"),
        ("ok thanks", "1"),
        ("2 help", "2"),
        ("2", "2"),
        ("#2", "2"),
        ("sos", "2"),
        ("I need help", "2"),
        ("maybe", None),
        ("not safe", None),
        ("safe but need help", None),
        ("", None),
        ("3", None),
    ],
)
def test_matching_rules(reply: str, expected: str | None) -> None:
    from broadcaster.responses.matching import match

    assert match(reply, OPTIONS) == expected


@pytest.mark.parametrize(
    ("options", "reply", "expected"),
    [
        (["Je vais bien", "J'ai besoin d'aide"], "je vais bien", "1"),
        (["Je vais bien", "J'ai besoin d'aide"], "je ne vais pas bien", None),
        (["Je vais bien", "J'ai besoin d'aide"], "pas bien", None),
        (["Je vais bien", "J'ai besoin d'aide"], "besoin d'aide", "2"),
        (["Estoy bien", "Necesito ayuda"], "no estoy bien", None),
        (["Estoy bien", "Necesito ayuda"], "ayuda", "2"),
        (["Mir geht es gut", "Ich brauche Hilfe"], "mir geht es nicht gut", None),
        (["Mir geht es gut", "Ich brauche Hilfe"], "gut", "1"),
    ],
)
def test_negations_in_the_shipped_languages_are_never_a_yes(options: list[str], reply: str, expected: str | None):
    """A reply that negates a label ("je ne vais pas bien") is read by a person, never counted as that label."""
    from broadcaster.responses.matching import match

    opts = [{"key": str(i + 1), "label": label} for i, label in enumerate(options)]
    assert match(reply, opts) == expected


def _tally(client, who, update_id: int) -> dict[str, Any]:
    resp = client.get(f"/v1/updates/{update_id}/responses", headers=who)
    assert resp.status_code == 200, resp.text
    return resp.json()


def _counts(body: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {o["key"]: o["by_channel"] for o in body["options"]}


def _responses() -> int:
    from broadcaster.db import session_scope
    from broadcaster.models.responses import Response

    with session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(Response)) or 0)


def test_sms_answers_stop_help_unknown_and_retries(client, admin, asked):
    uid = asked["id"]
    first = sms(client, PHONES[0], " 1 safe", sid="SM1")
    assert first.status_code == 200
    assert "we recorded your answer: I&apos;m safe" in first.text or "we recorded your answer: I'm safe" in first.text
    assert sms(client, PHONES[1], "2 help", sid="SM2").status_code == 200
    maybe = sms(client, PHONES[2], "maybe", sid="SM3")
    assert "did not understand" in maybe.text
    # a provider retry of the same MessageSid: the same reply, nothing changes
    retry = sms(client, PHONES[0], " 1 safe", sid="SM1")
    assert retry.text == first.text
    before = _responses()
    assert before == 3
    # HELP and STOP keep their meaning: not answers
    helped = sms(client, PHONES[2], "HELP")
    assert "Reply STOP to unsubscribe" in helped.text
    assert sms(client, PHONES[2], "stop").status_code == 200
    assert _responses() == before
    # a number not in the audience: stored as unmatched, no reply
    stranger = sms(client, "+19995550000", "1")
    assert "<Message>" not in stranger.text
    # forged and unsigned webhooks: 403, nothing changes
    forged = client.post(
        "/v1/webhooks/twilio/inbound",
        data={"From": PHONES[2], "Body": "1", "MessageSid": "SMforged"},
        headers={"X-Twilio-Signature": "bm9wZQ=="},
    )
    assert forged.status_code == 403
    assert sms(client, PHONES[2], "1", sid="SMunsigned", sign=False).status_code == 403
    assert _responses() == before + 1

    from broadcaster.db import session_scope
    from broadcaster.models.delivery import Subscriber
    from broadcaster.models.responses import Response

    with session_scope() as session:
        unmatched = session.scalars(select(Response).where(Response.question_id.is_(None))).all()
        assert [(r.address, r.body, r.counted) for r in unmatched] == [("+19995550000", "1", False)]
        assert session.scalar(select(Subscriber.sms_opted_out).where(Subscriber.phone == PHONES[2])) is True

    body = _tally(client, admin, uid)
    assert _counts(body) == {"1": {"sms": 1}, "2": {"sms": 1}}
    assert (body["recipients"], body["answered"], body["no_answer_yet"], body["unrecognised"]) == (3, 2, 1, 1)
    assert body["by_channel"] == {"sms": 2}
    # the person who needs help first, with contact details
    assert [(p["phone"], p["option_key"], p["needs_help"]) for p in body["people"]] == [
        (PHONES[1], "2", True),
        (PHONES[0], "1", False),
    ]
    unrecognised = client.get(f"/v1/updates/{uid}/responses/unrecognised", headers=admin).json()["items"]
    assert [(r["address"], r["body"]) for r in unrecognised] == [(PHONES[2], "maybe")]
    segments = {(s["segment"], s["value"]): s for s in body["segments"]}
    assert segments[("category", "(all categories)")]["recipients"] == 3
    assert segments[("category", "(all categories)")]["by_option"] == {"1": 1, "2": 1}


def test_yes_answers_and_keeps_its_opt_in_meaning(client, admin, asked):
    from broadcaster.db import session_scope
    from broadcaster.models.delivery import Subscriber

    assert sms(client, PHONES[0], "STOP").status_code == 200
    resp = sms(client, PHONES[0], "YES")
    assert "<Message>" not in resp.text  # Twilio answers its opt-in keywords itself
    with session_scope() as session:
        assert session.scalar(select(Subscriber.sms_opted_out).where(Subscriber.phone == PHONES[0])) is False
    assert _counts(_tally(client, admin, asked["id"])) == {"1": {"sms": 1}, "2": {}}
    # START chooses no option: opt-in only, not stored as an unrecognised reply
    sms(client, PHONES[1], "START")
    assert _tally(client, admin, asked["id"])["unrecognised"] == 0


def _email_link(fake, email: str, key: str) -> str:
    for r in fake.requests("sendgrid"):
        if r.method == "POST" and r.path.endswith("/mail/send"):
            for p in r.json["personalizations"]:
                if p["to"][0]["email"] == email:
                    return local(p["substitutions"][f"-answer_url_{key}-"])
    raise AssertionError(email)


def test_two_channels_count_once_latest_wins_both_kept(client, admin, fake, asked):
    uid = asked["id"]
    sms(client, PHONES[0], "1")
    link = _email_link(fake, "s0001@example.org", "2")
    page = client.get(link)  # what a mail scanner does: shows a form, records nothing
    assert page.status_code == 200 and '<form method="post"' in page.text and "I need help" in page.text
    assert _counts(_tally(client, admin, uid)) == {"1": {"sms": 1}, "2": {}}
    done = client.post(link)
    assert done.status_code == 200 and "I need help" in done.text
    body = _tally(client, admin, uid)
    assert _counts(body) == {"1": {}, "2": {"email": 1}}
    assert (body["answered"], body["no_answer_yet"]) == (1, 2)
    assert body["people"][0]["answer_channel"] == "email"
    received = client.get(f"/v1/updates/{uid}/responses/received", headers=admin).json()["items"]
    assert [(r["channel"], r["option_key"], r["counted"]) for r in received] == [
        ("email", "2", True),
        ("sms", "1", True),
    ]
    bad = client.post(link.replace("token=", "token=x"))
    assert bad.status_code == 400
    assert _counts(_tally(client, admin, uid)) == {"1": {}, "2": {"email": 1}}


def test_sms_changed_answers_move_the_tally_once(client, admin, fake, asked):
    """Latest wins by SMS too (PostgreSQL answers SMS in a few plain statements): a change moves the person's
    counter, the same answer again or a retry of a MessageSid moves nothing."""
    uid = asked["id"]
    sms(client, PHONES[0], "1", sid="SMa")
    changed = sms(client, PHONES[0], "2", sid="SMb")
    assert "I need help" in changed.text
    assert _counts(_tally(client, admin, uid)) == {"1": {}, "2": {"sms": 1}}
    sms(client, PHONES[0], "2 help", sid="SMc")  # the same answer again: stored, not counted
    assert sms(client, PHONES[0], "2", sid="SMb").text == changed.text  # a retry: the same reply
    assert _counts(_tally(client, admin, uid)) == {"1": {}, "2": {"sms": 1}}
    assert client.post(_email_link(fake, "s0001@example.org", "1")).status_code == 200
    assert _counts(_tally(client, admin, uid)) == {"1": {"email": 1}, "2": {}}
    sms(client, PHONES[0], "2", sid="SMd")
    body = _tally(client, admin, uid)
    assert _counts(body) == {"1": {}, "2": {"sms": 1}}
    assert (body["answered"], body["no_answer_yet"], body["unrecognised"]) == (1, 2, 0)
    received = client.get(f"/v1/updates/{uid}/responses/received", headers=admin).json()["items"]
    assert [(r["channel"], r["option_key"], r["counted"]) for r in received] == [
        ("sms", "2", True),
        ("email", "1", True),
        ("sms", "2", False),
        ("sms", "2", True),
        ("sms", "1", True),
    ]


def test_voice_digit_through_the_signed_gather_action(client, admin, fake, asked):
    import re

    call = next(r for r in fake.requests("twilio") if r.method == "POST" and r.path.endswith("/Calls.json"))
    action = re.search(r'<Gather action="([^"]+)"', call.form_value("Twiml") or "").group(1).replace("&amp;", "&")
    path = local(action)
    params = {"CallSid": "CA1", "Digits": "2", "To": call.form_value("To") or ""}
    assert twilio_post(client, path, params, sign=False).status_code == 403
    assert client.post(path, data=params, headers={"X-Twilio-Signature": "bm9wZQ=="}).status_code == 403
    ok = twilio_post(client, path, params)
    assert ok.status_code == 200 and "<Say>Thank you, we recorded your answer: I need help.</Say>" in ok.text
    again = twilio_post(client, path, params)  # Twilio retrying the action
    assert again.text == ok.text
    wrong = twilio_post(client, path, {"CallSid": "CA1", "Digits": "7", "To": ""})
    assert "Press 1 for I&apos;m safe" in wrong.text or "Press 1 for I'm safe" in wrong.text
    forged = twilio_post(client, path.replace("token=", "token=x"), params)
    assert forged.status_code == 403
    assert _counts(_tally(client, admin, asked["id"])) == {"1": {}, "2": {"voice": 1}}


def test_close_scopes_audit_and_late_answers(client, admin, auth, asked):
    uid = asked["id"]
    sms(client, PHONES[0], "1")
    reader = auth("read")
    assert client.get(f"/v1/updates/{uid}/responses", headers=reader).status_code == 200
    assert client.get(f"/v1/updates/{uid}/responses").status_code == 401
    assert client.post(f"/v1/updates/{uid}/question/close", headers=reader).status_code == 403
    assert client.post(f"/v1/updates/{uid}/question/close", headers=auth("write")).status_code == 403
    closed = client.post(f"/v1/updates/{uid}/question/close", headers=auth("publish"))
    assert closed.status_code == 200, closed.text
    assert closed.json()["state"] == "closed"
    entries = client.get("/v1/audit", headers=admin, params={"action": "question.close"}).json()
    items = entries["items"] if isinstance(entries, dict) else entries
    assert [e["action"] for e in items if e["action"] == "question.close"] == ["question.close"]
    late = sms(client, PHONES[1], "2")
    assert "closed" in late.text
    body = _tally(client, admin, uid)
    assert _counts(body) == {"1": {"sms": 1}, "2": {}}
    from broadcaster.db import session_scope
    from broadcaster.models.responses import Response

    with session_scope() as session:
        row = session.scalars(select(Response).where(Response.address == PHONES[1])).one()
        assert (row.option_key, row.counted, row.question_id) == ("2", False, asked["question"]["id"])


def test_csv_export_is_formula_safe(client, admin, asked):
    from sqlalchemy import update

    from broadcaster.db import session_scope
    from broadcaster.models.delivery import Subscriber

    with session_scope() as session:
        session.execute(update(Subscriber).where(Subscriber.phone == PHONES[1]).values(name='=HYPERLINK("x")'))
    sms(client, PHONES[1], "2")
    sms(client, PHONES[0], "1")
    resp = client.get(f"/v1/updates/{asked['id']}/responses.csv", headers=admin)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(resp.text)))
    assert rows[0][:5] == ["subscriber_id", "name", "phone", "email", "answer_key"]
    assert [(r[1], r[2], r[4], r[6]) for r in rows[1:]] == [
        ('\'=HYPERLINK("x")', PHONES[1], "2", "yes"),
        ("Ann", PHONES[0], "1", ""),
        ("Ann", PHONES[2], "", ""),
    ]


def test_webhook_response_url_stores_but_never_counts(client, admin, fake, asked):
    import json

    hook = next(r for r in fake.requests("webhook") if r.method == "POST")
    url = local(json.loads(hook.body)["question"]["response_url"])
    body = {"option": "2", "respondent": "@ops-bot", "event_id": "evt-1"}
    first = client.post(url, json=body)
    assert first.status_code == 200, first.text
    assert first.json() == {"recorded": True, "duplicate": False, "option": "2", "counted": False}
    assert client.post(url, json=body).json()["duplicate"] is True
    bad = client.post(url, json={"option": "9"})
    assert bad.status_code == 422 and bad.json()["field"] == "option"
    assert client.post(url.replace("token=", "token=x"), json=body).status_code == 403
    received = client.get(f"/v1/updates/{asked['id']}/responses/received", headers=admin).json()["items"]
    assert [(r["channel"], r["address"], r["option_key"], r["counted"]) for r in received] == [
        ("webhook", "@ops-bot", "2", False)
    ]
    assert _counts(_tally(client, admin, asked["id"])) == {"1": {}, "2": {}}


def test_stream_sends_the_tallies_and_ends_when_closed(client, admin, asked):
    sms(client, PHONES[0], "1")
    assert client.post(f"/v1/updates/{asked['id']}/question/close", headers=admin).status_code == 200
    with client.stream("GET", f"/v1/updates/{asked['id']}/responses/stream", headers=admin) as resp:
        assert resp.status_code == 200
        text = "".join(resp.iter_text())
    assert "event: responses" in text and "event: end" in text
    data = next(line[6:] for line in text.splitlines() if line.startswith('data: {"update_id"'))
    import json

    assert json.loads(data)["answered"] == 1
    assert client.get(f"/v1/updates/{asked['id']}/responses/stream").status_code == 401
