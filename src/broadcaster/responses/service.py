"""Questions and answers. Services take a session and never commit.

`record_answer` is the one entry point for every answer (SMS, voice, e-mail link, webhook, API, bench): it
stores the answer (every one, recognised or not, matched or not), and when it is a recipient's answer to an
open question, moves their latest answer and the tally counters in the same transaction.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, case, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from broadcaster import audit, clock
from broadcaster.errors import Conflict, NotFound
from broadcaster.invalidation import content_changed
from broadcaster.models import Category, Update, utcnow
from broadcaster.models.areas import Area, SubscriberArea
from broadcaster.models.audience import SubscriberCategory, SubscriberTag
from broadcaster.models.delivery import Broadcast, Delivery, Subscriber
from broadcaster.models.responses import Question, QuestionRecipient, Response, ResponseTally
from broadcaster.responses import distress, matching
from broadcaster.responses.escalation import applied_rules
from broadcaster.responses.schemas import (
    FreeTextReplyOut,
    OptionCount,
    OptionOut,
    PersonOut,
    QuestionIn,
    QuestionOut,
    ResponseOut,
    ResponsesOut,
    SegmentCount,
)

DRAFT, OPEN, CLOSED = "draft", "open", "closed"


# --- the question on an update -----------------------------------------------------------------------------


def question_for(session: Session, update_id: int) -> Question | None:
    return session.scalar(select(Question).where(Question.update_id == update_id))


def require_question(session: Session, update_id: int) -> Question:
    """The update's question; 404 naming the update when it has none (or does not exist)."""
    if session.get(Update, update_id) is None:
        raise NotFound(f"Update {update_id} does not exist.", field="update_id")
    question = question_for(session, update_id)
    if question is None:
        raise NotFound(f"Update {update_id} asks no question.", field="update_id", code="no_question")
    return question


def require_question_by_id(session: Session, question_id: int) -> Question:
    question = session.get(Question, question_id)
    if question is None:
        raise NotFound(f"Question {question_id} does not exist.", field="token")
    return question


def set_question(session: Session, update: Update, data: QuestionIn | None) -> Question | None:
    """Attach, replace (draft only) or remove (`None`) the update's question."""
    existing = question_for(session, update.id)
    if existing is not None and existing.state != DRAFT:
        raise Conflict(f"The question of update {update.id} is {existing.state}.", field="question")
    if data is None:
        if existing is not None:
            session.delete(existing)
            session.flush()
        return None
    question = existing or Question(update_id=update.id, state=DRAFT, recipients=0)
    question.text = data.text
    question.options = data.stored_options()
    question.escalation = data.escalation.stored() if data.escalation is not None else None
    if existing is None:
        session.add(question)
    session.flush()
    return question


def open_for_update(session: Session, update: Update) -> None:
    """Publishing the update opens its question (called by publishing) and fixes the escalation that runs for it:
    its effective rules now, i.e. what the approval covered (`Question.escalation_applied`)."""
    question = question_for(session, update.id)
    if question is not None and question.state == DRAFT:
        question.state = OPEN
        question.opened_at = utcnow()
        question.escalation_applied = applied_rules(question, update.incident.category)


def add_recipients(session: Session, broadcast: Broadcast) -> int:
    """After planning `broadcast`: everyone it reaches is asked its update's question (INSERT ... SELECT
    DISTINCT inside the database; people already asked by an earlier broadcast are kept as they are).
    Returns how many were added."""
    if broadcast.update_id is None or broadcast.kind == "system":
        return 0
    qid = session.scalar(select(Question.id).where(Question.update_id == broadcast.update_id))
    if qid is None:
        return 0
    already = select(QuestionRecipient.subscriber_id).where(QuestionRecipient.question_id == qid)
    src = (
        select(literal(qid), Delivery.subscriber_id, literal(0))
        .where(
            Delivery.broadcast_id == broadcast.id,
            Delivery.subscriber_id.is_not(None),
            Delivery.subscriber_id.not_in(already),
        )
        .distinct()
    )
    result = session.connection().execute(
        insert(QuestionRecipient).from_select(["question_id", "subscriber_id", "escalation_step"], src),
        execution_options={"preserve_rowcount": True},
    )
    added = int(cast(CursorResult[Any], result).rowcount or 0)
    if added:
        question = session.get(Question, qid)
        assert question is not None
        question.recipients = int(
            session.scalar(
                select(func.count()).select_from(QuestionRecipient).where(QuestionRecipient.question_id == qid)
            )
            or 0
        )
    return added


