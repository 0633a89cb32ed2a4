"""`/v1/users`: people who sign in to the console (admin scope). The first admin is made with the CLI:
`broadcaster users create --email E --name N --role admin`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response, status
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select

from broadcaster import audit, doors
from broadcaster.deps import SessionDep
from broadcaster.domain import Input
from broadcaster.errors import Conflict, ErrorOut, Forbidden, NotFound
from broadcaster.models import Update, User
from broadcaster.security import Principal, Scope, authenticate, require_scope
from broadcaster.users import grants, notices, service
from broadcaster.users.schemas import UserIn, UserOut, UserPatch

router = APIRouter(prefix="/v1", tags=["users"])
#: users.id is a 32-bit INTEGER: a bigger id is a 422 naming it, not a database range error
UserIdPath = Annotated[int, Path(ge=1, le=2**31 - 1)]
Admin = Annotated[Principal, Depends(require_scope(Scope.admin))]


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        name=user.name,
        roles=list(user.roles or []),
        active=user.active,
        has_password=bool(user.password_hash),
        sso_issuer=user.oidc_issuer,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
    )


def _keep_an_admin(session: SessionDep, user: User, roles: list[str], active: bool) -> None:
    """409 when the change would leave no active admin (nobody could manage people any more)."""
    if not (user.active and "admin" in (user.roles or [])) or (active and "admin" in roles):
        return
    others = session.scalars(select(User).where(User.active.is_(True), User.id != user.id)).all()
    if not any("admin" in (u.roles or []) for u in others):
        raise Conflict("This would leave no active admin.", field="roles" if active else "active", code="last_admin")


class MeOut(BaseModel):
    """Who the caller is: the identity approvals compare, and what it may do."""

    actor: str
    scopes: list[str]
    via: str
    user: UserOut | None


@router.get("/me", response_model=MeOut)
def me(session: SessionDep, who: Annotated[Principal, Depends(authenticate)]) -> MeOut:
    """The caller: a person (console session, or a key they own) or a key."""
    user = session.get(User, who.user_id) if who.user_id is not None else None
    return MeOut(
        actor=who.actor,
        scopes=sorted(who.scopes),
        via="session" if who.is_session else "api_key",
        user=user_out(user) if user is not None else None,
    )


@router.get("/users", response_model=list[UserOut])
def list_users(session: SessionDep, _: Admin) -> list[UserOut]:
    return [user_out(u) for u in service.list_users(session)]


@router.post(
    "/users",
    response_model=UserOut,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=doors.not_a_door(
        "people and roles; a new approver waits APPROVER_GRANT_DELAY (publishing/approvers.py)"
    ),
)
def create_user(body: UserIn, session: SessionDep, who: Admin) -> UserOut:
    user = service.create_user(session, str(body.email), body.name, list(body.roles), body.password)
    audit.record(session, who.actor, "user.create", "user", user.id, email=user.email, roles=user.roles)
    grants.roles_granted(session, user, [], by=who.actor, via=grants.via_of(who))
    return user_out(user)


@router.get("/users/{user_id}", response_model=UserOut)
def get_user(user_id: UserIdPath, session: SessionDep, _: Admin) -> UserOut:
    return user_out(service.get_user(session, user_id))


@router.patch(
    "/users/{user_id}",
    response_model=UserOut,
    openapi_extra=doors.not_a_door(
        "people and roles; a new approver waits APPROVER_GRANT_DELAY (publishing/approvers.py)"
    ),
)
def patch_user(user_id: UserIdPath, body: UserPatch, session: SessionDep, who: Admin) -> UserOut:
    user = service.get_user(session, user_id)
    roles_before = list(user.roles or [])
    before = {"name": user.name, "roles": roles_before, "active": user.active}
    roles = service.parse_roles(list(body.roles)) if body.roles is not None else list(user.roles or [])
    active = body.active if body.active is not None else user.active
    _keep_an_admin(session, user, roles, active)
    if body.name is not None:
        user.name = body.name.strip()
    user.roles = roles
    if body.password is not None:
        service.set_password(session, user, body.password)
    if body.active is False:
        service.deactivate(session, user)
    elif body.active:
        user.active = True
    after = {"name": user.name, "roles": list(user.roles), "active": user.active}
    audit.record(
        session,
        who.actor,
        "user.update",
        "user",
        user.id,
        before=before,
        after=after,
        password_changed=body.password is not None,
    )
    granted = grants.roles_granted(session, user, roles_before, by=who.actor, via=grants.via_of(who))
    if body.password is not None and (granted is None or not granted.delays_approval):
        # whoever set the password can sign in as the person: a new "second person" too
        grants.password_set(session, user, by=who.actor, via=grants.via_of(who))
    return user_out(user)


@router.delete(
    "/users/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    openapi_extra=doors.not_a_door(
        "people and roles; a new approver waits APPROVER_GRANT_DELAY (publishing/approvers.py)"
    ),
)
def deactivate_user(user_id: UserIdPath, session: SessionDep, who: Admin) -> Response:
    """Deactivate (people are never deleted: the audit log and approvals name them)."""
    user = service.get_user(session, user_id)
    _keep_an_admin(session, user, list(user.roles or []), False)
    if user.active:
        service.deactivate(session, user)
        audit.record(session, who.actor, "user.deactivate", "user", user.id)
    return Response(status_code=204)


class GrantsSeenIn(Input):
    up_to: int = Field(..., ge=0, le=2**31 - 1, description="The newest role grant id the admin has read.")


class GrantsSeenOut(BaseModel):
    acknowledged_up_to: int


@router.post(
    "/role-grants/acknowledge",
    response_model=GrantsSeenOut,
    openapi_extra=doors.not_a_door("an admin has read the role-grant notices"),
)
def acknowledge_grants(body: GrantsSeenIn, session: SessionDep, who: Admin) -> GrantsSeenOut:
    """An admin has read the role grants up to `up_to`: the console stops showing them to that admin (and only
    to them: every other admin still sees them). A person's call (console session or a key they own)."""
    if who.user_id is None:
        raise Forbidden(
            "Only a person acknowledges role grants: sign in to the console or use a key you own.",
            field="Authorization",
        )
    user = service.get_user(session, who.user_id)
    before = user.role_grants_seen_id
    seen = grants.acknowledge(session, user, body.up_to)
    if seen != before:
        audit.record(
            session, who.actor, "role.grant_acknowledge", "user", user.id, before={"seen": before}, after={"seen": seen}
        )
    return GrantsSeenOut(acknowledged_up_to=seen)


