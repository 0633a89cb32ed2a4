"""Request and response schemas of `/v1/users`."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from broadcaster.domain import Input

Role = Literal["editor", "approver", "admin"]


class UserIn(Input):
    email: EmailStr = Field(..., max_length=254)
    name: str = Field("", max_length=200)
    roles: list[Role] = Field(default_factory=list, description="Any of editor, approver, admin.")
    password: str | None = Field(
        None,
        min_length=10,
        max_length=1024,
        description="Leave out for a person who signs in only through single sign-on.",
    )


class UserPatch(Input):
    name: str | None = Field(None, max_length=200)
    roles: list[Role] | None = None
    active: bool | None = Field(None, description="false deactivates: no sign-in, sessions end, owned keys stop.")
    password: str | None = Field(None, min_length=10, max_length=1024)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    name: str
    roles: list[str]
    active: bool
    has_password: bool
    sso_issuer: str | None
    created_at: datetime
    last_login_at: datetime | None
