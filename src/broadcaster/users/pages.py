"""Console sign-in and sign-out pages: GET/POST /console/login, POST /console/logout.

The sign-in form carries its own CSRF token (double submit: a short-lived cookie and the form field must
match), so another site cannot sign a browser in to an account of its choosing. Attempts are rate limited
per account and per client IP (`limits`, RATE_LIMIT_STORAGE_URI); failed ones are audited. The message never
says whether the account exists.
"""

from __future__ import annotations

import hmac
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from broadcaster import audit, doors, throttle
from broadcaster.deps import SessionDep
from broadcaster.sessions import (
    COOKIE_NAME,
    clear_session_cookie,
    console_user,
    csrf_refused,
    csrf_valid,
    end_session,
    resolve,
    secure_cookies,
    set_session_cookie,
    start_session,
)
from broadcaster.settings import get_settings
from broadcaster.users import service

router = APIRouter(tags=["console sign-in"], include_in_schema=False)

LOGIN_CSRF_COOKIE = "broadcaster_login_csrf"
DEFAULT_NEXT = "/console/"
GENERIC_ERROR = "The email or password is incorrect, or the account cannot sign in."
_CONSOLE_CSS = Path(__file__).resolve().parents[1] / "console" / "static" / "console.css"


@lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(
        loader=PackageLoader("broadcaster.users", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )


def safe_next(value: str | None) -> str:
    """A same-site path to go to after sign-in; anything else (another host, a scheme, `//x`, `/\\x`,
    control characters) is replaced by the console's home."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return DEFAULT_NEXT
    if any(ord(c) < 0x20 or c == "\\" for c in value) or len(value) > 2000:
        return DEFAULT_NEXT
    return value


#: messages of /console/login?error=... (set by the SSO callback, users/oidc.py)
LOGIN_ERRORS = {
    "sso": "Single sign-on did not complete; try again or sign in with your password.",
    "sso_link": (
        "Single sign-on was not linked to the existing account with your email address: Broadcaster links "
        "them only when your sign-in provider confirms the address is verified and an administrator allows "
        "linking by email. Sign in with your password, or ask an administrator."
    ),
}


def oidc_enabled() -> bool:
    settings = get_settings()
    return bool(settings.oidc_issuer and settings.oidc_client_id)


def render_login(
    request: Request, *, next_path: str, error: str = "", email: str = "", status_code: int = 200
) -> HTMLResponse:
    """The sign-in page (with a fresh or the current login CSRF cookie)."""
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    settings = get_settings()
    context: dict[str, Any] = {
        "org_name": settings.org_name,
        "next": next_path,
        "error": error,
        "email": email,
        "csrf_token": token,
        "oidc_name": settings.oidc_provider_name if oidc_enabled() else "",
        "console_css": _CONSOLE_CSS.exists(),
    }
    html = _env().get_template("login.html").render(**context)
    response = HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        path="/console/",
        httponly=True,
        samesite="lax",
        secure=secure_cookies(),
    )
    return response


@router.get("/console/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None, error: str | None = None) -> Response:
    target = safe_next(next)
    if console_user(request) is not None:
        return RedirectResponse(target, status_code=303)
    message = LOGIN_ERRORS.get(error or "", "")
    return render_login(request, next_path=target, error=message)


@router.post("/console/login", response_class=HTMLResponse, openapi_extra=doors.not_a_door("signs a person in"))
def login_submit(
    request: Request,
    session: SessionDep,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=service.MAX_PASSWORD)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    target = safe_next(next)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf_token.encode(), expected.encode()):
        return render_login(
            request,
            next_path=target,
            email=email,
            error="The sign-in form expired; please try again.",
            status_code=403,
        )
    settings = get_settings()
    ip = throttle.client_ip(request)
    normalized = service.normalize_email(email)
    limiter = throttle.limiter()
    waits = [
        throttle.hit_ip(settings.login_rate_limit_ip, "login-ip", ip),
        limiter.hit(throttle.parsed_limits(settings.login_rate_limit_account), "login-account", normalized or "-"),
    ]
    wait = max((w for w in waits if w is not None), default=None)
    if wait is not None:
        response = render_login(
            request,
            next_path=target,
            email=email,
            error=f"Too many sign-in attempts. Try again in {wait} seconds.",
            status_code=429,
        )
        response.headers["Retry-After"] = str(wait)
        return response
    user = service.by_email(session, normalized) if normalized and "\x00" not in normalized else None
    if not service.verify_password(user, password):
        audit.record(
            session,
            f"ip:{ip}",
            "user.login_failed",
            "user",
            user.id if user is not None else "-",
            email=normalized[:254],
            method="password",
        )
        return render_login(request, next_path=target, email=email, error=GENERIC_ERROR, status_code=401)
    assert user is not None
    service.rehash_if_needed(user, password)
    return signed_in(request, session, user, target, method="password")


def signed_in(request: Request, session: SessionDep, user: Any, target: str, *, method: str) -> Response:
    """Start a session for `user` (ending the browser's previous one) and redirect to `target`."""
    end_session(session, request.cookies.get(COOKIE_NAME))
    cookie = start_session(session, user)
    ip = throttle.client_ip(request)
    audit.record(session, f"user:{user.id}", "user.login", "user", user.id, method=method, ip=ip)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, cookie)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/console/")
    return response


@router.post("/console/logout", openapi_extra=doors.not_a_door("signs a person out"))
def logout(request: Request, session: SessionDep) -> Response:
    """Sign out: the session's row is deleted and the cookie cleared. Needs the session's CSRF token."""
    cookie = request.cookies.get(COOKIE_NAME)
    user = resolve(session, cookie)
    if user is not None:
        if not csrf_valid(request, user.csrf_token):
            raise csrf_refused()
        audit.record(session, user.actor, "user.logout", "user", user.id)
    end_session(session, cookie)
    response = RedirectResponse("/console/login", status_code=303)
    clear_session_cookie(response)
    return response


async def login_required(request: Request, exc: Exception) -> Response:
    """`LoginRequired`: pages (the browser accepts HTML) are sent to the sign-in page with `next` set to where
    they were going; fetch/JSON callers get 401 in the one error shape."""
    from urllib.parse import quote, urlsplit

    from broadcaster.errors import error_response

    if "text/html" in request.headers.get("accept", ""):
        if request.method == "GET":
            path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        else:  # a form posted after the session ended: back to the page it was posted from
            path = urlsplit(request.headers.get("referer", "")).path
        target = safe_next(path)
        return RedirectResponse(f"/console/login?next={quote(target, safe='/')}", status_code=303)
    return error_response(401, "login_required", "Sign in to the console first.", field=COOKIE_NAME)