# --- approval notices (users/notices.py) ---------------------------------------------------------------

Reader = Annotated[Principal, Depends(require_scope(Scope.read))]


class NotificationsIn(Input):
    """How you want to hear of approval requests you can approve, besides the console's badge and sound."""

    email: bool = Field(False, description="E-mail to your account's address.")
    sms: str | None = Field(None, max_length=32, description="SMS to this number (E.164, +15551234567); null: none.")
    webhook: str | None = Field(
        None, max_length=500, description="POST to this http(s) URL (needs WEBHOOK_URLS set); null: none."
    )

    @field_validator("sms")
    @classmethod
    def _sms(cls, value: str | None) -> str | None:
        return notices.clean_sms(value)

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        return notices.clean_webhook(value)


class NotificationsOut(NotificationsIn):
    """Your approval-notice channels; `email_address` is where e-mail goes."""

    email_address: str
    can_approve: bool


def _person(session: SessionDep, who: Principal) -> User:
    if who.user_id is None:
        raise Forbidden(
            "Only a person has notification settings: sign in to the console or use a key you own.",
            field="Authorization",
        )
    return service.get_user(session, who.user_id)


def _notifications_out(user: User, prefs: notices.Prefs) -> NotificationsOut:
    return NotificationsOut(
        email=prefs.email,
        sms=prefs.sms,
        webhook=prefs.webhook,
        email_address=user.email,
        can_approve=bool(notices.APPROVING_ROLES & set(user.roles or [])),
    )


@router.get("/users/me/notifications", response_model=NotificationsOut)
def get_notifications(session: SessionDep, who: Reader) -> NotificationsOut:
    """How you hear of approval requests you can approve (besides the console)."""
    user = _person(session, who)
    return _notifications_out(user, notices.prefs_of(session, user.id))


@router.put(
    "/users/me/notifications",
    response_model=NotificationsOut,
    openapi_extra=doors.not_a_door("a person chooses how they hear of approval requests (staff, never the public)"),
)
def put_notifications(body: NotificationsIn, session: SessionDep, who: Reader) -> NotificationsOut:
    """Choose how you hear of approval requests you can approve: e-mail, SMS, webhook (audited)."""
    user = _person(session, who)
    prefs = notices.set_prefs(session, user, notices.Prefs(body.email, body.sms, body.webhook), who.actor)
    return _notifications_out(user, prefs)


class ApproversOut(BaseModel):
    """A pending approval request: who can approve it, how long it has waited, its escalation."""

    update_id: int
    incident_id: int
    title: str
    severity: str
    requested_by: str | None
    requested_by_name: str
    requested_at: str | None
    waited: str
    waited_seconds: int | None
    approvers: list[str]
    link: str
    escalated_at: str | None
    escalated_to: list[str]
    escalates_at: str | None


@router.get(
    "/updates/{update_id}/approvers",
    response_model=ApproversOut,
    responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
    tags=["updates"],
)
def update_approvers(update_id: UserIdPath, session: SessionDep, _: Reader) -> ApproversOut:
    """Who can approve a pending update now (by name), since when it waits, and whether it escalated."""
    if session.get(Update, update_id) is None:
        raise NotFound(f"Update {update_id} does not exist.", field="update_id")
    found = notices.pending_requests(session, [update_id])
    if not found:
        raise Conflict(f"Update {update_id} is not waiting for approval.", field="update_id", code="not_pending")
    return ApproversOut(**notices.describe(session, found[0]))
