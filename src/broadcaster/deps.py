"""FastAPI dependencies shared by every router."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from broadcaster.db import session_scope
from broadcaster.errors import Unprocessable


def _session() -> Iterator[Session]:
    with session_scope() as session:
        yield session


#: A request-scoped session committed when the endpoint function returns (before the response is
#: sent) and rolled back on any error. Services take a session and never commit, so a failing request
#: writes nothing. Endpoints convert ORM rows to schemas before returning.
SessionDep = Annotated[Session, Depends(_session, scope="function")]
get_session = _session


async def _raw_body(request: Request) -> bytes:
    return await request.body()


#: The raw request body, read on the event loop by an async dependency, so that an endpoint which parses
#: the body itself can still be a plain `def`: FastAPI runs those in its thread pool, and database work
#: must never run on the event loop (a wait for SQLite's write lock there froze every request).
RawBody = Annotated[bytes, Depends(_raw_body)]


def no_nul_in_parameters(request: Request) -> None:
    """Refuse NUL characters in path and query parameters with a 422 naming the parameter (PostgreSQL cannot
    compare or store them: they would otherwise fail in the database, unnamed, on that backend only)."""
    for name, value in [*request.path_params.items(), *request.query_params.multi_items()]:
        if "\x00" in name or "\x00" in str(value):
            raise Unprocessable(f"{name}: must not contain NUL characters", field=name.replace("\x00", "") or '""')
