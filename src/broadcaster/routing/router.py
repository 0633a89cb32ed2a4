"""`/v1/categories` and `/v1/routing-map` endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from broadcaster import audit, doors
from broadcaster.crud import SlugResource
from broadcaster.deps import RawBody, SessionDep
from broadcaster.models import Category
from broadcaster.routing import service
from broadcaster.routing.schemas import CategoryIn, CategoryOut, CategoryPatch, RoutingMap
from broadcaster.security import Principal, Scope, require_scope

router = APIRouter(prefix="/v1", tags=["routing map"])

Reader = Annotated[Principal, Depends(require_scope(Scope.read))]
Writer = Annotated[Principal, Depends(require_scope(Scope.write))]

CATEGORIES: SlugResource[Category, CategoryOut] = SlugResource(
    "category", service.get_category, CategoryOut.model_validate
)


@router.get("/categories", response_model=list[CategoryOut])
def list_categories(session: SessionDep, _: Reader) -> list[CategoryOut]:
    return CATEGORIES.present_all(service.list_categories(session))


@router.post(
    "/categories",
    response_model=CategoryOut,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=doors.door("routing.map"),
)
def create_category(body: CategoryIn, session: SessionDep, who: Writer) -> CategoryOut:
    cat = service.create_category(session, body)
    return CATEGORIES.created(session, who.actor, cat, cat.slug)


@router.get("/categories/{slug}", response_model=CategoryOut)
def get_category(slug: str, session: SessionDep, _: Reader) -> CategoryOut:
    return CATEGORIES.read(session, slug)


@router.patch("/categories/{slug}", response_model=CategoryOut, openapi_extra=doors.door("routing.map"))
def update_category(slug: str, body: CategoryPatch, session: SessionDep, who: Writer) -> CategoryOut:
    before = CATEGORIES.snapshot_of(session, slug)
    cat = service.update_category(session, slug, body, who.actor)
    return CATEGORIES.updated(session, who.actor, slug, cat, before=before, body=body)


@router.delete("/categories/{slug}", status_code=status.HTTP_204_NO_CONTENT, openapi_extra=doors.door("routing.map"))
def delete_category(slug: str, session: SessionDep, who: Writer) -> Response:
    return CATEGORIES.delete(session, who.actor, slug, service.delete_category)


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
def put_routing_map(request: Request, raw: RawBody, session: SessionDep, who: Writer) -> RoutingMap:
    json_only = "json" in request.headers.get("content-type", "")
    routing_map = service.parse_map(raw, source="body", json_only=json_only)
    before = service.export_map(session).model_dump(mode="json")
    service.replace_map(session, routing_map, actor=who.actor)
    after = service.export_map(session)
    audit.record(
        session,
        who.actor,
        "routing_map.replace",
        "routing_map",
        "-",
        before=before,
        after=after.model_dump(mode="json"),
        categories=len(routing_map.categories),
    )
    return after