def question_out(question: Question) -> QuestionOut:
    return QuestionOut(
        id=question.id,
        update_id=question.update_id,
        text=question.text,
        options=[OptionOut(**o) for o in question.options],
        escalation=question.escalation,
        escalation_applied=question.escalation_applied,
        state=question.state,
        opened_at=question.opened_at,
        closed_at=question.closed_at,
        closed_by=question.closed_by,
        recipients=question.recipients,
    )


#: the question of a draft being previewed (POST /v1/preview): a transient Question, never added to a session
_DRAFT_QUESTIONS: weakref.WeakKeyDictionary[Update, Question] = weakref.WeakKeyDictionary()


def attach_draft_question(update: Update, data: QuestionIn) -> None:
    """Preview an unsaved update with its question: every channel renders it as it would once saved."""
    _DRAFT_QUESTIONS[update] = Question(
        id=0,
        text=data.text,
        options=data.stored_options(),
        escalation=data.escalation.stored() if data.escalation is not None else None,
        state=DRAFT,
        recipients=0,
    )


def question_of(session: Session | None, update: Update) -> Question | None:
    """The question `update` asks: the one attached to an unsaved draft being previewed, else the stored one."""
    from sqlalchemy import inspect as sa_inspect

    draft = _DRAFT_QUESTIONS.get(update)
    if draft is not None:
        return draft
    if session is None or update.id is None or sa_inspect(update).session is None:
        return None  # an unsaved update without a question, or a detached one: no question to look up
    return update.question


def render_context(session: Session | None, update: Update) -> dict[str, Any] | None:
    """What the templates get as `question` (None when the update asks nothing): text, options with the
    digit to press and the e-mail placeholder of their signed link, and the webhook response URL."""
    question = question_of(session, update)
    if question is None:
        return None
    from broadcaster.responses.links import PLACEHOLDER, webhook_response_url

    options = [
        {
            **o,
            "press": matching.press_digit(i + 1, o),
            "url": PLACEHOLDER.format(key=o["key"]),
        }
        for i, o in enumerate(question.options)
    ]
    return {
        "id": question.id,
        "text": question.text,
        "state": question.state,
        "options": options,
        "response_url": webhook_response_url(question.id),
    }


# --- answers ---------------------------------------------------------------------------------------------


@dataclass
class Answer:
    """What `record_answer` did."""

    response: Response
    question: Question | None
    #: the option chosen (None: not recognised)
    option: dict[str, Any] | None
    #: a provider retry of an answer already stored: nothing changed
    duplicate: bool = False
    #: the answer arrived after the question was closed (stored, counts nowhere, triggers nothing)
    late: bool = False

    @property
    def counted(self) -> bool:
        return bool(self.response.counted)


def _option(question: Question, key: str | None) -> dict[str, Any] | None:
    return matching.option_by_key(question.options, key)


def _bump(session: Session, question_id: int, key: str, channel: str, delta: int, subscriber_id: int = 0) -> None:
    """Move one tally counter, in the person's shard (inserted at 0 the first time; ON CONFLICT on both
    backends)."""
    from broadcaster.models.responses import TALLY_SHARDS

    shard = subscriber_id % TALLY_SHARDS
    dialect = session.get_bind().dialect.name
    if delta > 0:
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as upsert
        else:
            from sqlalchemy.dialects.sqlite import insert as upsert  # type: ignore[assignment]
        stmt = upsert(ResponseTally).values(
            question_id=question_id, option_key=key, channel=channel, shard=shard, count=delta
        )
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["question_id", "option_key", "channel", "shard"],
                set_={"count": ResponseTally.count + delta},
            )
        )
        return
    session.execute(
        update(ResponseTally)
        .where(
            ResponseTally.question_id == question_id,
            ResponseTally.option_key == key,
            ResponseTally.channel == channel,
            ResponseTally.shard == shard,
        )
        .values(count=ResponseTally.count + delta)
        .execution_options(synchronize_session=False)
    )


