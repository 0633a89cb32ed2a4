"""The web console's HTML pages under /console (comms staff and admins) and its static files.

Pages are rendered on the server from read-only view data (console.service); everything that changes state
is done by the pages' scripts through the /v1 JSON API with the session cookie and the `X-CSRF-Token` header,
so the console can do nothing the API would not let the same person do. Scripts and styles are files under
/console/static (the CSP allows no inline script); no build step, no CDN.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from broadcaster.console import service
from broadcaster.deps import SessionDep
from broadcaster.errors import NotFound
from broadcaster.pagination import MAX_ID
from broadcaster.publishing import approvers
from broadcaster.security import console_principal
from broadcaster.sessions import ConsoleUser, require_console_user
from broadcaster.settings import get_settings
from broadcaster.users import grants

router = APIRouter(tags=["console"], include_in_schema=False)

STATIC_DIR = Path(__file__).resolve().parent / "static"
_STATIC_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
User = Annotated[ConsoleUser, Depends(require_console_user)]
OptionalId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


def _json_script(value: Any) -> Markup:
    """JSON safe to place inside <script type="application/json"> (no `</script>` breakout)."""
    text = json.dumps(value, default=str).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # noqa: S704 (escaped above: no tag can close the element)


@lru_cache(maxsize=1)
def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("broadcaster.console", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["json_script"] = _json_script
    env.filters["when"] = lambda d: d.strftime("%Y-%m-%d %H:%M UTC") if d else ""
    env.filters["iso"] = lambda d: d.isoformat() if d else ""
    return env


def render(
    name: str, request: Request, user: ConsoleUser, page: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """A console page inside the shared layout (navigation filtered by the person's roles; for an admin, the
    role grants they have not acknowledged yet)."""
    settings = get_settings()
    html = (
        _env()
        .get_template(name)
        .render(
            user=user,
            nav=service.nav_for(user),
            page=page,
            org_name=settings.org_name,
            csrf_token=user.csrf_token,
            can=lambda role: user.has_role(role),
            grant_notices=_grant_notices(user),
            **context,
        )
    )
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


def _grant_notices(user: ConsoleUser) -> list[grants.GrantNotice]:
    """New approvers and admins (and approve-capable keys) this admin has not acknowledged; none for others."""
    if "admin" not in user.roles:
        return []
    from broadcaster.db import session_scope

    with session_scope() as session:
        return grants.notices_for(session, user.id)


def _guard(request: Request, user: ConsoleUser, page: str) -> HTMLResponse | None:
    """A 403 page when the person's roles do not open `page` (the navigation does not offer it either)."""
    if service.may_open(user, page):
        return None
    return render(
        "error.html",
        request,
        user,
        page,
        status_code=403,
        title="Not available to you",
        message="Your roles do not include this page. Ask an admin if you need it.",
    )


def _not_found(request: Request, user: ConsoleUser, page: str, exc: NotFound) -> HTMLResponse:
    return render("error.html", request, user, page, status_code=404, title="Not found", message=exc.detail)


@router.get("/console")
def console_root() -> Response:
    return RedirectResponse("/console/", status_code=307)


@router.get("/console/", response_class=HTMLResponse)
def incidents_page(
    request: Request,
    session: SessionDep,
    user: User,
    status: Annotated[str | None, Query(max_length=20)] = "active",
) -> Response:
    rows = service.incident_list(session, status=status or None)
    return render(
        "incidents.html", request, user, "incidents", rows=rows, status=status or "", statuses=service.IncidentStatus
    )


@router.get("/console/incidents/{incident_id}", response_class=HTMLResponse)
def incident_page(incident_id: int, request: Request, session: SessionDep, user: User) -> Response:
    try:
        view = service.incident_view(session, incident_id)
    except NotFound as exc:
        return _not_found(request, user, "incidents", exc)
    return render("incident.html", request, user, "incidents", public_url=get_settings().public_url, **view)


@router.get("/console/compose", response_class=HTMLResponse)
def compose_page(
    request: Request,
    session: SessionDep,
    user: User,
    incident_id: OptionalId = None,
    update_id: OptionalId = None,
    corrects: OptionalId = None,
    kind: Annotated[str | None, Query(pattern="^(correction|cancel)$")] = None,
) -> Response:
    if (denied := _guard(request, user, "compose")) is not None:
        return denied
    try:
        context = service.compose_context(
            session, get_settings(), incident_id=incident_id, update_id=update_id, corrects=corrects, kind=kind
        )
    except NotFound as exc:
        return _not_found(request, user, "compose", exc)
    context["config"]["can_publish"] = user.has_role("approver")
    return render("compose.html", request, user, "compose", **context)


@router.get("/console/approvals", response_class=HTMLResponse)
def approvals_page(request: Request, session: SessionDep, user: User) -> Response:
    if (denied := _guard(request, user, "approvals")) is not None:
        return denied
    from broadcaster.public.palette import PALETTE

    rows, names = service.pending_updates(session)
    changes = service.pending_changes(session)
    names |= service.actor_names(session, {row.requested_by for _, row in changes})
    wait = approvers.approval_wait(session, console_principal(user))
    return render(
        "approvals.html",
        request,
        user,
        "approvals",
        rows=rows,
        changes=changes,
        names=names,
        palette=PALETTE,
        grant_wait=wait,
        map_proposals=service.map_proposals(session),
    )


