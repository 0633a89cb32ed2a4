"""`/v1/categories` and `/v1/routing-map` endpoints."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from broadcaster import audit, doors
from broadcaster.crud import SlugResource
from broadcaster.deps import RawBody, SessionDep
from broadcaster.errors import ErrorOut, NotFound, Unprocessable, error_response
from broadcaster.models import Category
from broadcaster.models.routing import PROPOSED, RoutingMapVersion
from broadcaster.pagination import MAX_ID, IdPath, Page, PageParams, page_params
from broadcaster.publishing import approval
from broadcaster.publishing.schemas import RejectIn
from broadcaster.routing import mapdiff, service, versions
from broadcaster.routing.schemas import (
    CategoryIn,
    CategoryOut,
    CategoryPatch,
    FieldChangeOut,
    ItemChangeOut,
    RoutingMap,
    VersionDetailOut,
    VersionOut,
)
from broadcaster.security import Principal, Scope, require_scope

router = APIRouter(prefix="/v1", tags=["routing map"])

Reader = Annotated[Principal, Depends(require_scope(Scope.read))]
Writer = Annotated[Principal, Depends(require_scope(Scope.write))]
#: a second person: the publish scope (or admin), as for update approval
Approver = Annotated[Principal, Depends(require_scope(Scope.publish))]

CATEGORIES: SlugResource[Category, CategoryOut] = SlugResource(
    "category", service.get_category, CategoryOut.model_validate
)


@router.get("/categories", response_model=list[CategoryOut])
def list_categories(session: SessionDep, _: Reader) -> list[CategoryOut]:
    return CATEGORIES.present_all(service.list_categories(session))


# --- every change is a version -------------------------------------------------------------------------------

#: what a change that waits for a second person answers (202)
PROPOSED_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "model": VersionDetailOut,
        "description": "The change loosens safety: stored as a proposal (nothing changed yet); a second person "
        "approves it with POST /v1/routing-map/versions/{number}/approve and this ETag in If-Match.",
        "headers": {"ETag": {"description": "The proposal's ETag.", "schema": {"type": "string"}}},
    },
    403: {
        "model": ErrorOut,
        "description": "The change loosens safety and only an admin may propose it (`loosens_safety`, with "
        "`reasons`); or the scope is missing.",
    },
}


def version_out(row: RoutingMapVersion) -> VersionOut:
    return VersionOut.model_validate(_fields(row))


def _fields(row: RoutingMapVersion) -> dict[str, Any]:
    names = VersionOut.model_fields.keys() - {"etag"}
    return {name: getattr(row, name) for name in names} | {
        "etag": versions.etag(row) if row.state == PROPOSED else None
    }


def detail_out(session: Session, row: RoutingMapVersion, against: int | None = None) -> VersionDetailOut:
    """The version with its diff against `against` (default: the applied version for a proposal, else the
    version it was compared with when recorded)."""
    if against is None:
        applied = versions.current(session)
        against = (applied.number if applied else None) if row.state == PROPOSED else row.base_number
    changes = mapdiff.diff_maps(versions.document_of(session, against), row.document)
    diff = [
        ItemChangeOut(
            section=c.section,
            name=c.name,
            change=c.change,
            fields=[FieldChangeOut(path=f.path, before=f.before, after=f.after) for f in c.fields],
        )
        for c in changes
    ]
    return VersionDetailOut(
        **_fields(row), against=against, diff=diff, diff_text=mapdiff.render(changes), map=dict(row.document)
    )


def _refused(outcome: versions.Outcome, who: Principal) -> JSONResponse:
    """403 naming why the change loosens safety (the decision is recorded: this answer commits it)."""
    lacks = "your roles do not include admin" if who.is_session else "this API key lacks the 'admin' scope"
    return error_response(
        403,
        "loosens_safety",
        "This change loosens safety, so only an admin may propose it, and a second person must approve its diff "
        f"before it applies ({lacks}): " + "; ".join(outcome.reasons) + ".",
        "Authorization",
        reasons=outcome.reasons,
        required_scope=Scope.admin.value,
    )


def _proposed(session: Session, outcome: versions.Outcome) -> JSONResponse:
    assert outcome.version is not None
    out = detail_out(session, outcome.version)
    return JSONResponse(out.model_dump(mode="json"), status_code=202, headers={"ETag": out.etag or ""})


def _change(
    session: Session, who: Principal, proposed: dict[str, Any], stored: dict[str, Any], apply: Callable[[], Any]
) -> versions.Outcome:
    return versions.submit(
        session, stored, proposed, actor=who.actor, admin=who.has(Scope.admin), source="api", apply=apply
    )


@router.post(
    "/categories",
    response_model=CategoryOut,
    status_code=status.HTTP_201_CREATED,
    responses=PROPOSED_RESPONSES,
    openapi_extra=doors.door("routing.map"),
)
def create_category(body: CategoryIn, session: SessionDep, who: Writer) -> Any:
    """Add a category (a new version of the map; one carrying escalation rules loosens safety: 202)."""
    service.check_new_slug(session, body.slug)
    stored = versions.stored_map(session)
    created: list[Category] = []
    outcome = _change(
        session,
        who,
        service.with_category(stored, body.slug, service.category_doc(body)),
        stored,
        lambda: created.append(service.create_category(session, body)),
    )
    if outcome.refused:
        return _refused(outcome, who)
    if outcome.proposed:
        return _proposed(session, outcome)
    return CATEGORIES.created(session, who.actor, created[0], created[0].slug)


@router.get("/categories/{slug}", response_model=CategoryOut)
def get_category(slug: str, session: SessionDep, _: Reader) -> CategoryOut:
    return CATEGORIES.read(session, slug)


@router.patch(
    "/categories/{slug}",
    response_model=CategoryOut,
    responses=PROPOSED_RESPONSES,
    openapi_extra=doors.door("routing.map"),
)
def update_category(slug: str, body: CategoryPatch, session: SessionDep, who: Writer) -> Any:
    """Change a category (a new version of the map; a loosening change waits for a second person: 202)."""
    before = CATEGORIES.snapshot_of(session, slug)
    stored = versions.stored_map(session)
    [current] = [c for c in stored["categories"] if c["slug"] == slug]
    outcome = _change(
        session,
        who,
        service.with_category(stored, slug, service.patched_doc(current, body)),
        stored,
        lambda: service.update_category(session, slug, body, who.actor),
    )
    if outcome.refused:
        return _refused(outcome, who)
    if outcome.proposed:
        return _proposed(session, outcome)
    return CATEGORIES.updated(session, who.actor, slug, service.get_category(session, slug), before=before, body=body)


@router.delete(
    "/categories/{slug}",
    status_code=status.HTTP_204_NO_CONTENT,
    openapi_extra=doors.door("routing.map"),
)
def delete_category(slug: str, session: SessionDep, who: Writer) -> Response:
    """Remove a category (refused while incidents or alert rules use it); a removal never loosens safety, but it
    is decided and recorded as a version like every change."""
    service.get_category(session, slug)
    stored = versions.stored_map(session)
    service.check_rules_allow_removal(stored, slug)
    answer: list[Response] = []
    outcome = _change(
        session,
        who,
        service.with_category(stored, slug, None),
        stored,
        lambda: answer.append(CATEGORIES.delete(session, who.actor, slug, service.delete_category)),
    )
    if outcome.refused:
        return _refused(outcome, who)
    if outcome.proposed:
        return _proposed(session, outcome)
    return answer[0]


@router.get(
    "/routing-map",
    response_model=RoutingMap,
    responses={200: {"content": {"application/yaml": {}}}},
    summary="The routing map (JSON, or YAML with ?format=yaml or Accept: application/yaml)",
)
def get_routing_map(
    request: Request,
    session: SessionDep,
    _: Reader,
    format: Annotated[str | None, Query(pattern="^(json|yaml)$")] = None,
) -> Response | RoutingMap:
    routing_map = service.export_map(session)
    wants_yaml = format == "yaml" or (format is None and "yaml" in request.headers.get("accept", ""))
    if wants_yaml:
        return Response(service.to_yaml(routing_map), media_type="application/yaml")
    return routing_map


@router.put(
    "/routing-map",
    response_model=RoutingMap,
    summary="Replace the routing map (JSON or YAML body); categories not in the map are removed",
    responses=PROPOSED_RESPONSES,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/RoutingMap"}},
                "application/yaml": {"schema": {"type": "string"}},
            },
        }
    }
    | doors.door("routing.map"),
)
def put_routing_map(request: Request, raw: RawBody, session: SessionDep, who: Writer) -> Any:
    """Replace the map: a new version. One that loosens safety (alert-rule automation, escalation rules, channels,
    contacts of live incidents) is stored as a proposal by an admin (202, nothing changes) and applies when a
    second person approves it; anyone else gets a 403 naming why it loosens."""
    json_only = "json" in request.headers.get("content-type", "")
    routing_map = service.parse_map(raw, source="body", json_only=json_only)
    service.check_map(routing_map)
    stored = versions.stored_map(session)
    outcome = _change(
        session,
        who,
        routing_map.model_dump(mode="json"),
        stored,
        lambda: service.replace_map(session, routing_map, actor=who.actor, check=False),
    )
    if outcome.refused:
        return _refused(outcome, who)
    if outcome.proposed:
        return _proposed(session, outcome)
    after = service.export_map(session)
    audit.record(
        session,
        who.actor,
        "routing_map.replace",
        "routing_map",
        "-",
        before=stored,
        after=after.model_dump(mode="json"),
        categories=len(routing_map.categories),
        version=outcome.version.number if outcome.version else None,
    )
    return after


# --- versions ------------------------------------------------------------------------------------------------


@router.get("/routing-map/versions", response_model=Page[VersionOut])
def list_versions(
    session: SessionDep, _: Reader, page: Annotated[PageParams, Depends(page_params)]
) -> Page[VersionOut]:
    """Every version of the map, newest first (`proposed` ones wait for a second person)."""
    rows = versions.list_versions(session, limit=page.limit, cursor=page.cursor)
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return Page(items=[version_out(r) for r in rows], next_cursor=str(rows[-1].number) if more else None)


@router.get(
    "/routing-map/versions/{number}",
    response_model=VersionDetailOut,
    responses={
        200: {
            "headers": {"ETag": {"description": "While proposed: the proposal's ETag.", "schema": {"type": "string"}}}
        }
    },
)
def get_version(
    number: IdPath,
    session: SessionDep,
    _: Reader,
    response: Response,
    against: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Diff against this version.")] = None,
) -> VersionDetailOut:
    """One version: its diff against the applied version (a proposal) or against the version it changed, as a
    list of changes and as text, and the whole map. While proposed, `ETag` is what approving needs in If-Match."""
    row = versions.get(session, number)
    if against is not None:
        try:
            versions.get(session, against)
        except NotFound as exc:
            raise Unprocessable(f"against: routing-map version {against} does not exist.", field="against") from exc
    out = detail_out(session, row, against)
    if out.etag:
        response.headers["ETag"] = out.etag
    return out


@router.post(
    "/routing-map/versions/{number}/approve",
    response_model=VersionDetailOut,
    responses=approval.approve_responses("the proposal you reviewed", not_found="No such version."),
    openapi_extra=doors.door("routing.map"),
)
def approve_version(
    number: IdPath, session: SessionDep, who: Approver, if_match: approval.IfMatch = None
) -> VersionDetailOut:
    """Approve a proposed version: a second person (not the proposer), with the ETag of the diff they reviewed in
    If-Match. The stored map becomes that version at once."""
    row = versions.approve(session, number, who, if_match)
    return detail_out(session, row)


@router.post(
    "/routing-map/versions/{number}/reject",
    response_model=VersionOut,
    responses={
        404: {"model": ErrorOut, "description": "No such version."},
        409: {"model": ErrorOut, "description": "The version is not waiting for approval (`not_pending`)."},
    },
    openapi_extra=doors.not_a_door("turns a proposed routing-map version down: nothing changes"),
)
def reject_version(number: IdPath, body: RejectIn, session: SessionDep, who: Approver) -> VersionOut:
    """Reject a proposed version with a comment (an approver, or its proposer withdrawing it): nothing changes."""
    return version_out(versions.reject(session, number, who, body.comment))