def existing_answer(session: Session, channel: str, provider_event_id: str | None) -> Response | None:
    """The answer already stored for this provider event (a retried webhook), if any."""
    if provider_event_id is None:
        return None
    return session.scalar(
        select(Response).where(Response.channel == channel, Response.provider_event_id == provider_event_id)
    )


def answer_of(session: Session, row: Response, duplicate: bool) -> Answer:
    """A stored answer with its question and option (whether it came after closing)."""
    question = session.get(Question, row.question_id) if row.question_id is not None else None
    option = _option(question, row.option_key) if question is not None else None
    late = question is not None and question.state == CLOSED and not row.counted and option is not None
    return Answer(row, question, option, duplicate=duplicate, late=late)


def latest_question_for_phone(session: Session, phone: str) -> tuple[Question, int] | None:
    """The latest open question sent to `phone` and the subscriber; else the latest closed one (a late
    answer); None when no question was sent to that number."""
    stmt = (
        select(Question, QuestionRecipient.subscriber_id)
        .join(QuestionRecipient, QuestionRecipient.question_id == Question.id)
        .join(Subscriber, Subscriber.id == QuestionRecipient.subscriber_id)
        .where(Subscriber.phone == phone, Question.state.in_((OPEN, CLOSED)))
        .order_by((Question.state == OPEN).desc(), Question.opened_at.desc(), Question.id.desc())
        .limit(1)
    )
    row = session.execute(stmt).first()
    return (row[0], int(row[1])) if row is not None else None


def record_answer(
    session: Session,
    *,
    channel: str,
    body: str,
    address: str = "",
    question_id: int | None = None,
    subscriber_id: int | None = None,
    option_key: str | None = None,
    provider_event_id: str | None = None,
    at: datetime | None = None,
) -> Answer:
    """Store one answer and, when it is a recipient's recognised answer to an open question, make it their
    latest answer and move the tallies (old option/channel -1, new +1) in the caller's transaction.

    - SMS without `question_id`: matched to the latest open question sent to `address` (by phone);
    - `option_key` given (voice digit, e-mail button): taken as is when it is an option, else unrecognised;
      otherwise `body` is matched by the rules of `broadcaster.responses.matching`;
    - `provider_event_id` (MessageSid, CallSid:digits) makes provider retries a no-op returning the first
      answer (`duplicate=True`), also when two retries race (unique constraint: ON CONFLICT on PostgreSQL, a
      savepoint on SQLite).
    """
    # PostgreSQL: the insert below detects a retry itself (ON CONFLICT DO NOTHING), so no look-up first and no
    # savepoint: three statements fewer per answer (bench/responses.py)
    one_statement = provider_event_id is not None and session.get_bind().dialect.name == "postgresql"
    if not one_statement:
        existing = existing_answer(session, channel, provider_event_id)
        if existing is not None:
            return answer_of(session, existing, duplicate=True)
    question: Question | None = None
    if question_id is not None:
        question = session.get(Question, question_id)
    elif channel == "sms" and address:
        found = latest_question_for_phone(session, address)
        if found is not None:
            question, subscriber_id = found
    if question is not None and question.state == DRAFT:
        question = None
    recipient: QuestionRecipient | None = None
    if question is not None and subscriber_id is not None:
        recipient = session.scalar(
            select(QuestionRecipient)
            .where(QuestionRecipient.question_id == question.id, QuestionRecipient.subscriber_id == subscriber_id)
            .with_for_update()
        )
    option: dict[str, Any] | None = None
    if question is not None:
        if option_key is not None:
            option = _option(question, option_key)
        else:
            key = matching.match(body, question.options)
            option = _option(question, key)
    when = at or clock.now()
    late = question is not None and question.state == CLOSED
    counts = question is not None and not late and option is not None and recipient is not None
    key = str(option["key"]) if option is not None else ""
    # decided before the insert, so the row is written once (no UPDATE of it afterwards)
    moves = counts and recipient is not None and (recipient.option_key != key or recipient.answer_channel != channel)
    values: dict[str, Any] = {
        "question_id": question.id if question is not None else None,
        "subscriber_id": subscriber_id if question is not None else None,
        "channel": channel,
        "address": address[:320],
        "body": body[:2000],
        "option_key": str(option["key"]) if option is not None else None,
        "counted": moves,
        "provider_event_id": provider_event_id,
        "received_at": when,
    }
    row = Response(**values)
    if one_statement:
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        new_id = session.execute(
            pg_insert(Response)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["channel", "provider_event_id"])
            .returning(Response.id)
        ).scalar()
        if new_id is None:  # a retry (waited for the first one's commit when both raced)
            existing = existing_answer(session, channel, provider_event_id)
            if existing is None:
                raise RuntimeError(f"answer {channel}/{provider_event_id} conflicted but is not stored")
            return answer_of(session, existing, duplicate=True)
        row.id = int(new_id)
    else:
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError:
            existing = existing_answer(session, channel, provider_event_id)
            if existing is None:
                raise
            return answer_of(session, existing, duplicate=True)
    if question is None or late or option is None or recipient is None:
        return Answer(row, question, option, late=late and option is not None)
    previous = (recipient.option_key, recipient.answer_channel)
    recipient.option_key = key
    recipient.answer_channel = channel
    recipient.answered_at = when
    recipient.next_escalation_at = None  # an answer stops this person's escalation
    session.flush()
    # the tally rows every answer shares are locked last, right before the caller commits: their lock is held
    # for one statement and the commit (bench/responses.py)
    if moves:
        bumps = [(key, channel, +1)]
        if previous[0] is not None and previous[1] is not None:
            bumps.append((previous[0], previous[1], -1))
        for k, ch, delta in sorted(bumps):  # one lock order for every answer: two changed answers cannot deadlock
            _bump(session, question.id, k, ch, delta, recipient.subscriber_id)
    return Answer(row, question, option)