@router.get("/console/approvals/live.json")
def approvals_live(session: SessionDep, user: User) -> Response:
    """The approvals badge and queue, polled by every console page (notify.js): the pending requests with who
    asked, how long they waited, who can approve and any escalation; `count` is what this person could act on."""
    from fastapi.responses import JSONResponse

    from broadcaster.users import notices

    body = notices.live(session, user.actor, user.has_role("approver"))
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.get("/console/notifications", response_class=HTMLResponse)
def notifications_page(request: Request, session: SessionDep, user: User) -> Response:
    """My notifications: how this person hears of approval requests besides the console (e-mail, SMS, webhook);
    the form saves through PUT /v1/users/me/notifications."""
    from broadcaster.users import notices

    prefs = notices.prefs_of(session, user.id)
    minutes = get_settings().approval_escalate_minutes
    return render("notifications.html", request, user, "notifications", prefs=prefs, escalate_minutes=minutes)


@router.get("/console/broadcasts/{broadcast_id}", response_class=HTMLResponse)
def broadcast_page(broadcast_id: int, request: Request, session: SessionDep, user: User) -> Response:
    try:
        view = service.broadcast_view(session, broadcast_id)
    except NotFound as exc:
        return _not_found(request, user, "incidents", exc)
    return render("broadcast.html", request, user, "incidents", **view)


@router.get("/console/updates/{update_id}/responses", response_class=HTMLResponse)
def responses_page(update_id: int, request: Request, session: SessionDep, user: User) -> Response:
    """The live tallies of an update's question ("Are you safe?"), needs-help people first; Close question."""
    if update_id > MAX_ID:
        return _not_found(request, user, "incidents", NotFound(f"Update {update_id} does not exist."))
    try:
        view = service.responses_view(session, update_id)
    except NotFound as exc:
        return _not_found(request, user, "incidents", exc)
    return render("responses.html", request, user, "incidents", **view)


@router.get("/console/routing", response_class=HTMLResponse)
def routing_page(request: Request, session: SessionDep, user: User) -> Response:
    """The routing map: proposed versions with their diff (Approve/Reject for approvers), and the YAML editor
    (admins)."""
    if (denied := _guard(request, user, "routing")) is not None:
        return denied
    proposals = service.map_proposals(session)
    wait = approvers.approval_wait(session, console_principal(user))
    return render("routing.html", request, user, "routing", proposals=proposals, grant_wait=wait)


@router.get("/console/subscribers", response_class=HTMLResponse)
def subscribers_page(
    request: Request, session: SessionDep, user: User, q: Annotated[str | None, Query(max_length=320)] = None
) -> Response:
    if (denied := _guard(request, user, "subscribers")) is not None:
        return denied
    rows = service.subscriber_list(session, q)
    return render("subscribers.html", request, user, "subscribers", rows=rows, q=q or "")


@router.get("/console/subscribers/{subscriber_id}", response_class=HTMLResponse)
def subscriber_page(subscriber_id: int, request: Request, session: SessionDep, user: User) -> Response:
    if (denied := _guard(request, user, "subscribers")) is not None:
        return denied
    try:
        view = service.subscriber_view(session, subscriber_id)
    except NotFound as exc:
        return _not_found(request, user, "subscribers", exc)
    return render("subscriber.html", request, user, "subscribers", **view)


@router.get("/console/services", response_class=HTMLResponse)
def services_page(request: Request, session: SessionDep, user: User) -> Response:
    if (denied := _guard(request, user, "services")) is not None:
        return denied
    from broadcaster.models.services import SERVICE_STATES
    from broadcaster.public.statuspage import LABELS

    rows = service.services_view(session)
    return render("services.html", request, user, "services", rows=rows, states=SERVICE_STATES, labels=LABELS)


@router.get("/console/maintenance", response_class=HTMLResponse)
def maintenance_page(request: Request, session: SessionDep, user: User) -> Response:
    """Scheduled maintenance: windows with their notices and schedule approval; Schedule, Move and Cancel for
    the people with the publish scope (approvers), as the API requires."""
    if (denied := _guard(request, user, "maintenance")) is not None:
        return denied
    return render("maintenance.html", request, user, "maintenance", **service.maintenance_view(session))


@router.get("/console/areas", response_class=HTMLResponse)
def areas_page(request: Request, session: SessionDep, user: User) -> Response:
    """Named areas with their outline and subscriber count; Import GeoJSON (editors: the write scope)."""
    if (denied := _guard(request, user, "areas")) is not None:
        return denied
    rows, total = service.areas_view(session)
    return render("areas.html", request, user, "areas", rows=rows, total=total)


@router.get("/console/channels", response_class=HTMLResponse)
def channels_page(request: Request, session: SessionDep, user: User) -> Response:
    rows = service.channels_view(session, get_settings())
    return render("channels.html", request, user, "channels", rows=rows)


@router.get("/console/audit", response_class=HTMLResponse)
def audit_page(request: Request, user: User) -> Response:
    if (denied := _guard(request, user, "audit")) is not None:
        return denied
    return render("audit.html", request, user, "audit")


@lru_cache(maxsize=1)
def _static_files() -> dict[str, Path]:
    """The files under static/ by name: only these are served (no path is built from the request)."""
    return {p.name: p for p in STATIC_DIR.iterdir() if p.is_file() and p.suffix in _STATIC_TYPES}


@router.get("/console/static/{name}")
def static_file(name: str) -> Response:
    """The console's CSS and scripts (plain files, no build step); revalidated with their ETag."""
    path = _static_files().get(name)
    if path is None:
        raise NotFound(f"No console file {name!r}.", field="name")
    return FileResponse(path, media_type=_STATIC_TYPES[path.suffix], headers={"Cache-Control": "no-cache"})
