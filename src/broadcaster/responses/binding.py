"""What an approval binds of an update's question (`hooks.content_binding`): its text and options, and the
escalation that would run: its own rules, else its category's from the routing map (taken at publication), with
every step and every summary recipient, shown in the preview and hashed into the content ETag."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from broadcaster.models import Update
from broadcaster.models.audience import SubscriberTag
from broadcaster.publishing.schemas import (
    EscalationOut,
    EscalationStepOut,
    QuestionBinding,
    SummaryGroupOut,
    ThresholdOut,
)
from broadcaster.responses.escalation import EscalationRules, effective_rules
from broadcaster.responses.service import question_of


def _delay(delay: timedelta) -> str:
    seconds = delay.total_seconds()
    if seconds % 60:
        return f"{seconds:g} s"
    return f"{seconds / 60:g} min"


def _option(option: dict[str, Any]) -> str:
    text = f"{option['key']} = {option['label']}"
    if option.get("needs_help"):
        text += " (needs help)"
    if option.get("keywords"):
        text += f" · keywords {', '.join(option['keywords'])}"
    return text


def _tag_members(session: Session, tag: str) -> int:
    return int(session.scalar(select(func.count()).select_from(SubscriberTag).where(SubscriberTag.tag == tag)) or 0)


def escalation_out(session: Session, source: str, raw: dict[str, Any]) -> EscalationOut:
    """Rules as the approver reads them: each step, the threshold and who gets its summary. Rules that no longer
    validate (a channel removed since) escalate nothing and show no steps."""
    try:
        rules = EscalationRules.model_validate(raw)
    except ValueError:
        return EscalationOut(source=source, rules=dict(raw), respect_quiet_hours=True)
    threshold = None
    if rules.threshold is not None:
        group = rules.threshold.group
        threshold = ThresholdOut(
            percent=rules.threshold.percent,
            after=_delay(rules.threshold.delay),
            group=SummaryGroupOut(
                emails=[str(e) for e in group.emails],
                phones=list(group.phones),
                tag=group.tag,
                tag_members=_tag_members(session, group.tag) if group.tag else None,
            ),
        )
    return EscalationOut(
        source=source,
        steps=[EscalationStepOut(after=_delay(s.delay), channel=s.channel) for s in rules.steps],
        threshold=threshold,
        respect_quiet_hours=rules.respect_quiet_hours,
        rules=dict(raw),
    )


def question_binding(session: Session, update: Update) -> dict[str, Any] | None:
    """`{"question": QuestionBinding}` for an update that asks a question (hooks.content_binding), else None."""
    question = question_of(session, update)
    if question is None:
        return None
    effective = effective_rules(question, update.incident.category)
    return {
        "question": QuestionBinding(
            text=question.text,
            options=[_option(o) for o in question.options],
            escalation=escalation_out(session, *effective) if effective is not None else None,
        )
    }
