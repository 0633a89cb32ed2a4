"""Keyset pagination: `?limit=&cursor=` where the cursor is the last id seen (newest first)."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

T = TypeVar("T")


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
    return PageParams(limit=limit, cursor=int(cursor) if cursor else None)
