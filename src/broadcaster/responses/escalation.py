"""Escalation rules of a question: their schema (422 naming the field), quiet hours, and who a step reaches.

Rules are set on the question (`Question.escalation`) or taken from its category (`Category.escalation`, set
in the routing map): `effective_rules`. Publishing the update takes a snapshot of them
(`Question.escalation_applied`, what its approval covered) and the runner reads only that (`rules_for`), so a
later edit of the routing map changes nothing for a question already published. Rules look like::

    {"steps": [{"after_minutes": 10, "channel": "voice"}, {"after_minutes": 20, "channel": "secondary"}],
     "threshold": {"percent": 60, "after_minutes": 30, "group": {"emails": ["ops@example.org"], "tag": "managers"}},
     "respect_quiet_hours": true}

- A step's delay counts from the previous step (the first from the moment the question opened): "if no
  answer within N minutes, re-send on the next channel". `after_seconds` may be given instead of
  `after_minutes` (short delays for drills and tests); exactly one of the two.
- A step's `channel` is a routing-map channel name of a person's channel (sms, voice, email, or an adapter
  of those kinds such as `twilio-voice`) or `secondary`: the person's address on a channel kind the question
  has not used for them yet (email first, then sms, then voice), so someone first asked by SMS gets an
  email. A person with no address on the step's channel is skipped for that step (recorded, not sent).
- The threshold fires once per question: if fewer than `percent` % of the people asked answered within its
  delay, the escalation group (fixed addresses and/or subscribers carrying a tag) gets one summary listing
  who has not answered.
- Quiet hours (settings QUIET_HOURS, QUIET_HOURS_TIMEZONE) hold back the steps and the summary of a
  non-critical update's question until they end; critical updates ignore them, and so does a question whose
  rules say `"respect_quiet_hours": false`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from broadcaster.domain import SUBSCRIBER_KINDS, ChannelKind, normalize_phone, validate_slug
from broadcaster.errors import Unprocessable, field_name

#: a step's channel meaning "the person's other address" (see the module docstring)
SECONDARY = "secondary"
#: order in which `secondary` picks a channel kind the person was not asked on yet
SECONDARY_ORDER = (ChannelKind.email, ChannelKind.sms, ChannelKind.voice)
MAX_STEPS = 5
MAX_GROUP_ADDRESSES = 50
#: the longest delay of a step or of the threshold (one week)
MAX_DELAY = timedelta(days=7)


class _Shape(BaseModel):
    """Unknown fields refused; unset optional fields left out when shown or stored."""

    model_config = ConfigDict(extra="forbid")

    @model_serializer(mode="wrap")
    def _without_nulls(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        return {k: v for k, v in data.items() if v is not None} if isinstance(data, dict) else data


class _Rule(_Shape):
    after_minutes: float | None = Field(None, gt=0, description="Delay in minutes (or give `after_seconds`).")
    after_seconds: float | None = Field(None, gt=0, description="Delay in seconds (drills and tests).")

    @model_validator(mode="after")
    def _one_delay(self) -> _Rule:
        if (self.after_minutes is None) == (self.after_seconds is None):
            raise ValueError("give exactly one of after_minutes and after_seconds")
        if self.delay > MAX_DELAY:
            raise ValueError("the delay must be at most 7 days (10080 minutes)")
        return self

    @property
    def delay(self) -> timedelta:
        if self.after_seconds is not None:
            return timedelta(seconds=self.after_seconds)
        return timedelta(minutes=self.after_minutes or 0)


class EscalationStep(_Rule):
    """Re-send the question to everyone who has not answered, on `channel`."""

    channel: str = Field(..., max_length=64, examples=["voice", "secondary"])

    @field_validator("channel")
    @classmethod
    def _person_channel(cls, value: str) -> str:
        if value == SECONDARY:
            return value
        from broadcaster.channels.registry import kind_of, known_channel_names

        if value not in known_channel_names():
            raise ValueError(f"unknown channel {value!r}; a person's channel (sms, voice, email) or 'secondary'")
        if kind_of(value) not in SUBSCRIBER_KINDS:
            raise ValueError(f"channel {value!r} does not reach a person; use sms, voice, email or 'secondary'")
        return value


class EscalationGroup(_Shape):
    """Who gets the threshold summary: fixed addresses and/or the subscribers carrying `tag`."""

    emails: list[EmailStr] = Field(default_factory=list, max_length=MAX_GROUP_ADDRESSES)
    phones: list[str] = Field(default_factory=list, max_length=MAX_GROUP_ADDRESSES)
    tag: str | None = Field(None, max_length=64, examples=["managers"])

    @field_validator("phones")
    @classmethod
    def _phones(cls, value: list[str]) -> list[str]:
        return [normalize_phone(p) for p in value]

    @field_validator("tag")
    @classmethod
    def _tag(cls, value: str | None) -> str | None:
        return validate_slug(value) if value is not None else None

    @model_validator(mode="after")
    def _someone(self) -> EscalationGroup:
        if not (self.emails or self.phones or self.tag):
            raise ValueError("the group needs at least one of emails, phones or tag")
        return self


class EscalationThreshold(_Rule):
    """If fewer than `percent` % answered within the delay, notify `group` once."""

    percent: float = Field(..., gt=0, le=100)
    group: EscalationGroup


class EscalationRules(_Shape):
    """A question's escalation rules (also a category's default, in the routing map)."""

    steps: list[EscalationStep] = Field(default_factory=list, max_length=MAX_STEPS)
    threshold: EscalationThreshold | None = None
    respect_quiet_hours: bool = Field(True, description="Hold steps inside quiet hours (non-critical updates).")

    def stored(self) -> dict[str, Any]:
        """The JSON kept in `Question.escalation` / `Category.escalation`."""
        return self.model_dump(mode="json")


def parse_rules(data: Any, field: str = "escalation") -> EscalationRules:
    """Validate rules given as plain data; a 422 naming the first bad field (e.g. `escalation.steps.0.channel`)."""
    try:
        return EscalationRules.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = field_name([field, *err["loc"]]) or field
        raise Unprocessable(f"{name}: {err['msg']}", field=name) from None


def effective_rules(question: Any, category: Any) -> tuple[str, dict[str, Any]] | None:
    """(source, stored rules) of the escalation that would run for `question` in `category`: the snapshot taken
    at publication ("published"), else its own rules ("question"), else the category's ("category"); None when
    nothing escalates."""
    applied = getattr(question, "escalation_applied", None)
    if applied is not None:
        return ("published", applied) if applied else None
    if question.escalation is not None:
        return "question", question.escalation
    raw = getattr(category, "escalation", None)
    return ("category", raw) if raw else None


def applied_rules(question: Any, category: Any) -> dict[str, Any]:
    """The snapshot publishing takes (`Question.escalation_applied`): the question's rules, else its
    category's, as they are now; {} when nothing escalates."""
    effective = effective_rules(question, category)
    return dict(effective[1]) if effective is not None else {}


def rules_for(question: Any) -> EscalationRules | None:
    """The rules that run for a published question: the snapshot its publication took (`escalation_applied`,
    what the approval covered). A question opened without one (written outside publishing) runs only its own
    rules: the routing map is never read at run time."""
    raw = question.escalation_applied
    if raw is None:
        raw = question.escalation
    if not raw:
        return None
    try:
        return EscalationRules.model_validate(raw)
    except ValidationError:  # stored before a channel was removed, say: escalate nothing rather than crash
        return None
