"""How two-way updates plug into the lower layers (broadcaster.hooks): the question in every message, its answer
links, who was asked, the question opening on publish, re-sends held for people who answered, the escalation runner,
and what an approval binds of the question (its effective escalation and summary recipients)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from broadcaster import hooks
from broadcaster.channels.base import Adapter, Message
from broadcaster.models import Incident, Update
from broadcaster.models.delivery import ESCALATION_KIND
from broadcaster.responses import links, service
from broadcaster.responses.binding import question_binding
from broadcaster.responses.escalation_runner import EscalationRunner, answered_or_closed
from broadcaster.settings import Settings


def message_question(session: Session | None, update: Update, labels: dict[str, Any]) -> dict[str, Any] | None:
    """The update's question for the templates, with how to answer it in the message's language (labels.yaml):
    `reply` for a text ("Reply 1 for I'm safe, 2 for I need help.") and `press` for a call ("Press 1 for ...")."""
    question = service.render_context(session, update)
    if question is None:
        return None
    options = question["options"]
    return {
        **question,
        "reply": service.how_to_answer(options, labels, voice=False),
        "press": service.how_to_answer(options, labels, voice=True),
    }


def answer_links(adapter: Adapter, subscriber_id: int, message: Message | None) -> dict[str, str]:
    """A message asking a question carries the person's signed answer links (e-mail buttons, voice <Gather>)."""
    question = message.data.get("question") if message is not None else None
    return links.recipient_variables(question, adapter.kind.value, subscriber_id) if question else {}


def opened(session: Session, update: Update, incident: Incident, actor: str) -> None:
    service.open_for_update(session, update)  # its question (if any) is open from now on


def held_for_answers(engine: Engine, update_id: int, subscriber_ids: list[int]) -> hooks.Hold:
    """A question's re-send drops the people who answered meanwhile, and everyone once it was closed."""
    answered = answered_or_closed(engine, update_id, subscriber_ids)
    if answered is None:
        return hooks.Hold(everyone="question closed")
    return hooks.Hold(people=dict.fromkeys(answered, "answered meanwhile"))


def escalation_runner(settings: Settings) -> hooks.Runner:
    return EscalationRunner()


hooks.message_question.register(message_question)
hooks.recipient_variables.register(answer_links)
hooks.broadcast_planned.register(service.add_recipients)  # everyone reached is asked the update's question
hooks.update_published.register(opened)
hooks.send_guards.register(hooks.SendGuard(ESCALATION_KIND, held_for_answers))
hooks.runners.register(escalation_runner)
hooks.content_binding.register(question_binding)
