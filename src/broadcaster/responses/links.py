"""Signed links and placeholders for answers: e-mail buttons, the voice <Gather> action, webhook response URLs.

Tokens are HMAC-signed with `SECRET_KEY` (broadcaster.subscribers.tokens), each with its own purpose, so an
unsubscribe token cannot answer and an answer token cannot unsubscribe:
- `answer` {q: question, s: subscriber, o: option}: an e-mail button; GET shows a confirm form, POST records.
- `voice-answer` {q, s}: the query of the <Gather> action Twilio posts the pressed digit to (the request
  itself must also carry a valid `X-Twilio-Signature`).
- `webhook-answer` {q}: the response URL in the webhook payload (no person: answers are stored, not counted).
"""

from __future__ import annotations

from typing import Any

from broadcaster.settings import get_settings
from broadcaster.signing import sign, verify

#: e-mail bodies carry `-answer_url_<key>-`; the SendGrid adapter substitutes each recipient's signed link
PLACEHOLDER = "-answer_url_{key}-"
VARIABLE = "answer_url_{key}"


def _base() -> str:
    return get_settings().public_url.rstrip("/")


def answer_url(question_id: int, subscriber_id: int, key: str) -> str:
    token = sign("answer", {"q": question_id, "s": subscriber_id, "o": key})
    return f"{_base()}/v1/answer?token={token}"


def voice_answer_url(question_id: int, subscriber_id: int) -> str:
    token = sign("voice-answer", {"q": question_id, "s": subscriber_id})
    return f"{_base()}/v1/webhooks/twilio/voice-answer?token={token}"


def webhook_response_url(question_id: int) -> str:
    token = sign("webhook-answer", {"q": question_id})
    return f"{_base()}/v1/answer/webhook?token={token}"


def read(purpose: str, token: str) -> dict[str, Any] | None:
    """The payload of a valid token for `purpose` with integer `q` (and `s` when present), else None."""
    payload = verify(purpose, token)
    if payload is None or not isinstance(payload.get("q"), int) or isinstance(payload.get("q"), bool):
        return None
    if "s" in payload and (not isinstance(payload["s"], int) or isinstance(payload["s"], bool)):
        return None
    return payload


def recipient_variables(question: dict[str, Any], kind: str, subscriber_id: int) -> dict[str, str]:
    """Per-recipient values for a message asking `question` (message.data["question"])."""
    qid = int(question["id"])
    if kind == "email":
        return {VARIABLE.format(key=o["key"]): answer_url(qid, subscriber_id, o["key"]) for o in question["options"]}
    if kind == "voice":
        return {"voice_answer_url": voice_answer_url(qid, subscriber_id)}
    return {}
