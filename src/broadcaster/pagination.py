"""Keyset pagination: `?limit=&cursor=` where the cursor is the last id seen (newest first)."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Path, Query
from pydantic import BaseModel

T = TypeVar("T")

#: Largest id a BIGINT (and SQLite INTEGER) holds; bigger ids in paths or bodies are rejected with 422.
MAX_ID = 2**63 - 1
#: A numeric id in a URL path: 422 (not a database overflow) when out of range.
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class PageParams(BaseModel):
    limit: int = 50
    cursor: int | None = None


def page_params(
    limit: Annotated[int, Query(ge=1, le=500, description="Items per page (1-500).")] = 50,
    cursor: Annotated[
        str | None, Query(pattern=r"^\d{1,19}$", description="`next_cursor` from the previous page.")
    ] = None,
) -> PageParams:
    if cursor is not None and int(cursor) > MAX_ID:
        from broadcaster.errors import Unprocessable

        raise Unprocessable("cursor is out of range; pass the next_cursor of the previous page.", field="cursor")
    return PageParams(limit=limit, cursor=int(cursor) if cursor else None)