def close_question(session: Session, question: Question, actor: str) -> Question:
    """Close an open question (late answers are still stored but count nowhere and trigger nothing);
    audited. Closing a closed question is a no-op; a draft one is a 409."""
    if question.state == CLOSED:
        return question
    if question.state != OPEN:
        raise Conflict(
            f"The question of update {question.update_id} is not open yet (the update is not published).",
            field="update_id",
            code="question_not_open",
        )
    before = {"state": question.state, "closed_at": None}
    question.state = CLOSED
    question.closed_at = utcnow()
    question.closed_by = actor
    session.execute(
        update(QuestionRecipient)
        .where(QuestionRecipient.question_id == question.id, QuestionRecipient.next_escalation_at.is_not(None))
        .values(next_escalation_at=None)
        .execution_options(synchronize_session=False)
    )
    from broadcaster.responses.escalation_runner import stop_question

    stop_question(session, question.id)  # re-sends already queued are cancelled too
    audit.record(
        session,
        actor,
        "question.close",
        "question",
        question.id,
        before=before,
        after={"state": question.state, "closed_at": question.closed_at},
        update_id=question.update_id,
    )
    session.flush()
    content_changed(session)  # the CAP alert no longer asks (public/cap.py)
    return question


# --- tallies ---------------------------------------------------------------------------------------------


