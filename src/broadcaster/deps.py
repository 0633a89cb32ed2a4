"""FastAPI dependencies shared by every router."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends
from sqlalchemy.orm import Session

from broadcaster.db import session_scope


def _session() -> Iterator[Session]:
    with session_scope() as session:
        yield session


#: A request-scoped session committed when the endpoint function returns (before the response is
#: sent) and rolled back on any error. Services take a session and never commit, so a failing request
#: writes nothing. Endpoints convert ORM rows to schemas before returning.
SessionDep = Annotated[Session, Depends(_session, scope="function")]
get_session = _session
