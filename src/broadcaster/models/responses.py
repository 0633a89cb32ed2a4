"""Two-way tables: a question on an update, the people asked, every answer received, live tallies, escalations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, SmallInteger, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from broadcaster.models.base import Base, BigId, UTCDateTime, utcnow


class Question(Base):
    """ "Are you safe?" on an update: 2-5 options, optional escalation rules, open until the author closes it."""

    __tablename__ = "questions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    update_id: Mapped[int] = mapped_column(ForeignKey("updates.id", ondelete="CASCADE"), unique=True)
    text: Mapped[str] = mapped_column(String(300))
    #: [{"key": "1", "label": "I'm safe", "keywords": ["SAFE"], "needs_help": false}, ...] (2-5 options)
    options: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    #: escalation rules (None: the category's, else none): {"steps": [{"after_minutes": 10, "channel": "voice"},
    #: ...], "threshold": {"percent": 60, "after_minutes": 30, "group": {...}}, "respect_quiet_hours": bool}
    escalation: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    #: the escalation that runs: the effective rules (its own, else its category's) taken when the update was
    #: published, i.e. what the approval covered ({}: none); None while a draft. The runner reads only this.
    escalation_applied: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    #: draft (update not published yet) | open | closed
    state: Mapped[str] = mapped_column(String(16), default="draft")
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    #: people asked (rows of question_recipients), set when the broadcast is planned
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    #: the threshold rule fired (the escalation group was notified once)
    threshold_fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: the first escalation step was scheduled for the people asked (set once its broadcast was planned)
    escalation_armed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QuestionRecipient(Base):
    """One person asked: their latest answer (latest wins) and where their escalation stands."""

    __tablename__ = "question_recipients"

    question_id: Mapped[int] = mapped_column(BigId, ForeignKey("questions.id", ondelete="CASCADE"), primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: latest recognised answer (None: no answer yet)
    option_key: Mapped[str | None] = mapped_column(String(16), nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    answer_channel: Mapped[str | None] = mapped_column(String(16), nullable=True)
    #: escalation steps already taken for this person (0: none); advanced in the transaction that queues the step
    escalation_step: Mapped[int] = mapped_column(SmallInteger, default=0)
    #: when this person's next escalation step is due (None: no further step, or answered)
    next_escalation_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        Index(
            "ix_question_recipients_due",
            "next_escalation_at",
            postgresql_where=text("answered_at IS NULL AND next_escalation_at IS NOT NULL"),
            sqlite_where=text("answered_at IS NULL AND next_escalation_at IS NOT NULL"),
        ),
        Index("ix_question_recipients_option", "question_id", "option_key"),
        #: an inbound SMS finds "the latest question sent to this number" from the sender's subscriber id
        Index("ix_question_recipients_subscriber", "subscriber_id", "question_id"),
    )


class Response(Base):
    """Every answer received, recognised or not, matched or not (kept even when a later one wins)."""

    __tablename__ = "responses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: None: matched to no open question (unknown number, no question sent to it)
    question_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    subscriber_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    #: sms | voice | email | webhook | api
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(320), default="")
    #: what was received (SMS text, pressed digits, chosen option)
    body: Mapped[str] = mapped_column(Text, default="")
    #: recognised option (None: not recognised; stored and shown, counts nowhere)
    option_key: Mapped[str | None] = mapped_column(String(16), nullable=True)
    #: the answer changed the person's tally (false for duplicates, late answers and unmatched ones)
    counted: Mapped[bool] = mapped_column(Boolean, default=False)
    #: provider's id of the inbound event (MessageSid, CallSid+digits, link nonce): retries are stored once
    provider_event_id: Mapped[str | None] = mapped_column(String(160), nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("channel", "provider_event_id", name="ux_responses_channel_event"),
        Index("ix_responses_question_id_id", "question_id", "id"),
        #: the unrecognised replies of a question (counted on every tally read: a few rows, not all answers)
        Index(
            "ix_responses_unrecognised",
            "question_id",
            postgresql_where=text("option_key IS NULL"),
            sqlite_where=text("option_key IS NULL"),
        ),
    )


class ResponseTally(Base):
    """Counter per question, answer and channel, moved in the answer's transaction: reading a tally is a few
    rows whatever the audience size. `option_key` '' never occurs; "no answer yet" is recipients - sum.

    Each counter is split in `TALLY_SHARDS` rows (a person always moves the row `subscriber_id % TALLY_SHARDS`):
    concurrent answers lock different rows instead of queueing on one row's lock until each commit (which
    capped answers at one per commit time); a reader sums the shards."""

    __tablename__ = "response_tallies"

    question_id: Mapped[int] = mapped_column(BigId, ForeignKey("questions.id", ondelete="CASCADE"), primary_key=True)
    option_key: Mapped[str] = mapped_column(String(16), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True, default=0, server_default="0")
    count: Mapped[int] = mapped_column(Integer, default=0)


#: rows per tally counter (see ResponseTally)
TALLY_SHARDS = 16


class EscalationAction(Base):
    """One escalation step taken: per person (re-send on the next channel) or per question (the threshold
    summary to the escalation group, subscriber_id 0). Unique, so a step runs exactly once."""

    __tablename__ = "escalation_actions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    question_id: Mapped[int] = mapped_column(BigId, ForeignKey("questions.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(BigId, default=0)
    step: Mapped[int] = mapped_column(SmallInteger)
    #: resend | summary
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(64))
    broadcast_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("question_id", "subscriber_id", "step", name="ux_escalation_actions_step"),)
