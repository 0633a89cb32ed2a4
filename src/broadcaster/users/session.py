"""The console's view of who is signed in (interface shared by the console and users packages).

STUB: the users package fills this in (server-side sessions behind a signed cookie, idle expiry, CSRF).
The signatures below are the contract the console builds on; keep them.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

#: roles a person can hold (several at once)
ROLES = ("editor", "approver", "admin")


@dataclass(frozen=True)
class ConsoleUser:
    """The person signed in to the console."""

    id: int
    email: str
    name: str
    roles: frozenset[str]
    #: the session's CSRF token: forms carry it as `csrf_token`, fetch() calls as the `X-CSRF-Token` header
    csrf_token: str

    @property
    def actor(self) -> str:
        """The identity recorded and compared by approvals ("user:<id>"), shared with keys the person owns."""
        return f"user:{self.id}"

    def has_role(self, role: str) -> bool:
        return "admin" in self.roles or role in self.roles


class LoginRequired(Exception):
    """Raised by `require_console_user` without a valid session: the app answers with a redirect to
    /console/login?next=<path> for pages (401 JSON for fetch/JSON requests)."""


def console_user(request: Request) -> ConsoleUser | None:
    """The signed-in person of this request (from the session cookie), or None."""
    raise NotImplementedError


def require_console_user(request: Request) -> ConsoleUser:
    """FastAPI dependency for console pages: the signed-in person, or LoginRequired. For unsafe methods it
    also checks the CSRF token (form field `csrf_token` or header `X-CSRF-Token`): 403 naming csrf_token."""
    raise NotImplementedError