def segments(session: Session, question: Question) -> list[SegmentCount]:
    """Recipients and answers per category, tag and named area (GROUP BY joins in the database). Subscribers
    who chose no category count under "(all categories)"."""

    out: dict[tuple[str, str], SegmentCount] = {}

    def add(segment: str, value: str, key: str | None, n: int) -> None:
        seg = out.setdefault(
            (segment, value), SegmentCount(segment=segment, value=value, recipients=0, answered=0, by_option={})
        )
        seg.recipients += n
        if key is not None:
            seg.answered += n
            seg.by_option[key] = seg.by_option.get(key, 0) + n

    mine = QuestionRecipient.question_id == question.id
    key = QuestionRecipient.option_key
    queries: list[tuple[str, Any]] = [
        (
            "category",
            select(Category.slug, key, func.count())
            .join(SubscriberCategory, SubscriberCategory.subscriber_id == QuestionRecipient.subscriber_id)
            .join(Category, Category.id == SubscriberCategory.category_id)
            .where(mine)
            .group_by(Category.slug, key),
        ),
        (
            "category",
            select(literal("(all categories)"), key, func.count())
            .join(Subscriber, Subscriber.id == QuestionRecipient.subscriber_id)
            .where(mine, Subscriber.all_categories.is_(True))
            .group_by(key),
        ),
        (
            "tag",
            select(SubscriberTag.tag, key, func.count())
            .join(SubscriberTag, SubscriberTag.subscriber_id == QuestionRecipient.subscriber_id)
            .where(mine)
            .group_by(SubscriberTag.tag, key),
        ),
        (
            "area",
            select(Area.slug, key, func.count())
            .join(SubscriberArea, SubscriberArea.subscriber_id == QuestionRecipient.subscriber_id)
            .join(Area, Area.id == SubscriberArea.area_id)
            .where(mine)
            .group_by(Area.slug, key),
        ),
    ]
    for segment, stmt in queries:
        for value, option_key, n in session.execute(stmt):
            add(segment, str(value), option_key, int(n))
    return sorted(out.values(), key=lambda s: (s.segment, s.value))


def counts(session: Session, question: Question) -> tuple[list[OptionCount], dict[str, int], int]:
    """Per option (and channel) from the tally counters; per channel; answered in total."""
    per: dict[str, dict[str, int]] = {}
    for key, channel, n in session.execute(
        select(ResponseTally.option_key, ResponseTally.channel, ResponseTally.count).where(
            ResponseTally.question_id == question.id
        )
    ):
        if n:  # shards of one counter add up
            chans = per.setdefault(key, {})
            chans[channel] = chans.get(channel, 0) + int(n)
    by_channel: dict[str, int] = {}
    options = []
    for o in question.options:
        chans = per.get(str(o["key"]), {})
        for ch, n in chans.items():
            by_channel[ch] = by_channel.get(ch, 0) + n
        options.append(
            OptionCount(
                key=str(o["key"]),
                label=str(o["label"]),
                needs_help=bool(o.get("needs_help")),
                count=sum(chans.values()),
                by_channel=chans,
            )
        )
    return options, by_channel, sum(by_channel.values())


def _help_rank(help_keys: list[str]) -> Any:
    """0: answered needs-help, 1: answered otherwise, 2: no answer yet (no NULL ordering differences)."""
    key = QuestionRecipient.option_key
    whens: list[Any] = [(key.is_(None), 2)]
    if help_keys:
        whens.insert(0, (key.in_(help_keys), 0))
    return case(*whens, else_=1)


def _help_keys(question: Question) -> list[str]:
    return [str(o["key"]) for o in question.options if o.get("needs_help")]


def people(
    session: Session, question: Question, *, limit: int = 50, cursor: int | None = None
) -> tuple[list[PersonOut], str | None]:
    """Who answered, the needs-help answers first, then the others; each group by subscriber id. The cursor
    is a position in that order (offset), since the two groups are ordered differently."""
    help_keys = _help_keys(question)
    offset = cursor or 0
    # two range reads in subscriber order (the primary key) instead of sorting every answer by a computed rank
    # (a top-N sort of 600k rows on a 1M question, bench/responses.py): the needs-help answers, then the others;
    # how many need help comes from the tally counters
    helped = QuestionRecipient.option_key.in_(help_keys) if help_keys else literal(False)
    n_help = 0
    if help_keys:
        n_help = int(
            session.scalar(
                select(func.coalesce(func.sum(ResponseTally.count), 0)).where(
                    ResponseTally.question_id == question.id, ResponseTally.option_key.in_(help_keys)
                )
            )
            or 0
        )
    base = (
        select(QuestionRecipient, Subscriber.name, Subscriber.phone, Subscriber.email)
        .join(Subscriber, Subscriber.id == QuestionRecipient.subscriber_id)
        .order_by(QuestionRecipient.question_id, QuestionRecipient.subscriber_id)
    )
    rows: list[Any] = []
    if offset < n_help:
        rows += session.execute(
            base.where(QuestionRecipient.question_id == question.id, helped).offset(offset).limit(limit + 1)
        ).all()
    if len(rows) <= limit:
        rows += session.execute(
            base.where(
                QuestionRecipient.question_id == question.id,
                QuestionRecipient.option_key.is_not(None),
                ~helped if help_keys else literal(True),
            )
            .offset(max(0, offset - n_help))
            .limit(limit + 1 - len(rows))
        ).all()
    out = [
        PersonOut(
            subscriber_id=qr.subscriber_id,
            name=name or "",
            phone=phone,
            email=email,
            option_key=qr.option_key,
            needs_help=qr.option_key in help_keys,
            answer_channel=qr.answer_channel,
            answered_at=qr.answered_at,
        )
        for qr, name, phone, email in rows[:limit]
    ]
    return out, (str(offset + limit) if len(rows) > limit else None)


