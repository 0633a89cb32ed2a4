"""Helpers for the escalation tests: a question asked to N people, written straight into the tables (the
responses API has its own tests), and readers of what the escalation runner queued."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select

from broadcaster import clock
from broadcaster.db import get_engine, session_scope
from broadcaster.models import utcnow
from broadcaster.models.delivery import Broadcast, Delivery, Subscriber
from broadcaster.models.responses import EscalationAction, Question, QuestionRecipient

OPTIONS = [
    {"key": "1", "label": "I'm safe", "keywords": ["SAFE"], "needs_help": False},
    {"key": "2", "label": "I need help", "keywords": ["HELP"], "needs_help": True},
]


def add_people(n: int, start: int = 0, **fields: Any) -> list[int]:
    """Insert `n` subscribers with a phone and a confirmed email; their ids."""
    rows = [
        {
            "phone": f"+1555100{start + i:04d}",
            "email": f"p{start + i:04d}@example.org",
            "name": f"Person {start + i}",
            "email_confirmed": True,
            "phone_confirmed": True,
            "locale": "en",
        }
        | fields
        for i in range(n)
    ]
    engine = get_engine()
    with engine.begin() as conn:
        conn.execute(insert(Subscriber), rows)
        phones = [r["phone"] for r in rows]
        return list(
            conn.execute(select(Subscriber.id).where(Subscriber.phone.in_(phones)).order_by(Subscriber.id)).scalars()
        )


def make_update(client: Any, admin: dict[str, str], severity: str = "major") -> int:
    """An incident in `emergency` with one (unpublished) update; the update id."""
    inc = client.post(
        "/v1/incidents", headers=admin, json={"title": "Flood", "category": "emergency", "severity": severity}
    )
    assert inc.status_code == 201, inc.text
    upd = client.post(
        f"/v1/incidents/{inc.json()['id']}/updates",
        headers=admin,
        json={"body": "Flooding in the north district.", "summary": "Flood (north)"},
    )
    assert upd.status_code == 201, upd.text
    return int(upd.json()["id"])


def ask(
    update_id: int,
    people: list[int],
    rules: dict[str, Any] | None,
    *,
    channels: tuple[str, ...] = ("sms",),
    priority: int = 1,
    opened_at: datetime | None = None,
) -> int:
    """The question as the publish + planning would leave it: open, its broadcast planned, everyone asked."""
    with session_scope() as session:
        session.add(
            Broadcast(
                update_id=update_id,
                kind="update",
                state="done",
                priority=priority,
                channels=list(channels),
                total=len(people),
                planned_at=utcnow(),
            )
        )
        q = Question(
            update_id=update_id,
            text="Are you safe?",
            options=OPTIONS,
            escalation=rules,
            state="open",
            opened_at=opened_at or clock.now(),
            recipients=len(people),
        )
        session.add(q)
        session.flush()
        qid = q.id
    with get_engine().begin() as conn:
        conn.execute(insert(QuestionRecipient), [{"question_id": qid, "subscriber_id": s} for s in people])
    return qid


def answer(qid: int, people: list[int], key: str = "1", channel: str = "sms") -> None:
    """Record answers the way the responses core does for the escalation's purpose (answered_at set)."""
    from sqlalchemy import update

    with get_engine().begin() as conn:
        conn.execute(
            update(QuestionRecipient)
            .where(QuestionRecipient.question_id == qid, QuestionRecipient.subscriber_id.in_(people))
            .values(option_key=key, answered_at=utcnow(), answer_channel=channel, next_escalation_at=None)
        )


def close(qid: int) -> None:
    from sqlalchemy import update

    with get_engine().begin() as conn:
        conn.execute(update(Question).where(Question.id == qid).values(state="closed", closed_at=utcnow()))


def resent(update_id: int, channel: str | None = None) -> Counter[int]:
    """Subscriber id -> re-send deliveries queued for them (escalation broadcasts of the update)."""
    with session_scope() as session:
        stmt = (
            select(Delivery.subscriber_id)
            .join(Broadcast, Broadcast.id == Delivery.broadcast_id)
            .where(Broadcast.update_id == update_id, Broadcast.kind == "escalation")
        )
        if channel is not None:
            stmt = stmt.where(Delivery.channel == channel)
        return Counter(int(s) for s in session.scalars(stmt))


def actions(qid: int) -> list[tuple[int, int, str, str]]:
    with session_scope() as session:
        rows = session.execute(
            select(
                EscalationAction.subscriber_id, EscalationAction.step, EscalationAction.kind, EscalationAction.channel
            )
            .where(EscalationAction.question_id == qid)
            .order_by(EscalationAction.subscriber_id, EscalationAction.step)
        ).all()
    return [(int(a), int(b), str(c), str(d)) for a, b, c, d in rows]


def due(qid: int) -> dict[int, tuple[int, datetime | None]]:
    """Subscriber id -> (escalation_step, next_escalation_at)."""
    with session_scope() as session:
        rows = session.execute(
            select(
                QuestionRecipient.subscriber_id, QuestionRecipient.escalation_step, QuestionRecipient.next_escalation_at
            ).where(QuestionRecipient.question_id == qid)
        ).all()
    return {int(s): (int(step), at) for s, step, at in rows}


def system_deliveries() -> list[tuple[str, str, dict[str, Any]]]:
    """(channel, address, message) of every system message queued."""
    with session_scope() as session:
        rows = session.execute(
            select(Delivery.channel, Delivery.address, Broadcast.message)
            .join(Broadcast, Broadcast.id == Delivery.broadcast_id)
            .where(Broadcast.kind == "system")
            .order_by(Delivery.id)
        ).all()
    return [(c, a, m or {}) for c, a, m in rows]


def count(model: Any) -> int:
    with session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)
