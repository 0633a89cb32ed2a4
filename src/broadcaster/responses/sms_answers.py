"""SMS answers applied set-based on PostgreSQL: many answers in one transaction (issue 12, >= 1,000/s).

`apply_sms_answers(session, answers)` follows exactly the rules of `service.record_answer` for channel "sms"
(matched to the latest open question sent to the number, else a late answer to the latest closed one; unmatched
and unrecognised replies stored; latest answer wins; a retried MessageSid changes nothing and gets the first
answer's reply), in five statements for the whole batch instead of five round trips and a commit per answer:

1. one look-up of every sender's question and `question_recipients` row, which it locks (`FOR UPDATE`), in
   phone order;
2. one multi-row `INSERT INTO responses ... ON CONFLICT (channel, provider_event_id) DO NOTHING RETURNING`,
   which tells the retries apart;
3. one `UPDATE question_recipients ... FROM unnest(...)` for the answers that were stored: the latest answer,
   and an answer stops the person's escalation;
4. one upsert of the tally deltas summed per (question, option, channel, shard), in key order (two batches,
   or a batch and `record_answer`, lock the counters in the same order and cannot deadlock);
5. the caller's commit.

A batch holds each sender at most once (`answer_writer` carries a second message from the same number to the
next batch), so the answers of one person are applied in arrival order. `answer_sms` uses the same
function for a single answer, so there is one implementation of these rules on PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from broadcaster import clock
from broadcaster.models.responses import TALLY_SHARDS
from broadcaster.responses import matching, service
from broadcaster.responses.service import OPEN, answer_of, existing_answer, reply_for, reply_text


@dataclass(frozen=True, slots=True)
class SmsAnswer:
    """One inbound SMS: the sender (E.164, as Twilio posts `From`), the text, the MessageSid, the arrival time."""

    sender: str
    body: str
    sid: str | None
    at: datetime


#: question id -> (text, options): neither changes once the question left draft (set_question refuses), so they
#: are cached per process; the state is read in SQL with every batch
_QUESTIONS: dict[int, tuple[str, list[dict[str, Any]]]] = {}
_QUESTIONS_MAX = 1024

_LOOKUP_SQL = (
    "SELECT p.phone, x.id, x.state, x.subscriber_id, x.option_key, x.answer_channel, x.locale "
    "FROM unnest(%(phones)s::text[]) WITH ORDINALITY AS p(phone, n) "
    "CROSS JOIN LATERAL (SELECT q.id, q.state, qr.subscriber_id, qr.option_key, qr.answer_channel, s.locale "
    "FROM subscribers s JOIN question_recipients qr ON qr.subscriber_id = s.id "
    "JOIN questions q ON q.id = qr.question_id "
    "WHERE s.phone = p.phone AND q.state IN ('open', 'closed') "
    "ORDER BY q.state = 'open' DESC, q.opened_at DESC, q.id DESC LIMIT 1 FOR UPDATE OF qr) AS x "
    "ORDER BY p.n"
)
_INSERT_SQL = (
    "INSERT INTO responses (question_id, subscriber_id, channel, address, body, option_key, counted, "
    "provider_event_id, received_at) "
    "SELECT v.q, v.s, 'sms', v.address, v.body, v.k, v.counted, v.sid, v.at FROM unnest(%(q)s::bigint[], "
    "%(s)s::bigint[], %(address)s::text[], %(body)s::text[], %(k)s::text[], %(counted)s::boolean[], "
    "%(sid)s::text[], %(at)s::timestamptz[], %(n)s::int[]) AS v(q, s, address, body, k, counted, sid, at, n) "
    "ORDER BY v.n ON CONFLICT (channel, provider_event_id) DO NOTHING RETURNING id, provider_event_id"
)
_RECIPIENTS_SQL = (
    "UPDATE question_recipients AS qr SET option_key = v.k, answer_channel = 'sms', answered_at = v.at, "
    "next_escalation_at = NULL FROM unnest(%(q)s::bigint[], %(s)s::bigint[], %(k)s::text[], "
    "%(at)s::timestamptz[]) AS v(q, s, k, at) WHERE qr.question_id = v.q AND qr.subscriber_id = v.s"
)
_TALLY_SQL = (
    "INSERT INTO response_tallies (question_id, option_key, channel, shard, count) "
    "SELECT * FROM unnest(%(q)s::bigint[], %(k)s::text[], %(ch)s::text[], %(shard)s::int[], %(d)s::int[]) "
    "AS v(q, k, ch, shard, d) ORDER BY 1, 2, 3, 4 "
    "ON CONFLICT (question_id, option_key, channel, shard) DO UPDATE SET count = response_tallies.count + "
    "excluded.count"
)


@dataclass(slots=True)
class _Planned:
    answer: SmsAnswer
    question_id: int | None = None
    state: str | None = None
    subscriber_id: int | None = None
    option: dict[str, Any] | None = None
    counted: bool = False  # the answer moves the person's tally (a first or a changed answer)
    previous: tuple[str | None, str | None] = (None, None)
    locale: str | None = None  # the person's: the reply is in their language


def question_text_options(session: Session, question_id: int) -> tuple[str, list[dict[str, Any]]]:
    """A question's text and options (cached: they cannot change once it left draft)."""
    cached = _QUESTIONS.get(question_id)
    if cached is None:
        text, options = (
            session.connection()
            .exec_driver_sql("SELECT text, options FROM questions WHERE id = %(q)s", {"q": question_id})
            .one()
        )
        if isinstance(options, str):
            options = json.loads(options)
        if len(_QUESTIONS) >= _QUESTIONS_MAX:
            _QUESTIONS.clear()
        cached = _QUESTIONS[question_id] = (str(text), list(options))
    return cached


