"""Issue 21: answer instructions ("Reply 1 for ..., 2 for ...", "press 1 ...") go only where a person can answer
(SMS, e-mail, voice, webhook), never on the banner, the status pages, social posts or the feeds."""

from __future__ import annotations

import re

QUESTION = {
    "text": "Are you safe?",
    "options": [{"label": "I'm safe", "keywords": ["SAFE"]}, {"label": "I need help", "needs_help": True}],
}
#: what answer instructions look like in the shipped labels (en): "Reply 1 for I'm safe, 2 for I need help."
INSTRUCTION = re.compile(r"\b(reply|press)\b[^.]*\b1\b", re.IGNORECASE)


def _rendered(update_id: int, kind: str) -> str:
    from broadcaster.db import session_scope
    from broadcaster.models import Update
    from broadcaster.rendering import render_update

    with session_scope() as session:
        update = session.get(Update, update_id)
        return render_update(session, update, kind, update.locale).message.text


def test_instructions_only_where_one_can_answer(client, fast_client, publish):
    update = publish(title="Flooding", body="Flooding in the north district.", question=QUESTION)
    uid, iid = update["id"], update["incident_id"]

    public = {
        "banner json": fast_client.get("/v1/banner").text,
        "banner html": fast_client.get("/v1/banner.html").text,
        "status page": client.get("/status").text,
        "incident page": client.get(f"/status/incidents/{iid}").text,
        "rss": client.get("/v1/feeds/rss.xml").text,
        "atom": client.get("/v1/feeds/atom.xml").text,
        # not CAP: its <instruction> carries the question on purpose ("If you received our message, reply ...",
        # responseType Execute; docs/responses.md "CAP", tests/twoway/test_cap.py)
        "social": _rendered(uid, "social"),
        "banner text": _rendered(uid, "banner"),
    }
    assert "Flooding in the north district." in public["status page"]  # the update is there...
    for name, text in public.items():
        assert not INSTRUCTION.search(text), f"{name}: {INSTRUCTION.search(text)}"  # ...its instructions are not

    for kind in ("sms", "voice"):
        text = _rendered(uid, kind)
        assert "Are you safe?" in text and INSTRUCTION.search(text), (kind, text)
    from broadcaster.db import session_scope
    from broadcaster.models import Update
    from broadcaster.rendering import render_update

    with session_scope() as session:
        email = render_update(session, session.get(Update, uid), "email", "en").message
    assert "Are you safe?" in (email.html or "") and "-answer_url_2-" in (email.html or "")  # the answer buttons
