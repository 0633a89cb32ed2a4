"""OpenID Connect single sign-on with Authlib's Starlette client: /console/oidc/login and /console/oidc/callback.

Authlib reads the provider's discovery document (OIDC_ISSUER), sends the browser to the provider with a
random `state`, a `nonce` and a PKCE S256 challenge, and at the callback checks the state, exchanges the code
with the PKCE verifier and validates the ID token (RS256 signature from the provider's JWKS, `iss`, `aud`,
expiry, `nonce`). The flow's data (state, nonce, verifier, where to go next) lives in a short-lived cookie
signed with SECRET_KEY, bound to this browser: no server-wide session middleware is needed.

The account: matched by (issuer, subject). A new identity whose email belongs to an account is linked to it
only when OIDC_LINK_BY_EMAIL trusts the issuer for that and the ID token says `email_verified: true`;
otherwise it is refused (`LinkRefused`, audited as `user.sso_link_refused`): an identity that merely claims
an admin's address must not become the admin. An identity whose email has no account is created when
OIDC_AUTO_CREATE is on. When OIDC_ROLE_MAP is set, the person's roles are set from OIDC_ROLES_CLAIM at each
sign-in (a person left with no role cannot sign in); without it, roles are managed in Broadcaster.
"""

from __future__ import annotations

import logging
import warnings
from functools import lru_cache
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

with warnings.catch_warnings():
    # Authlib 1.9's Starlette client imports its httpx integration, which warns at import that it will move to
    # an "httpx2" module that this release does not ship: nothing to act on, and every start printed it
    import authlib.deprecate  # noqa: F401  (importing it sets Authlib's own warnings to "always": then ours)

    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.base_client import OAuthError
    from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App

from broadcaster import audit, throttle
from broadcaster.db import session_scope
from broadcaster.errors import Conflict
from broadcaster.models import ConsoleSession, User
from broadcaster.sessions import (
    COOKIE_NAME,
    ROLE_SCOPES,
    end_session,
    secure_cookies,
    set_session_cookie,
    start_session,
)
from broadcaster.settings import Settings, get_settings
from broadcaster.users import grants, service
from broadcaster.users.pages import oidc_enabled, safe_next

log = logging.getLogger(__name__)
router = APIRouter(tags=["console sign-in"], include_in_schema=False)

FLOW_COOKIE = "broadcaster_oidc"
#: seconds the person has to finish signing in at the provider
FLOW_MAX_AGE = 600
CALLBACK_PATH = "/console/oidc/callback"


class SignInRefused(Exception):
    """The provider signed the person in, but Broadcaster does not let them in (reason for the audit log)."""

    #: the sign-in page's message (`/console/login?error=<login_error>`, users/pages.py)
    login_error = "sso"


class LinkRefused(SignInRefused):
    """A new SSO identity whose email belongs to the account `account_id` may not be linked to it."""

    login_error = "sso_link"

    def __init__(self, reason: str, account_id: int) -> None:
        super().__init__(reason)
        self.account_id = account_id


def link_refusal(claims: dict[str, Any], settings: Settings) -> str | None:
    """Why a new SSO identity may not be linked to the existing account with its email (None: it may).
    Linking needs the issuer trusted for it (OIDC_LINK_BY_EMAIL) and `email_verified` exactly JSON true."""
    if not settings.oidc_link_by_email:
        return "linking by email is off (OIDC_LINK_BY_EMAIL)"
    if "email_verified" not in claims:
        return "the ID token has no email_verified claim"
    verified = claims["email_verified"]
    if verified is not True:
        return f"email_verified is {str(verified)[:20]!r}, not true"
    return None


@lru_cache(maxsize=4)
def _client(issuer: str, client_id: str, secret: str, timeout: float) -> StarletteOAuth2App:
    oauth = OAuth()
    oauth.register(
        name="oidc",
        client_id=client_id,
        client_secret=secret or None,
        server_metadata_url=issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs={"scope": "openid email profile", "code_challenge_method": "S256", "timeout": timeout},
    )
    client = oauth.create_client("oidc")
    assert isinstance(client, StarletteOAuth2App)
    return client


def client(settings: Settings | None = None) -> StarletteOAuth2App:
    settings = settings or get_settings()
    secret = settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else ""
    return _client(settings.oidc_issuer, settings.oidc_client_id, secret, settings.provider_timeout_seconds)


def _serializer() -> URLSafeTimedSerializer:
    from broadcaster.signing import secret_key

    return URLSafeTimedSerializer(secret_key(), salt="broadcaster.oidc-flow")


