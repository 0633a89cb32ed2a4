"""Assertions shared by the core tests."""

from __future__ import annotations

from typing import Any


def row_counts() -> dict[str, int]:
    """Rows per table in the current test database (to prove a failed request wrote nothing)."""
    from sqlalchemy import func, select

    from broadcaster.db import session_scope
    from broadcaster.models import Base

    with session_scope() as session:
        return {t.name: session.scalar(select(func.count()).select_from(t)) or 0 for t in Base.metadata.sorted_tables}


def assert_error(resp: Any, status: int, code: str | None = None, field: str | None = None) -> dict:
    """The response is the one error shape with this status (and code / field when given)."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert {"error", "detail", "field"} <= set(body), body
    assert isinstance(body["error"], str) and body["detail"]
    if code is not None:
        assert body["error"] == code, body
    if field is not None:
        assert body["field"] == field, body
    return body


def approve_map_change(client: Any, proposal: Any, approver: dict[str, str]) -> dict:
    """A routing-map change that loosens safety answered 202 (a proposal): a second person approves it with its
    ETag; returns the applied version."""
    assert proposal.status_code == 202, proposal.text
    number, etag = proposal.json()["number"], proposal.headers["ETag"]
    resp = client.post(f"/v1/routing-map/versions/{number}/approve", headers=approver | {"If-Match": etag})
    assert resp.status_code == 200, resp.text
    assert resp.json()["state"] == "applied"
    return dict(resp.json())
