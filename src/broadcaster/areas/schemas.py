"""Request and response schemas of area targeting: an update's `area`, and named areas."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from broadcaster.areas.geometry import GeometryError, parse_circle, parse_geometry
from broadcaster.domain import Input, validate_slug

AREA_KINDS = ("district", "zone", "postcode", "site", "other")
#: the most named areas one update may name
MAX_UPDATE_AREAS = 100
#: the most features one import may hold
MAX_IMPORT_FEATURES = 5_000


def geometry_error(exc: GeometryError, value: Any) -> ValidationError:
    """A GeometryError as a pydantic error located at its path (so the 422 `field` is e.g.
    `area.polygon.coordinates[0]`)."""
    loc = tuple(p for p in exc.path.split(".") if p)
    detail = InitErrorDetails(type=PydanticCustomError("geometry", exc.message), loc=loc, input=value)
    return ValidationError.from_exception_data("geometry", [detail])


def checked_geometry(value: Any) -> dict[str, Any]:
    """Validate a GeoJSON Polygon/MultiPolygon (raises a located ValidationError) and return it as given."""
    try:
        parse_geometry(value)
    except GeometryError as exc:
        raise geometry_error(exc, value) from None
    return dict(value)


class CircleIn(BaseModel):
    """A centre (WGS 84 degrees) and a radius in metres."""

    lat: float
    lon: float
    radius_m: float


class AreaSpec(Input):
    """Where an update is aimed: named areas, a polygon and/or a circle; the audience is the subscribers inside
    their union (located inside, or placed in one of the named areas)."""

    description: str = Field(
        "", max_length=500, description="How people name the area, e.g. '5th Ave between 10th and 14th St'."
    )
    areas: list[str] = Field(default_factory=list, max_length=MAX_UPDATE_AREAS, description="Named area slugs.")
    polygon: dict[str, Any] | None = Field(
        None, description="A GeoJSON Polygon or MultiPolygon geometry ([lon, lat] WGS 84 degrees)."
    )
    circle: dict[str, Any] | None = Field(None, description="`{lat, lon, radius_m}`: a centre and a radius in metres.")

    @field_validator("areas")
    @classmethod
    def _areas(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(validate_slug(v) for v in value))

    @field_validator("polygon")
    @classmethod
    def _polygon(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return checked_geometry(value) if value is not None else None

    @field_validator("circle")
    @classmethod
    def _circle(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        try:
            c = parse_circle(value)
        except GeometryError as exc:
            raise geometry_error(exc, value) from None
        return {"lat": c.lat, "lon": c.lon, "radius_m": c.radius_m}

    @model_validator(mode="after")
    def _something(self) -> AreaSpec:
        if not self.areas and self.polygon is None and self.circle is None:
            raise ValueError("give at least one of areas, polygon or circle (or send area: null for no area)")
        return self

    def stored(self) -> dict[str, Any]:
        """The shape kept in `Update.area`."""
        out: dict[str, Any] = {"description": self.description, "areas": self.areas}
        if self.polygon is not None:
            out["polygon"] = self.polygon
        if self.circle is not None:
            out["circle"] = self.circle
        return out


class AreaOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    slug: str
    name: str
    kind: str
    description: str
    geometry: dict[str, Any]
    bbox: list[float] = Field(description="[min_lon, min_lat, max_lon, max_lat]")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def build(cls, area: Any, *, with_geometry: bool = True) -> AreaOut:
        return cls(
            slug=area.slug,
            name=area.name,
            kind=area.kind,
            description=area.description,
            geometry=area.geometry if with_geometry else {},
            bbox=[area.min_lon, area.min_lat, area.max_lon, area.max_lat],
            created_at=area.created_at,
            updated_at=area.updated_at,
        )


class AreaPatch(Input):
    """Rename, reclassify, describe or redraw a named area."""

    name: str | None = Field(None, min_length=1, max_length=200)
    kind: str | None = Field(None, pattern="^(district|zone|postcode|site|other)$")
    description: str | None = Field(None, max_length=2000)
    geometry: dict[str, Any] | None = None

    @field_validator("geometry")
    @classmethod
    def _geometry(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return checked_geometry(value) if value is not None else None


class ImportOut(BaseModel):
    created: list[str]
    updated: list[str]


class CountOut(BaseModel):
    slug: str
    subscribers: int = Field(description="Subscribers placed in the area or located inside it.")
    placed: int = Field(description="Subscribers placed in the area by hand or import.")
    located: int = Field(description="Subscribers whose location is inside the area.")
