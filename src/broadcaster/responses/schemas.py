"""Request and response schemas of questions and their answers."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from broadcaster.domain import Input
from broadcaster.responses.escalation import EscalationRules
from broadcaster.subscribers import keywords

#: an option label is at most this long (its reply key or keyword is said in front of it)
MAX_LABEL = 40
MAX_KEYWORD = 20
MIN_OPTIONS, MAX_OPTIONS = 2, 5
#: SMS words that keep their meaning whatever is asked (subscribers/keywords.py): never an answer keyword
RESERVED_KEYWORDS = keywords.STOP_WORDS | keywords.HELP_WORDS
_KEY = re.compile(r"[A-Za-z0-9]{1,16}")
_KEYWORD = re.compile(r"[^\W_]{1,20}")


class OptionIn(Input):
    """One answer: `key` is what to reply or press (default "1", "2", ... by position)."""

    key: str | None = Field(None, description='Reply key, 1-16 letters or digits (default: "1".."5" by position).')
    label: str = Field(..., min_length=1, description=f"What the answer means (at most {MAX_LABEL} characters).")
    needs_help: bool = Field(False, description="People choosing it are listed first for the response team.")
    keywords: list[str] = Field(
        default_factory=list, max_length=10, description="Words that also select it in an SMS reply (e.g. SAFE)."
    )

    @field_validator("key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not _KEY.fullmatch(value):
            raise ValueError("key must be 1-16 letters or digits")
        return value.upper()

    @field_validator("label")
    @classmethod
    def _label(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("label must not be blank")
        if len(value) > MAX_LABEL:
            raise ValueError(
                f"label is {len(value)} characters; at most {MAX_LABEL} (the reply key is added in front of it)"
            )
        return value

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, value: list[str]) -> list[str]:
        out: list[str] = []
        for i, word in enumerate(value):
            word = word.strip().upper()
            if not _KEYWORD.fullmatch(word):
                raise ValueError(f"keywords[{i}] must be one word of 1-{MAX_KEYWORD} letters or digits")
            if word in RESERVED_KEYWORDS:
                raise ValueError(f"keywords[{i}] {word!r} is an SMS command (STOP/HELP words always win)")
            out.append(word)
        return list(dict.fromkeys(out))


class QuestionIn(Input):
    """A question with 2-5 answers, e.g. "Are you safe?" with 1 = I'm safe, 2 = I need help."""

    text: str = Field(..., min_length=1, max_length=300)
    options: list[OptionIn] = Field(..., description=f"{MIN_OPTIONS}-{MAX_OPTIONS} answers.")
    escalation: EscalationRules | None = Field(
        None, description="Escalation rules (steps, threshold; docs/escalation.md); none: the category's, if any."
    )

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("text must not be blank")
        return value

    @field_validator("options")
    @classmethod
    def _count(cls, value: list[OptionIn]) -> list[OptionIn]:
        if not MIN_OPTIONS <= len(value) <= MAX_OPTIONS:
            raise ValueError(f"a question needs {MIN_OPTIONS} to {MAX_OPTIONS} options, got {len(value)}")
        return value

    @model_validator(mode="after")
    def _unique(self) -> QuestionIn:
        seen: dict[str, int] = {}
        for i, option in enumerate(self.options):
            if option.key is None:
                option.key = str(i + 1)
            for word in [option.key, *option.keywords]:
                if word in seen and seen[word] != i:
                    raise ValueError(f"options[{i}]: {word!r} already selects options[{seen[word]}]")
                seen[word] = i
        return self

    def stored_options(self) -> list[dict[str, Any]]:
        return [
            {"key": o.key, "label": o.label, "keywords": o.keywords, "needs_help": o.needs_help} for o in self.options
        ]


class OptionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key: str
    label: str
    keywords: list[str] = Field(default_factory=list)
    needs_help: bool = False


class QuestionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    update_id: int
    text: str
    options: list[OptionOut]
    escalation: dict[str, Any] | None = Field(description="The question's own rules (None: its category's).")
    escalation_applied: dict[str, Any] | None = Field(
        None,
        description="The escalation that runs: the effective rules taken when the update was published (what its "
        "approval covered; {} none). None while a draft. Later routing-map edits do not change it.",
    )
    state: str = Field(description="draft (update not published) | open | closed")
    opened_at: datetime | None
    closed_at: datetime | None
    closed_by: str | None
    recipients: int


class OptionCount(BaseModel):
    key: str
    label: str
    needs_help: bool
    count: int
    by_channel: dict[str, int]


class SegmentCount(BaseModel):
    segment: str = Field(description="category | tag | area")
    value: str
    recipients: int
    answered: int
    by_option: dict[str, int]


class PersonOut(BaseModel):
    subscriber_id: int
    name: str
    phone: str | None
    email: str | None
    option_key: str | None
    needs_help: bool
    answer_channel: str | None
    answered_at: datetime | None


class ResponseOut(BaseModel):
    id: int
    question_id: int | None
    subscriber_id: int | None
    channel: str
    address: str
    body: str
    option_key: str | None
    counted: bool
    received_at: datetime


class FreeTextReplyOut(ResponseOut):
    """A reply that chose no option, with whether a person should read it (responses.distress) and how to reach
    the person who sent it."""

    needs_a_person: bool = Field(description="It says the person is in danger or asks for help (any language).")
    terms: list[str] = Field(description="The distress words or phrases found in it.")
    name: str = ""
    phone: str | None = None
    email: str | None = None
    current_answer: str | None = Field(None, description="The option the person chose since (or before), if any.")


class ResponsesOut(BaseModel):
    """Live tallies of a question."""

    update_id: int
    question: QuestionOut
    recipients: int
    answered: int
    no_answer_yet: int = Field(description="recipients - answered")
    options: list[OptionCount]
    by_channel: dict[str, int]
    segments: list[SegmentCount]
    unrecognised: int = Field(description="Replies matched to this question that chose no option.")
    people: list[PersonOut] = Field(description="Who answered, needs-help answers first (paged).")
    next_cursor: str | None = None


class AnswerIn(Input):
    """An answer given with a signed link (email button, webhook response URL)."""

    option: str = Field(..., min_length=1, max_length=16, description="The option's key.")
    respondent: str = Field("", max_length=320, description="Who answers (e.g. a chat user); shown as is.")
    event_id: str | None = Field(
        None, min_length=1, max_length=160, description="Your id of this answer: a retry with it is stored once."
    )
