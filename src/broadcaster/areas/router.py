"""`/v1/areas` endpoints: import named areas from GeoJSON, list, read, edit, delete, count who is inside."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Response, status

from broadcaster import audit, doors
from broadcaster.areas import service
from broadcaster.areas.schemas import AreaOut, AreaPatch, CountOut, ImportOut
from broadcaster.crud import SlugResource
from broadcaster.deps import RawBody, SessionDep
from broadcaster.errors import BadRequest
from broadcaster.models.areas import Area
from broadcaster.security import Principal, Scope, require_scope

router = APIRouter(prefix="/v1", tags=["areas"])

Reader = Annotated[Principal, Depends(require_scope(Scope.read))]
Writer = Annotated[Principal, Depends(require_scope(Scope.write))]
SlugPath = Annotated[str, Path(min_length=1, max_length=64)]


def _summary(out: AreaOut) -> dict[str, Any]:
    """An area for the audit log: everything but the (possibly large) geometry, which is summarised."""
    data = out.model_dump(mode="json", exclude={"geometry", "created_at", "updated_at"})
    data["geometry_type"] = out.geometry.get("type")
    return data


AREAS: SlugResource[Area, AreaOut] = SlugResource("area", service.get_area, AreaOut.build, snapshot=_summary)


@router.post(
    "/areas/import",
    response_model=ImportOut,
    summary="Create or replace named areas from a GeoJSON FeatureCollection (all or nothing)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/geo+json": {"schema": {"type": "object"}}, "application/json": {}},
        }
    }
    | doors.door("area.edit"),
)
def import_areas(raw: RawBody, session: SessionDep, who: Writer) -> ImportOut:
    """Each Feature's `properties` give `slug` (required), `name`, `kind` (district, zone, postcode, site,
    other) and `description`; its geometry is a Polygon or MultiPolygon. An existing slug is replaced. A bad
    feature fails the whole import with a 422 naming it (`features[3].geometry.coordinates[0]`)."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"Request body is not valid JSON: {exc}", code="malformed_json") from None
    created, updated = service.import_collection(session, body, who.actor)
    audit.record(session, who.actor, "area.import", "area", "-", created=created, updated=updated)
    return ImportOut(created=created, updated=updated)


@router.get("/areas", response_model=list[AreaOut])
def list_areas(
    session: SessionDep,
    _: Reader,
    geometry: Annotated[bool, Query(description="Include each area's geometry.")] = False,
) -> list[AreaOut]:
    return [AreaOut.build(a, with_geometry=geometry) for a in service.list_areas(session)]


@router.get("/areas/{slug}", response_model=AreaOut)
def get_area(slug: SlugPath, session: SessionDep, _: Reader) -> AreaOut:
    return AREAS.read(session, slug)


@router.patch("/areas/{slug}", response_model=AreaOut, openapi_extra=doors.door("area.edit"))
def update_area(slug: SlugPath, body: AreaPatch, session: SessionDep, who: Writer) -> AreaOut:
    before = AREAS.snapshot_of(session, slug)
    before_geometry = service.get_area(session, slug).geometry
    area = service.update_area(session, slug, body, who.actor)
    return AREAS.updated(
        session, who.actor, slug, area, before=before, body=body, geometry_changed=area.geometry != before_geometry
    )


@router.delete("/areas/{slug}", status_code=status.HTTP_204_NO_CONTENT, openapi_extra=doors.door("area.edit"))
def delete_area(slug: SlugPath, session: SessionDep, who: Writer) -> Response:
    return AREAS.delete(session, who.actor, slug, service.delete_area)


@router.get("/areas/{slug}/subscribers/count", response_model=CountOut)
def count_subscribers(slug: SlugPath, session: SessionDep, _: Reader) -> CountOut:
    """Subscribers in the area: placed in it (by hand or import) or located inside it (edges count)."""
    return CountOut(slug=slug, **service.count_subscribers(session, slug))
