"""The deliberate confirmation of a critical send (issue 21): whoever makes a critical update go live (the approver,
or the publisher when no approval is needed) types the incident's title, having read the send summary.

The console asks for it in a box before the button enables; the API asks for the same `confirm` field on
`POST /v1/updates/{id}/approve` and `POST /v1/updates/{id}/publish`, so a script cannot skip it either (an ops
script confirms with the title it created the incident with). Test sends are not asked.
"""

from __future__ import annotations

from pydantic import Field

from broadcaster.domain import Input, Severity
from broadcaster.errors import Unprocessable
from broadcaster.models import Update


class ConfirmIn(Input):
    """The optional body of approve and publish."""

    confirm: str | None = Field(
        None,
        max_length=300,
        description="Required when the update is critical (and not a test): the incident's title, typed by whoever "
        "reviewed the send summary (case and extra spaces do not matter). Missing or different: 422 naming "
        "`confirm`.",
    )


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def needed(update: Update) -> bool:
    """Whether making `update` go live needs the typed confirmation: a live send of a critical incident."""
    return not update.test and update.incident.severity == Severity.critical.value


def check(update: Update, confirm: str | None) -> None:
    """422 (`confirm`) when a critical live send is not confirmed with the incident's title."""
    if not needed(update):
        return
    title = update.incident.title
    if confirm is None or not confirm.strip():
        raise Unprocessable(
            "This is a critical send: type the incident's title in `confirm` to show you checked who it reaches "
            f"(expected: {title!r}).",
            field="confirm",
            code="confirm_required",
        )
    if _norm(confirm) != _norm(title):
        raise Unprocessable(
            f"`confirm` does not match the incident's title: type {title!r} to send this critical update.",
            field="confirm",
            code="confirm_mismatch",
        )