def role_map(settings: Settings) -> dict[str, set[str]]:
    """OIDC_ROLE_MAP as {group: {roles}} (entries that are not `group:role` with a known role are ignored)."""
    out: dict[str, set[str]] = {}
    for item in settings.oidc_role_map:
        group, sep, role = item.rpartition(":")
        role = role.strip().lower()
        if sep and group.strip() and role in ROLE_SCOPES:
            out.setdefault(group.strip(), set()).add(role)
    return out


def roles_from_claims(claims: dict[str, Any], settings: Settings) -> list[str]:
    raw = claims.get(settings.oidc_roles_claim) or []
    groups = [raw] if isinstance(raw, str) else [str(g) for g in raw] if isinstance(raw, list) else []
    mapping = role_map(settings)
    roles: set[str] = set()
    for group in groups:
        roles |= mapping.get(group, set())
    return service.parse_roles(sorted(roles))


def roles_from_userinfo(id_claims: dict[str, Any], userinfo: dict[str, Any]) -> Any:
    """The roles claim from the UserInfo response, when the ID token does not carry it. Only that claim is taken:
    who the person is (`sub`, `email`, `email_verified`) comes from the signed ID token alone. OpenID Connect
    Core 5.3.2: a UserInfo response whose `sub` is not the ID token's must not be used (ValueError)."""
    if str(userinfo.get("sub")) != str(id_claims.get("sub")):
        raise ValueError("the UserInfo response is for another subject")
    return userinfo.get(get_settings().oidc_roles_claim)


def _back_to_login(next_path: str, error: str = "sso") -> RedirectResponse:
    from urllib.parse import quote

    location = f"/console/login?error={error}&next={quote(next_path, safe='/')}"
    response = RedirectResponse(location, status_code=303)
    response.delete_cookie(FLOW_COOKIE, path="/console/oidc/")
    return response


@router.get("/console/oidc/login")
async def oidc_login(request: Request, next: str | None = None) -> Response:
    """Send the browser to the provider (state, nonce and PKCE challenge made and remembered by Authlib)."""
    target = safe_next(next)
    if not oidc_enabled():
        return _back_to_login(target)
    redirect_uri = get_settings().public_url.rstrip("/") + CALLBACK_PATH
    flow: dict[str, Any] = {}
    request.scope["session"] = flow  # Authlib keeps its state data in `request.session`
    try:
        response = await client().authorize_redirect(request, redirect_uri)
    except (OAuthError, OSError, ValueError) as exc:
        log.warning("OpenID provider unavailable: %s", type(exc).__name__)
        return _back_to_login(target)
    flow["next"] = target
    response.set_cookie(
        FLOW_COOKIE,
        _serializer().dumps(flow),
        max_age=FLOW_MAX_AGE,
        path="/console/oidc/",
        httponly=True,
        samesite="lax",
        secure=secure_cookies(),
    )
    return response


@router.get(CALLBACK_PATH)
async def oidc_callback(request: Request) -> Response:
    """Check state, nonce and PKCE (Authlib), find or create the person, start a console session."""
    try:
        flow = _serializer().loads(request.cookies.get(FLOW_COOKIE, ""), max_age=FLOW_MAX_AGE)
    except BadSignature:
        flow = None
    if not isinstance(flow, dict):
        await anyio.to_thread.run_sync(_audit_failure, request, "missing or expired sign-in flow", None)
        return _back_to_login("/console/")
    target = safe_next(flow.pop("next", None))
    request.scope["session"] = flow
    try:
        token = await client().authorize_access_token(request)
        claims = dict(token.get("userinfo") or {})
        settings = get_settings()
        if settings.oidc_role_map and settings.oidc_roles_claim not in claims:
            claims[settings.oidc_roles_claim] = roles_from_userinfo(claims, await client().userinfo(token=token))
    except (OAuthError, OSError, ValueError, KeyError) as exc:
        reason = getattr(exc, "error", None) or type(exc).__name__
        await anyio.to_thread.run_sync(_audit_failure, request, f"provider: {reason}", None)
        return _back_to_login(target)
    try:
        cookie = await anyio.to_thread.run_sync(_sign_in, request, claims)
    except LinkRefused as exc:
        await anyio.to_thread.run_sync(_audit_link_refused, request, exc, claims)
        return _back_to_login(target, exc.login_error)
    except SignInRefused as exc:
        await anyio.to_thread.run_sync(_audit_failure, request, str(exc), claims.get("email"))
        return _back_to_login(target, exc.login_error)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, cookie)
    response.delete_cookie(FLOW_COOKIE, path="/console/oidc/")
    return response