def apply_sms_answers(session: Session, answers: Sequence[SmsAnswer]) -> list[str | None]:
    """Store `answers` (distinct senders) in the session's transaction; the SMS reply to each, in order.

    The caller commits; nothing may be answered to Twilio before that commit."""
    senders = [a.sender for a in answers]
    if len(set(senders)) != len(senders):
        raise ValueError("a batch of SMS answers holds each sender at most once")
    cursor = session.connection().connection.cursor()  # the session's transaction, no ORM result machinery
    try:
        cursor.execute(_LOOKUP_SQL, {"phones": sorted(senders)})
        found = {row[0]: row[1:] for row in cursor.fetchall()}
        planned = [_plan(session, a, found.get(a.sender)) for a in answers]
        cursor.execute(
            _INSERT_SQL,
            {
                "q": [p.question_id for p in planned],
                "s": [p.subscriber_id for p in planned],  # set with question_id, None for a number never asked
                "address": [p.answer.sender[:320] for p in planned],
                "body": [p.answer.body[:2000] for p in planned],
                "k": [str(p.option["key"]) if p.option is not None else None for p in planned],
                "counted": [p.counted for p in planned],
                "sid": [p.answer.sid for p in planned],
                "at": [p.answer.at for p in planned],
                "n": list(range(len(planned))),
            },
        )
        inserted = cursor.fetchall()
        stored_sids = {sid for _, sid in inserted}
        stored_without_sid = sum(1 for _, sid in inserted if sid is None)
        stored = [p.answer.sid in stored_sids if p.answer.sid is not None else True for p in planned]
        if stored_without_sid != sum(1 for p in planned if p.answer.sid is None):
            raise RuntimeError("an SMS answer without a MessageSid was not stored")
        latest = [p for p, ok in zip(planned, stored, strict=True) if ok and p.state == OPEN and p.option]
        if latest:
            cursor.execute(
                _RECIPIENTS_SQL,
                {
                    "q": [p.question_id for p in latest],
                    "s": [p.subscriber_id for p in latest],
                    "k": [str(p.option["key"]) for p in latest if p.option is not None],
                    "at": [p.answer.at for p in latest],
                },
            )
        deltas: dict[tuple[int, str, str, int], int] = {}
        for p in latest:
            if not p.counted or p.option is None or p.question_id is None or p.subscriber_id is None:
                continue
            shard = p.subscriber_id % TALLY_SHARDS
            new = (p.question_id, str(p.option["key"]), "sms", shard)
            deltas[new] = deltas.get(new, 0) + 1
            old_key, old_channel = p.previous
            if old_key is not None and old_channel is not None:
                old = (p.question_id, old_key, old_channel, shard)
                deltas[old] = deltas.get(old, 0) - 1
        moved = sorted((k, d) for k, d in deltas.items() if d)
        if moved:
            cursor.execute(
                _TALLY_SQL,
                {
                    "q": [k[0] for k, _ in moved],
                    "k": [k[1] for k, _ in moved],
                    "ch": [k[2] for k, _ in moved],
                    "shard": [k[3] for k, _ in moved],
                    "d": [d for _, d in moved],
                },
            )
    finally:
        cursor.close()
    replies: list[str | None] = []
    for p, ok in zip(planned, stored, strict=True):
        if not ok:  # a retry of a stored MessageSid (waited for the first one's commit when both raced)
            existing = existing_answer(session, "sms", p.answer.sid)
            if existing is None:
                raise RuntimeError(f"answer sms/{p.answer.sid} conflicted but is not stored")
            replies.append(reply_text(session, answer_of(session, existing, duplicate=True)))
        elif p.question_id is None or p.state is None:
            replies.append(None)  # a number that was asked nothing: no reply (it costs nothing)
        else:
            text, options = question_text_options(session, p.question_id)
            replies.append(reply_for(p.state, text, options, p.option, voice=False, locale=p.locale))
    return replies


def _plan(session: Session, answer: SmsAnswer, found: tuple[Any, ...] | None) -> _Planned:
    """What `record_answer` decides for this answer, before anything is written."""
    planned = _Planned(answer)
    if found is None:
        return planned
    question_id, state, subscriber_id, prev_key, prev_channel, locale = found
    planned.question_id, planned.state, planned.subscriber_id = int(question_id), str(state), int(subscriber_id)
    planned.locale = locale
    _, options = question_text_options(session, planned.question_id)
    key = matching.match(answer.body, options)
    planned.option = matching.option_by_key(options, key)
    if planned.state == OPEN and planned.option is not None:
        planned.previous = (prev_key, prev_channel)
        planned.counted = planned.previous != (str(planned.option["key"]), "sms")
    return planned


def answer_sms(session: Session, params: dict[str, Any], *, reply: bool = True) -> str | None:
    """An inbound SMS that is not a STOP/HELP word: the answer to the latest open question sent to the
    number (a Twilio retry of the same MessageSid changes nothing and gets the same reply).

    `reply=False` (START/YES): the word keeps its opt-in meaning and also answers the question when it
    chooses an option; it is not stored as an unrecognised reply when it does not."""
    sender = str(params.get("From", ""))
    body = str(params.get("Body", ""))
    sid = str(params.get("MessageSid") or params.get("SmsSid") or "") or None
    if not reply:
        found = service.latest_question_for_phone(session, sender)
        if found is None or found[0].state != OPEN or matching.match(body, found[0].options) is None:
            return None
    if reply and sender and session.get_bind().dialect.name == "postgresql":
        # the same rules set-based (sms_answers.py), as the inbound webhook applies batches of answers
        return apply_sms_answers(session, [SmsAnswer(sender, body, sid, clock.now())])[0]
    answer = service.record_answer(session, channel="sms", body=body, address=sender, provider_event_id=sid)
    return service.reply_text(session, answer) if reply else None
