"""The escalation runner: re-send a question to whoever has not answered, and warn the escalation group.

Runs beside every delivery worker (delivery/lifecycle.py); any number of them may run at once. Durable and
exactly once per person per step. The rules it runs are the snapshot taken when the update was published
(`Question.escalation_applied`, what the approval covered: `escalation.rules_for`); it never reads the routing
map, so a later edit of a category's rules changes nothing for questions already published.

- **Arming.** Once a question's broadcast is planned (its `question_recipients` are filled), every person
  who has not answered gets `next_escalation_at` = opened + the first step's delay (`arm`).
- **Due steps.** Each tick claims due people (`answered_at IS NULL AND next_escalation_at <= now`, the
  partial index `ix_question_recipients_due`; `FOR UPDATE SKIP LOCKED` on PostgreSQL, so two runners never
  take the same person) and, in ONE transaction, inserts their `escalation_actions` rows (unique per question,
  person and step: a second insert does nothing), advances `escalation_step` / `next_escalation_at`, and
  queues the re-send: a broadcast of kind `escalation` (state `sending`, never planned) with one delivery per
  person on the step's channel. A runner killed before its commit leaves nothing behind; one killed after it
  has queued everything. The worker sends those deliveries like any other (leases, lookups before resending).
- **Stops.** An answer sets `answered_at`: the person leaves the due index, and the worker drops a queued
  re-send to someone who answered meanwhile (`answered_or_closed`, checked right before the provider call).
  Closing a question clears every pending step and cancels its queued re-sends (`stop_question`, also swept
  here for questions closed by any path).
- **Threshold.** Once per question: when its delay has passed and fewer than `percent` % answered, the
  escalation group gets one summary (a `system` broadcast per channel, one message per address) listing who
  has not answered, with a link to the full list when it is long.
- **Quiet hours** (QUIET_HOURS) hold back the steps and the summary of a non-critical update's question until
  they end (the due time moves to their end); critical updates ignore them.
- All "is it due" decisions read `broadcaster.clock.now()` (tests move it).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import Engine, exists, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from broadcaster import clock
from broadcaster.channels.registry import kind_of
from broadcaster.db import get_engine
from broadcaster.delivery import planner
from broadcaster.delivery.entrypoints import notify_workers, queue_system
from broadcaster.domain import ChannelKind, Priority
from broadcaster.models import Update, utcnow
from broadcaster.models.delivery import ESCALATION_KIND, Broadcast, Delivery, Subscriber
from broadcaster.models.responses import EscalationAction, Question, QuestionRecipient
from broadcaster.responses.escalation import (
    SECONDARY,
    SECONDARY_ORDER,
    EscalationRules,
    EscalationThreshold,
    rules_for,
)
from broadcaster.settings import Settings, get_settings

log = logging.getLogger(__name__)

#: people claimed per transaction
BATCH = 500
#: people listed by name in the threshold summary (the rest: a link to the full list)
SUMMARY_LIST = 50
#: `escalation_actions.step` of the threshold (person steps are 1..n; the threshold row has subscriber_id 0)
THRESHOLD_STEP = 0

_QR = QuestionRecipient.__table__
_EA = EscalationAction.__table__


@dataclass
class _Context:
    """What a tick needs to know about one question."""

    question: Question
    rules: EscalationRules | None
    critical: bool
    priority: int
    #: channel kinds the question went out on (the original broadcast's channels)
    asked_kinds: set[ChannelKind]


def _for_update(stmt: Any, session: Session) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return stmt.with_for_update(skip_locked=True)
    return stmt


def _insert_ignore(session: Session) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING into escalation_actions, on either backend."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(EscalationAction).on_conflict_do_nothing()
    return sqlite.insert(EscalationAction).on_conflict_do_nothing()


def original_broadcast(session: Session, update_id: int) -> Broadcast | None:
    """The live broadcast that asked the question (kind `update`, not a test)."""
    return session.scalar(
        select(Broadcast)
        .where(Broadcast.update_id == update_id, Broadcast.kind == "update", Broadcast.test.is_(False))
        .order_by(Broadcast.id)
        .limit(1)
    )


def _context(session: Session, question: Question) -> _Context:
    original = original_broadcast(session, question.update_id)
    if original is not None:
        priority = int(original.priority)
        channels = list(original.channels or [])
    else:
        upd = session.get(Update, question.update_id)
        severity = upd.incident.severity if upd is not None and upd.incident is not None else None
        priority = int(Priority.for_send(severity))
        channels = []
    kinds = {k for k in (kind_of(c) for c in channels) if k is not None}
    return _Context(question, rules_for(question), priority == int(Priority.critical), priority, kinds)


class Escalator:
    """One tick's work, on its own sessions (the runner calls `tick` in a thread)."""

    def __init__(self, engine: Engine | None = None, settings: Settings | None = None) -> None:
        self.engine = engine or get_engine()
        self.settings = settings or get_settings()
        self.quiet = clock.parse_quiet_hours(self.settings.quiet_hours)
        self.tz = clock.zone(self.settings.quiet_hours_timezone)

    # ------------------------------------------------------------------ helpers
    def quiet_end(self, ctx: _Context, now: datetime) -> datetime | None:
        """When quiet hours holding `now` end, for a question they apply to; else None."""
        if ctx.critical or (ctx.rules is not None and not ctx.rules.respect_quiet_hours):
            return None
        return clock.quiet_until(now, self.quiet, self.tz)

    def tick(self) -> dict[str, int]:
        """Arm new questions, stop closed ones, take due steps, fire thresholds; what it did."""
        done = {"armed": self.arm_new(), "stopped": self.sweep_closed(), "resent": 0, "summaries": 0}
        while True:
            n = self.take_due()
            done["resent"] += n
            if n == 0:
                break
        done["summaries"] = self.fire_thresholds()
        return done

    # ------------------------------------------------------------------ arming
    def arm_new(self) -> int:
        """Schedule the first step of open questions whose recipients are filled; questions armed."""
        armed = 0
        with Session(self.engine) as session:
            planned = exists().where(
                Broadcast.update_id == Question.update_id,
                Broadcast.kind == "update",
                Broadcast.test.is_(False),
                Broadcast.planned_at.is_not(None),
            )
            ids = list(
                session.scalars(
                    select(Question.id).where(Question.state == "open", Question.escalation_armed_at.is_(None), planned)
                )
            )
        for qid in ids:
            with Session(self.engine) as session, session.begin():
                q = session.scalar(_for_update(select(Question).where(Question.id == qid), session))
                if q is None or q.escalation_armed_at is not None or q.state != "open":
                    continue
                arm(session, q)
                armed += 1
        return armed

    # ------------------------------------------------------------------ stopping
    def sweep_closed(self) -> int:
        """Cancel queued re-sends of closed questions (whatever closed them); broadcasts cancelled."""
        with Session(self.engine) as session, session.begin():
            rows = session.execute(
                select(Broadcast.id, Question.id)
                .join(Question, Question.update_id == Broadcast.update_id)
                .where(
                    Broadcast.kind == ESCALATION_KIND,
                    Broadcast.state.in_(("planning", "sending")),
                    Question.state == "closed",
                )
            ).all()
            for bid, _ in rows:
                planner.cancel(session, bid)
            for qid in {q for _, q in rows}:
                _clear(session, qid)
            return len(rows)

    # ------------------------------------------------------------------ due steps
    def take_due(self, limit: int = BATCH) -> int:
        """Claim up to `limit` due people and take their next step, in one transaction; re-sends queued."""
        now = clock.now()
        queued = 0
        with Session(self.engine) as session, session.begin():
            stmt = (
                select(
                    QuestionRecipient.question_id, QuestionRecipient.subscriber_id, QuestionRecipient.escalation_step
                )
                .where(
                    QuestionRecipient.answered_at.is_(None),
                    QuestionRecipient.next_escalation_at.is_not(None),
                    QuestionRecipient.next_escalation_at <= now,
                )
                .order_by(QuestionRecipient.next_escalation_at)
                .limit(limit)
            )
            due = session.execute(_for_update(stmt, session)).all()
            if not due:
                return 0
            by_question: dict[int, list[tuple[int, int]]] = defaultdict(list)
            for qid, sid, step in due:
                by_question[qid].append((sid, int(step)))
            for qid, people in by_question.items():
                queued += self._step(session, qid, people, now)
            if queued:
                notify_workers(session)
        return max(queued, len(due))  # claimed rows were all moved on (sent, skipped, postponed or cleared)

    def _step(self, session: Session, qid: int, people: list[tuple[int, int]], now: datetime) -> int:
        question = session.get(Question, qid)
        ids = [sid for sid, _ in people]
        if question is None or question.state != "open":
            _set_next(session, qid, ids, None)
            return 0
        ctx = _context(session, question)
        steps = ctx.rules.steps if ctx.rules is not None else []
        end = self.quiet_end(ctx, now)
        if end is not None:
            _set_next(session, qid, ids, end)
            return 0
        by_step: dict[int, list[int]] = defaultdict(list)
        for sid, step in people:
            by_step[step].append(sid)
        queued = 0
        for done_steps, sids in by_step.items():
            if done_steps >= len(steps):  # the rules changed under it: nothing further
                _set_next(session, qid, sids, None)
                continue
            queued += self._resend(session, ctx, done_steps, sids, now)
        return queued

    def _resend(self, session: Session, ctx: _Context, index: int, sids: list[int], now: datetime) -> int:
        """Take step `index` (0-based) for `sids`; how many deliveries were queued."""
        assert ctx.rules is not None
        steps = ctx.rules.steps
        step = steps[index]
        number = index + 1
        question = ctx.question
        subs = {
            s.id: s
            for s in session.execute(
                select(
                    Subscriber.id,
                    Subscriber.phone,
                    Subscriber.email,
                    Subscriber.locale,
                    Subscriber.email_confirmed,
                    Subscriber.email_opted_out,
                    Subscriber.sms_opted_out,
                    Subscriber.phone_confirmed,
                ).where(Subscriber.id.in_(sids))
            )
        }
        used: dict[int, set[ChannelKind]] = {sid: set(ctx.asked_kinds) for sid in sids}
        if step.channel == SECONDARY and index:
            for sid, channel in session.execute(
                select(EscalationAction.subscriber_id, EscalationAction.channel).where(
                    EscalationAction.question_id == question.id, EscalationAction.subscriber_id.in_(sids)
                )
            ):
                kind = kind_of(channel)
                if kind is not None:
                    used[sid].add(kind)
        # who gets what: channel name -> [(subscriber id, address, locale)]
        targets: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
        skipped: list[int] = []
        for sid in sids:
            sub = subs.get(sid)
            picked = _address(sub, step.channel, used[sid]) if sub is not None else None
            if picked is None:
                skipped.append(sid)
            else:
                name, address = picked
                targets[name].append((sid, address, sub.locale if sub is not None else "en"))
        nxt = now + steps[number].delay if number < len(steps) else None
        taken: list[int] = []
        queued = 0
        for name, rows in targets.items():
            broadcast = Broadcast(
                update_id=question.update_id,
                kind=ESCALATION_KIND,
                state="sending",
                priority=ctx.priority,
                channels=[name],
                total=0,
                planned_at=utcnow(),
                message={"question_id": question.id, "step": number},
            )
            session.add(broadcast)
            session.flush()
            mine = self._actions(session, question.id, [r[0] for r in rows], number, "resend", name, broadcast.id)
            rows = [r for r in rows if r[0] in mine]
            if rows:
                stamp = utcnow()
                session.execute(
                    insert(Delivery),
                    [
                        {
                            "broadcast_id": broadcast.id,
                            "channel": name,
                            "address": address,
                            "subscriber_id": sid,
                            "locale": locale,
                            "priority": ctx.priority,
                            "status": "pending",
                            "attempts": 0,
                            "next_attempt_at": stamp,
                            "created_at": stamp,
                            "updated_at": stamp,
                        }
                        for sid, address, locale in rows
                    ],
                )
                broadcast.total = len(rows)
                taken += [r[0] for r in rows]
                queued += len(rows)
            else:
                session.delete(broadcast)
        if skipped:
            taken += self._actions(session, question.id, skipped, number, "skipped", step.channel, None)
        if taken:
            session.execute(
                update(QuestionRecipient)
                .where(
                    QuestionRecipient.question_id == question.id,
                    QuestionRecipient.subscriber_id.in_(taken),
                    QuestionRecipient.escalation_step == index,
                )
                .values(escalation_step=number, next_escalation_at=nxt)
                .execution_options(synchronize_session=False)
            )
        lost = set(sids) - set(taken)
        if lost:  # the step was taken already (another runner): just move them on without re-sending
            _set_step(session, question.id, list(lost), index, number, nxt)
        return queued

    def _actions(
        self,
        session: Session,
        qid: int,
        sids: Sequence[int],
        step: int,
        kind: str,
        channel: str,
        broadcast_id: int | None,
    ) -> list[int]:
        """Insert the step's action rows; the subscriber ids inserted now (not there already)."""
        if not sids:
            return []
        stamp = utcnow()
        stmt = _insert_ignore(session).returning(_EA.c.subscriber_id)
        rows = session.execute(
            stmt,
            [
                {
                    "question_id": qid,
                    "subscriber_id": sid,
                    "step": step,
                    "kind": kind,
                    "channel": channel,
                    "broadcast_id": broadcast_id,
                    "at": stamp,
                }
                for sid in sids
            ],
        )
        return [int(r[0]) for r in rows]

    # ------------------------------------------------------------------ threshold
    def fire_thresholds(self) -> int:
        """Evaluate every due threshold once; summaries sent."""
        now = clock.now()
        fired = 0
        with Session(self.engine) as session:
            evaluated = exists().where(
                EscalationAction.question_id == Question.id,
                EscalationAction.subscriber_id == 0,
                EscalationAction.step == THRESHOLD_STEP,
            )
            ids = list(
                session.scalars(
                    select(Question.id).where(
                        Question.state == "open", Question.threshold_fired_at.is_(None), ~evaluated
                    )
                )
            )
        for qid in ids:
            with Session(self.engine) as session, session.begin():
                q = session.scalar(_for_update(select(Question).where(Question.id == qid), session))
                if q is None or q.state != "open" or q.threshold_fired_at is not None:
                    continue
                ctx = _context(session, q)
                rule = ctx.rules.threshold if ctx.rules is not None else None
                if rule is None or q.opened_at is None or now < q.opened_at + rule.delay:
                    continue
                if self.quiet_end(ctx, now) is not None:
                    continue
                if self._threshold(session, ctx, rule, now):
                    fired += 1
                    notify_workers(session)
        return fired

    def _threshold(self, session: Session, ctx: _Context, rule: EscalationThreshold, now: datetime) -> bool:
        q = ctx.question
        answered = int(
            session.scalar(
                select(func.count())
                .select_from(QuestionRecipient)
                .where(QuestionRecipient.question_id == q.id, QuestionRecipient.answered_at.is_not(None))
            )
            or 0
        )
        total = int(
            session.scalar(
                select(func.count()).select_from(QuestionRecipient).where(QuestionRecipient.question_id == q.id)
            )
            or 0
        )
        below = total > 0 and answered * 100 < rule.percent * total
        kind = "summary" if below else "threshold_met"
        if not self._actions(session, q.id, [0], THRESHOLD_STEP, kind, "group", None):
            return False  # evaluated already
        if not below:
            return False
        summary = build_summary(session, q, total, answered, self.settings)
        broadcast_ids = send_to_group(session, rule, summary, ctx.priority)
        session.execute(
            update(EscalationAction)
            .where(
                EscalationAction.question_id == q.id,
                EscalationAction.subscriber_id == 0,
                EscalationAction.step == THRESHOLD_STEP,
            )
            .values(broadcast_id=broadcast_ids[0] if broadcast_ids else None)
            .execution_options(synchronize_session=False)
        )
        q.threshold_fired_at = utcnow()
        return True