def _audit_failure(request: Request, reason: str, email: object) -> None:
    with session_scope() as session:
        audit.record(
            session,
            f"ip:{throttle.client_ip(request)}",
            "user.login_failed",
            "user",
            "-",
            method="sso",
            reason=reason[:200],
            email=str(email or "")[:254],
        )


def _audit_link_refused(request: Request, exc: LinkRefused, claims: dict[str, Any]) -> None:
    """`user.sso_link_refused` on the account the identity claimed: which identity (issuer, subject, email,
    email_verified as sent), from where, and why."""
    verified = claims.get("email_verified", "(missing)")
    with session_scope() as session:
        audit.record(
            session,
            f"ip:{throttle.client_ip(request)}",
            "user.sso_link_refused",
            "user",
            exc.account_id,
            reason=str(exc)[:200],
            issuer=str(claims.get("iss") or get_settings().oidc_issuer)[:300],
            subject=str(claims.get("sub") or "")[:255],
            email=str(claims.get("email") or "")[:254],
            email_verified=verified if isinstance(verified, bool) else str(verified)[:20],
        )


def _sign_in(request: Request, claims: dict[str, Any]) -> str:
    """Find, link or create the person of verified `claims`, refresh their roles; the new session cookie."""
    settings = get_settings()
    issuer, subject = str(claims.get("iss") or settings.oidc_issuer), str(claims.get("sub") or "")
    email = service.normalize_email(str(claims.get("email") or ""))
    if not subject:
        raise SignInRefused("no subject in the ID token")
    with session_scope() as session:
        user = session.scalar(select(User).where(User.oidc_issuer == issuer, User.oidc_subject == subject))
        if user is None and email:
            # a new identity with the email of an account: linked only when trusted and verified (else an
            # identity that merely claims an admin's address would sign in as the admin)
            user = service.by_email(session, email)
            if user is not None:
                if user.oidc_subject is not None:
                    raise LinkRefused("the email belongs to another single sign-on identity", user.id)
                why = link_refusal(claims, settings)
                if why is not None:
                    raise LinkRefused(why, user.id)
                audit.record(
                    session, f"user:{user.id}", "user.sso_linked", "user", user.id, issuer=issuer, subject=subject
                )
        roles = roles_from_claims(claims, settings) if settings.oidc_role_map else None
        if user is None:
            if not settings.oidc_auto_create:
                raise SignInRefused("no account (OIDC_AUTO_CREATE is off)")
            if not email or "@" not in email:
                raise SignInRefused("no email in the ID token")
            if not roles:
                raise SignInRefused("no Broadcaster role in the groups claim")
            try:  # the email has no account (checked above); one made since by a concurrent sign-in is refused
                user = service.create_user(
                    session, email, str(claims.get("name") or ""), roles, oidc_issuer=issuer, oidc_subject=subject
                )
            except (Conflict, IntegrityError):
                raise SignInRefused("the account was created by a concurrent sign-in; try again") from None
            audit.record(session, f"user:{user.id}", "user.create", "user", user.id, email=email, roles=roles, sso=True)
            grants.roles_granted(session, user, [], by=f"sso:{issuer}", via="sso")
        user.oidc_issuer, user.oidc_subject = issuer, subject
        if not user.active:
            raise SignInRefused("the account is deactivated")
        if roles is not None and sorted(roles) != sorted(user.roles or []):
            audit.record(
                session,
                f"user:{user.id}",
                "user.roles_from_sso",
                "user",
                user.id,
                before={"roles": user.roles},
                after={"roles": roles},
            )
            before, user.roles = list(user.roles or []), roles
            grants.roles_granted(session, user, before, by=f"sso:{issuer}", via="sso")
        if not user.roles:
            # kept (committed): a person the provider no longer puts in a mapped group loses their roles and
            # every open session now
            session.execute(delete(ConsoleSession).where(ConsoleSession.user_id == user.id))
            refused = "no Broadcaster role"
        else:
            refused = ""
            if claims.get("name") and not user.name:
                user.name = str(claims["name"])[:200]
            end_session(session, request.cookies.get(COOKIE_NAME))
            cookie = start_session(session, user)
            ip = throttle.client_ip(request)
            audit.record(session, f"user:{user.id}", "user.login", "user", user.id, method="sso", ip=ip)
    if refused:
        raise SignInRefused(refused)
    return cookie
