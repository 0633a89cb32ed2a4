"""The read/write skeleton of a resource addressed by its slug (services, categories, areas).

`get_by_slug` finds a row by slug with the error the API promises: 404 when the slug is the addressed
resource, 422 naming the field when another resource names it. `SlugResource` turns rows into their response
model and audits the writes the same way for each resource: `<kind>.create` with the new state,
`<kind>.update` with the fields that changed, `<kind>.delete` with the state before, target `<kind>`/slug.
The feature keeps its own rules (validation, conflicts) in its service and passes them in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from fastapi import Response, status
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.errors import NotFound, Unprocessable

Row = TypeVar("Row")
Out = TypeVar("Out", bound=BaseModel)


def get_by_slug(session: Session, model: type[Row], slug: str, *, noun: str, field: str = "slug") -> Row:
    """The `model` row with this slug: 404 when it is the addressed resource (`field="slug"`), else 422 naming
    `field`; the error's code is `unknown_<noun>`."""
    row = session.scalar(select(model).filter_by(slug=slug))
    if row is None:
        error = NotFound if field == "slug" else Unprocessable
        raise error(f"Unknown {noun} {slug!r}.", field=field, code=f"unknown_{noun}")
    return row


def json_snapshot(out: BaseModel) -> dict[str, Any]:
    """A response model as the audit log keeps it (JSON values)."""
    return out.model_dump(mode="json")


@dataclass(frozen=True)
class SlugResource(Generic[Row, Out]):
    """One slug-addressed resource: how to find a row, show it, and snapshot it for the audit log."""

    #: the audit target type and action prefix ("service" gives service.create / .update / .delete)
    kind: str
    #: the row by slug (404 when missing), e.g. `service.get_service`
    get: Callable[[Session, str], Row]
    #: a row as the API answers it
    present: Callable[[Row], Out]
    #: what the audit log keeps of an answer (default: all of it, as JSON)
    snapshot: Callable[[Out], dict[str, Any]] = field(default=json_snapshot)

    def present_all(self, rows: Iterable[Row]) -> list[Out]:
        """Each row as the API answers it."""
        return [self.present(r) for r in rows]

    def read(self, session: Session, slug: str) -> Out:
        """The row `slug` as the API answers it (404 when missing)."""
        return self.present(self.get(session, slug))

    def snapshot_of(self, session: Session, slug: str) -> dict[str, Any]:
        """The audit snapshot of the row `slug` now (take it before a change)."""
        return self.snapshot(self.read(session, slug))

    def created(self, session: Session, actor: str, row: Row, slug: str) -> Out:
        """Audit `<kind>.create` of the new `row` (its whole state as `after`); returns its answer."""
        out = self.present(row)
        audit.record(session, actor, f"{self.kind}.create", self.kind, slug, after=self.snapshot(out))
        return out

    def updated(
        self,
        session: Session,
        actor: str,
        slug: str,
        row: Row,
        *,
        before: dict[str, Any],
        body: BaseModel,
        **detail: Any,
    ) -> Out:
        """Audit `<kind>.update`: the fields that changed from `before` (`snapshot_of` taken before the change),
        the fields the request set, and `detail`; returns the updated row's answer."""
        out = self.present(row)
        audit.record_change(
            session,
            actor,
            f"{self.kind}.update",
            self.kind,
            slug,
            before=before,
            after=self.snapshot(out),
            fields=sorted(body.model_fields_set),
            **detail,
        )
        return out

    def delete(self, session: Session, actor: str, slug: str, delete: Callable[[Session, str], None]) -> Response:
        """Snapshot the row, `delete(session, slug)` (the feature's own checks: 404, 409), audit `<kind>.delete`
        with the state before; the 204 answer."""
        before = self.snapshot_of(session, slug)
        delete(session, slug)
        audit.record(session, actor, f"{self.kind}.delete", self.kind, slug, before=before)
        return Response(status_code=status.HTTP_204_NO_CONTENT)