def unrecognised_count(session: Session, question: Question) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Response)
            .where(Response.question_id == question.id, Response.option_key.is_(None))
        )
        or 0
    )


def responses(
    session: Session, update_id: int, *, limit: int = 50, cursor: int | None = None, with_segments: bool = True
) -> ResponsesOut:
    """The live tallies of the update's question."""
    question = require_question(session, update_id)
    options, by_channel, answered = counts(session, question)
    listed, next_cursor = people(session, question, limit=limit, cursor=cursor)
    return ResponsesOut(
        update_id=update_id,
        question=question_out(question),
        recipients=question.recipients,
        answered=answered,
        no_answer_yet=max(0, question.recipients - answered),
        options=options,
        by_channel=by_channel,
        segments=segments(session, question) if with_segments else [],
        unrecognised=unrecognised_count(session, question),
        people=listed,
        next_cursor=next_cursor,
    )


def response_out(row: Response) -> ResponseOut:
    return ResponseOut.model_validate(row, from_attributes=True)


def list_responses(
    session: Session, update_id: int, *, unrecognised: bool, limit: int = 50, cursor: int | None = None
) -> tuple[list[ResponseOut], str | None]:
    """Every answer received for the question (newest first), or only the unrecognised ones."""
    question = require_question(session, update_id)
    stmt = select(Response).where(Response.question_id == question.id)
    if unrecognised:
        stmt = stmt.where(Response.option_key.is_(None))
    if cursor is not None:
        stmt = stmt.where(Response.id < cursor)
    rows = list(session.scalars(stmt.order_by(Response.id.desc()).limit(limit + 1)))
    nxt = str(rows[limit - 1].id) if len(rows) > limit else None
    return [response_out(r) for r in rows[:limit]], nxt


#: free-text replies read per page load to find the ones a person should read (the newest first)
FREE_TEXT_SCAN = 2000


def free_text_replies(
    session: Session, update_id: int, *, limit: int = 20, scan: int = FREE_TEXT_SCAN
) -> tuple[list[FreeTextReplyOut], list[FreeTextReplyOut]]:
    """The replies that chose no option, newest first, split in two: those a person should read (danger or a
    call for help in any supported language, `distress.needs_a_person`; every one among the newest `scan`), and
    the other `limit` newest ("not understood"). Each with the sender's contact details and current answer."""
    question = require_question(session, update_id)
    stmt = (
        select(Response, Subscriber.name, Subscriber.phone, Subscriber.email, QuestionRecipient.option_key)
        .outerjoin(Subscriber, Subscriber.id == Response.subscriber_id)
        .outerjoin(
            QuestionRecipient,
            (QuestionRecipient.question_id == Response.question_id)
            & (QuestionRecipient.subscriber_id == Response.subscriber_id),
        )
        .where(Response.question_id == question.id, Response.option_key.is_(None))
        .order_by(Response.id.desc())
        .limit(scan)
    )
    flagged: list[FreeTextReplyOut] = []
    others: list[FreeTextReplyOut] = []
    for row, name, phone, email, current in session.execute(stmt):
        terms = distress.distress_terms(row.body)
        if not terms and len(others) >= limit:
            continue
        out = FreeTextReplyOut(
            **response_out(row).model_dump(),
            needs_a_person=bool(terms),
            terms=terms,
            name=name or "",
            phone=phone,
            email=email,
            current_answer=current,
        )
        (flagged if terms else others).append(out)
    return flagged, others