# --- functions the responses API and the worker use -------------------------------------------------------


def arm(session: Session, question: Question) -> int:
    """Schedule the first escalation step for everyone asked who has not answered (caller commits); how many.
    Marks the question armed even when it has no steps (nothing to schedule)."""
    rules = rules_for(question)
    question.escalation_armed_at = utcnow()
    if rules is None or not rules.steps:
        return 0
    start = question.opened_at or clock.now()
    due = start + rules.steps[0].delay
    result = session.execute(
        update(QuestionRecipient)
        .where(
            QuestionRecipient.question_id == question.id,
            QuestionRecipient.answered_at.is_(None),
            QuestionRecipient.escalation_step == 0,
            QuestionRecipient.next_escalation_at.is_(None),
        )
        .values(next_escalation_at=due)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def stop_question(session: Session, question_id: int) -> int:
    """Stop every escalation of a question (call when it closes; caller commits): clears the pending steps and
    cancels its queued re-sends. How many deliveries were cancelled."""
    _clear(session, question_id)
    q = session.get(Question, question_id)
    if q is None:
        return 0
    cancelled = 0
    for bid in session.scalars(
        select(Broadcast.id).where(
            Broadcast.update_id == q.update_id,
            Broadcast.kind == ESCALATION_KIND,
            Broadcast.state.in_(("planning", "sending")),
        )
    ):
        cancelled += planner.cancel(session, bid)
    return cancelled


def answered_or_closed(engine: Engine, update_id: int, subscriber_ids: Iterable[int]) -> set[int] | None:
    """Right before a re-send: the people among `subscriber_ids` who answered meanwhile, or None when the
    question was closed (nobody is re-sent anything)."""
    ids = [i for i in subscriber_ids if i is not None]
    with engine.connect() as conn:
        row = conn.execute(select(Question.id, Question.state).where(Question.update_id == update_id)).first()
        if row is None:
            return set()
        if row.state == "closed":
            return None
        if not ids:
            return set()
        return set(
            conn.execute(
                select(QuestionRecipient.subscriber_id).where(
                    QuestionRecipient.question_id == row.id,
                    QuestionRecipient.subscriber_id.in_(ids),
                    QuestionRecipient.answered_at.is_not(None),
                )
            ).scalars()
        )


def _clear(session: Session, question_id: int) -> None:
    session.execute(
        update(QuestionRecipient)
        .where(QuestionRecipient.question_id == question_id, QuestionRecipient.next_escalation_at.is_not(None))
        .values(next_escalation_at=None)
        .execution_options(synchronize_session=False)
    )


def _set_next(session: Session, qid: int, sids: list[int], when: datetime | None) -> None:
    session.execute(
        update(QuestionRecipient)
        .where(QuestionRecipient.question_id == qid, QuestionRecipient.subscriber_id.in_(sids))
        .values(next_escalation_at=when)
        .execution_options(synchronize_session=False)
    )


def _set_step(session: Session, qid: int, sids: list[int], index: int, number: int, nxt: datetime | None) -> None:
    session.execute(
        update(QuestionRecipient)
        .where(
            QuestionRecipient.question_id == qid,
            QuestionRecipient.subscriber_id.in_(sids),
            QuestionRecipient.escalation_step == index,
        )
        .values(escalation_step=number, next_escalation_at=nxt)
        .execution_options(synchronize_session=False)
    )


def _address(sub: Any, channel: str, used: set[ChannelKind]) -> tuple[str, str] | None:
    """(channel name, address) a step reaches `sub` on, or None when they have no usable address there."""
    if channel == SECONDARY:
        for kind in SECONDARY_ORDER:
            if kind not in used and _usable(sub, kind) is not None:
                return kind.value, str(_usable(sub, kind))
        return None
    step_kind = kind_of(channel)
    if step_kind is None:
        return None
    address = _usable(sub, step_kind)
    return (channel, address) if address is not None else None


def _usable(sub: Any, kind: ChannelKind) -> str | None:
    if kind is ChannelKind.email:
        return str(sub.email) if sub.email and sub.email_confirmed and not sub.email_opted_out else None
    if kind in (ChannelKind.sms, ChannelKind.voice):
        return str(sub.phone) if sub.phone and sub.phone_confirmed and not sub.sms_opted_out else None
    return None


# --- the threshold summary ----------------------------------------------------------------------------------


@dataclass
class Summary:
    subject: str
    text: str
    sms: str


def unanswered_list_url(settings: Settings, update_id: int) -> str:
    """Where the full list is: the responses CSV export (people without an answer come last)."""
    return f"{settings.public_url.rstrip('/')}/v1/updates/{update_id}/responses.csv"


def build_summary(session: Session, q: Question, total: int, answered: int, settings: Settings) -> Summary:
    """The escalation group's message: counts, and who has not answered (the first SUMMARY_LIST by name)."""
    missing = total - answered
    people = session.execute(
        select(Subscriber.name, Subscriber.phone, Subscriber.email)
        .join(QuestionRecipient, QuestionRecipient.subscriber_id == Subscriber.id)
        .where(QuestionRecipient.question_id == q.id, QuestionRecipient.answered_at.is_(None))
        .order_by(Subscriber.id)
        .limit(SUMMARY_LIST)
    ).all()
    url = unanswered_list_url(settings, q.update_id)
    pct = 100.0 * answered / total if total else 0.0
    lines = [
        f"{settings.org_name}: only {answered} of {total} people ({pct:.0f}%) answered “{q.text}”.",
        f"{missing} have not answered yet:",
        "",
    ]
    for name, phone, email in people:
        lines.append(" - " + " · ".join(x for x in (name, phone, email) if x))
    if missing > len(people):
        lines += ["", f"... and {missing - len(people)} more. Full list: {url}"]
    else:
        lines += ["", f"Full list: {url}"]
    subject = f"Escalation: {missing} of {total} have not answered “{q.text}”"[:200]
    sms = f"{settings.org_name} escalation: {missing} of {total} have not answered “{q.text[:60]}”. List: {url}"
    return Summary(subject, "\n".join(lines), sms)


def send_to_group(session: Session, rule: EscalationThreshold, summary: Summary, priority: int) -> list[int]:
    """Queue the summary to the group: one message per address (emails, then phones, then tagged subscribers
    by email, else by SMS); the broadcast ids (one per channel)."""
    from broadcaster.models.audience import SubscriberTag

    emails = [str(e).lower() for e in rule.group.emails]
    phones = list(rule.group.phones)
    if rule.group.tag:
        for email, phone, confirmed, opted_out, sms_out in session.execute(
            select(
                Subscriber.email,
                Subscriber.phone,
                Subscriber.email_confirmed,
                Subscriber.email_opted_out,
                Subscriber.sms_opted_out,
            )
            .join(SubscriberTag, SubscriberTag.subscriber_id == Subscriber.id)
            .where(SubscriberTag.tag == rule.group.tag)
        ):
            if email and confirmed and not opted_out:
                emails.append(email.lower())
            elif phone and not sms_out:
                phones.append(phone)
    lane = min(priority, int(Priority.major))
    sends = (
        ("email", emails, {"subject": summary.subject, "text": summary.text, "escalation": True}),
        ("sms", phones, {"text": summary.sms, "escalation": True}),
    )
    return [
        bid
        for channel, addresses, message in sends
        if (bid := queue_system(session, channel, addresses, message, lane))
    ]


# --- the runner ------------------------------------------------------------------------------------------


class EscalationRunner:
    """Runs `Escalator.tick` every ESCALATION_POLL_SECONDS beside a delivery worker."""

    #: its door (broadcaster/doors.py; tests/core/test_doors.py)
    door: ClassVar[str] = "question.escalation"

    def __init__(self, *, engine: Engine | None = None, poll: float | None = None) -> None:
        self.engine = engine or get_engine()
        self.poll = poll if poll is not None else get_settings().escalation_poll_seconds
        self._stop = threading.Event()

    def run_once(self) -> dict[str, int]:
        return Escalator(self.engine).tick()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await asyncio.to_thread(self.run_once)
            except Exception:
                log.exception("escalations: a tick failed; retrying")
            await asyncio.to_thread(self._stop.wait, self.poll)

    def stop(self) -> None:
        self._stop.set()


__all__ = [
    "ESCALATION_KIND",
    "EscalationRunner",
    "Escalator",
    "answered_or_closed",
    "arm",
    "stop_question",
]