CSV_HEADER = [
    "subscriber_id",
    "name",
    "phone",
    "email",
    "answer_key",
    "answer",
    "needs_help",
    "answer_channel",
    "answered_at",
]


def csv_lines(question_id: int, batch: int = 2000) -> Iterator[str]:
    """Every recipient as CSV (needs-help first, then the other answers, then no answer yet), formula-safe,
    read in batches, each with a short session of its own (streamed; runs in Starlette's thread pool)."""
    import csv
    import io

    from broadcaster.csvsafe import safe_cell
    from broadcaster.db import get_sessionmaker

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_HEADER)
    yield buf.getvalue()
    offset = 0
    while True:
        with get_sessionmaker()() as session:
            question = session.get(Question, question_id)
            if question is None:
                return
            help_keys = _help_keys(question)
            labels = {str(o["key"]): str(o["label"]) for o in question.options}
            rank = _help_rank(help_keys)
            rows = session.execute(
                select(QuestionRecipient, Subscriber.name, Subscriber.phone, Subscriber.email)
                .join(Subscriber, Subscriber.id == QuestionRecipient.subscriber_id)
                .where(QuestionRecipient.question_id == question_id)
                .order_by(rank, QuestionRecipient.subscriber_id)
                .offset(offset)
                .limit(batch)
            ).all()
            buf.seek(0)
            buf.truncate()
            for qr, name, phone, email in rows:
                values: list[object] = [
                    qr.subscriber_id,
                    name or "",
                    phone,
                    email,
                    qr.option_key,
                    labels.get(qr.option_key or "", ""),
                    "yes" if qr.option_key in help_keys else "",
                    qr.answer_channel,
                    qr.answered_at,
                ]
                writer.writerow([safe_cell(v) for v in values])
        if rows:
            yield buf.getvalue()
        if len(rows) < batch:
            return
        offset += batch


# --- channel entry points --------------------------------------------------------------------------------


def how_to_answer(options: list[dict[str, Any]], labels: dict[str, Any], *, voice: bool) -> str:
    """ "Reply 1 for I'm safe, 2 for I need help." (or, on a call, "Press 1 for I'm safe. ...") in the language
    of `labels` (templates/labels.yaml: question_reply, question_choice, question_press)."""
    if voice:
        return " ".join(
            str(labels["question_press"]).format(digit=matching.press_digit(i + 1, o), label=o["label"])
            for i, o in enumerate(options)
        )
    choices = ", ".join(str(labels["question_choice"]).format(key=o["key"], label=o["label"]) for o in options)
    return str(labels["question_reply"]).format(choices=choices)


def answer_labels(locale: str | None) -> dict[str, Any]:
    """The labels.yaml block for a person's locale (or the default locale's)."""
    from broadcaster.rendering.templates import labels_for
    from broadcaster.settings import get_settings

    settings = get_settings()
    return labels_for(settings.templates_dir, locale or settings.default_locale, settings.default_locale)[0]


def reply_text(session: Session, answer: Answer, *, voice: bool = False) -> str | None:
    """The SMS (or spoken) reply to an answer, in the person's language: None for a number that was asked
    nothing (it costs nothing)."""
    question = answer.question
    if question is None:
        return None
    subscriber_id = answer.response.subscriber_id
    locale = None
    if subscriber_id is not None:
        locale = session.scalar(select(Subscriber.locale).where(Subscriber.id == subscriber_id))
    return reply_for(question.state, question.text, question.options, answer.option, voice, locale)


def reply_for(
    state: str,
    text: str,
    options: list[dict[str, Any]],
    option: dict[str, Any] | None,
    voice: bool,
    locale: str | None = None,
) -> str:
    """The reply to an answer in `locale`: recorded (with the option's label), not understood (with how to
    answer), or closed."""
    labels = answer_labels(locale)
    if state == CLOSED:
        return str(labels["question_closed"])
    if option is None:
        return f"{labels['answer_not_understood']} {text} {how_to_answer(options, labels, voice=voice)}"
    return str(labels["answer_recorded"]).format(label=option["label"])
