"""An update's affected area as the public surfaces show it: its name, CAP 1.2 `<area>` text and an SVG outline.

Reads `Update.area` ({"description", "areas": [slugs], "polygon": GeoJSON Polygon/MultiPolygon, "circle":
{"lat", "lon", "radius_m"}}) and the named areas it lists, as stored (validated by broadcaster.areas when the
update was written). Nothing here needs map tiles or any external asset: the outline is an inline SVG of the
polygons projected onto an equirectangular box, so it works offline and in the static copy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster.domain import UpdateKind
from broadcaster.models import Incident, Update
from broadcaster.models.areas import Area

#: (lon, lat) in degrees, GeoJSON order
Point = tuple[float, float]
#: a closed linear ring
Ring = tuple[Point, ...]
#: exterior ring first, then its holes
Polygon = tuple[Ring, ...]

#: metres per degree of latitude (mean; plenty for a drawing and a CAP circle's bounding box)
M_PER_DEG = 111_320.0
#: size of the status page's outline, in CSS pixels
SVG_WIDTH, SVG_HEIGHT, SVG_PAD = 240, 160, 8


@dataclass(frozen=True, slots=True)
class Circle:
    lat: float
    lon: float
    radius_m: float


@dataclass(frozen=True, slots=True)
class Shape:
    """One CAP `<area>`: a description with its polygons and circles."""

    description: str
    polygons: tuple[Polygon, ...] = ()
    circles: tuple[Circle, ...] = ()


@dataclass(frozen=True, slots=True)
class AffectedArea:
    """What an update targets, ready for display."""

    update_id: int
    #: the human name: the update's description, else the named areas' names ("" when neither exists)
    name: str
    shapes: tuple[Shape, ...]
    #: the update's own `area` value (description, area slugs, polygon, circle), for public JSON
    data: dict[str, Any] = field(hash=False, compare=False)


@dataclass(frozen=True, slots=True)
class Outline:
    """An SVG drawing of the area: one path per polygon (exterior and holes, fill-rule evenodd), one circle
    per circle."""

    width: int
    height: int
    paths: tuple[str, ...]
    circles: tuple[tuple[float, float, float], ...]


# --- reading the stored JSON ------------------------------------------------------------------------------
def _point(value: Any) -> Point | None:
    if isinstance(value, list | tuple) and len(value) >= 2:
        lon, lat = value[0], value[1]
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lon, lat))
        if numbers and math.isfinite(lon) and math.isfinite(lat):
            return float(lon), float(lat)
    return None


def _ring(value: Any) -> Ring | None:
    if not isinstance(value, list | tuple):
        return None
    points = [p for p in (_point(v) for v in value) if p is not None]
    if points and points[0] != points[-1]:
        points.append(points[0])
    return tuple(points) if len(points) >= 4 else None


def _polygon(value: Any) -> Polygon | None:
    if not isinstance(value, list | tuple) or not value:
        return None
    exterior = _ring(value[0])
    if exterior is None:
        return None
    holes = tuple(r for r in (_ring(v) for v in value[1:]) if r is not None)
    return (exterior, *holes)


def polygons(geometry: Any) -> tuple[Polygon, ...]:
    """The polygons of a GeoJSON Polygon, MultiPolygon or a Feature holding one (anything else: none)."""
    if not isinstance(geometry, dict):
        return ()
    if geometry.get("type") == "Feature":
        return polygons(geometry.get("geometry"))
    coords = geometry.get("coordinates")
    if geometry.get("type") == "Polygon":
        found = [_polygon(coords)]
    elif geometry.get("type") == "MultiPolygon" and isinstance(coords, list):
        found = [_polygon(c) for c in coords]
    else:
        return ()
    return tuple(p for p in found if p is not None)


def _circles(value: Any) -> tuple[Circle, ...]:
    out = []
    for c in value if isinstance(value, list) else [value]:
        if not isinstance(c, dict):
            continue
        try:
            circle = Circle(float(c["lat"]), float(c["lon"]), float(c["radius_m"]))
        except (KeyError, TypeError, ValueError):
            continue
        if circle.radius_m > 0 and all(math.isfinite(v) for v in (circle.lat, circle.lon, circle.radius_m)):
            out.append(circle)
    return tuple(out)


def _core_description(session: Session, update: Update) -> str:
    """broadcaster.areas' name for an area without a description (named areas' names, "within 250 m of ...",
    "the marked area"), so the API, the messages and the public pages say the same."""
    try:
        from broadcaster.areas.service import area_description
    except ImportError:  # pragma: no cover - the areas package is part of the app
        return ""
    return area_description(session, update)


def affected_area(session: Session, update: Update) -> AffectedArea | None:
    """The update's area (its own polygon/circle and the named areas it lists), or None without one."""
    data = update.area
    if not isinstance(data, dict) or not data:
        return None
    description = str(data.get("description") or "").strip()
    slugs = [s for s in data.get("areas") or [] if isinstance(s, str)]
    named: list[Area] = []
    if slugs:
        by_slug = {a.slug: a for a in session.scalars(select(Area).where(Area.slug.in_(slugs)))}
        named = [by_slug[s] for s in dict.fromkeys(slugs) if s in by_slug]
    name = description or _core_description(session, update) or ", ".join(a.name for a in named)
    own = Shape(description or name or "Affected area", polygons(data.get("polygon")), _circles(data.get("circle")))
    shapes = [Shape(a.name, polygons(a.geometry)) for a in named]
    if own.polygons or own.circles:
        shapes.insert(0, own)
    if not shapes and not name:
        return None
    return AffectedArea(update_id=update.id, name=name, shapes=tuple(shapes), data=dict(data))


def incident_area(session: Session, incident: Incident, published: list[Update]) -> AffectedArea | None:
    """The area of the incident's latest published update that has one (`published`: timeline order)."""
    for update in reversed(published):
        if update.area and update.kind != UpdateKind.cancel.value:
            return affected_area(session, update)
    return None


# --- CAP 1.2 ----------------------------------------------------------------------------------------------
def degrees(value: float) -> str:
    """Decimal degrees to 6 places (about 0.1 m), trailing zeros dropped: 40.7359, -73.99, 0."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def cap_polygon(ring: Ring) -> str:
    """CAP 1.2 `<polygon>`: whitespace-separated "lat,lon" pairs, first and last the same (at least 4)."""
    pairs = [f"{degrees(lat)},{degrees(lon)}" for lon, lat in ring]
    if pairs[0] != pairs[-1]:
        pairs.append(pairs[0])
    return " ".join(pairs)


def cap_circle(circle: Circle) -> str:
    """CAP 1.2 `<circle>`: "lat,lon radius" with the radius in kilometres."""
    km = f"{circle.radius_m / 1000:.3f}".rstrip("0").rstrip(".")
    return f"{degrees(circle.lat)},{degrees(circle.lon)} {km}"


# --- SVG outline ------------------------------------------------------------------------------------------
def _bounds(shapes: tuple[Shape, ...]) -> tuple[float, float, float, float] | None:
    lons: list[float] = []
    lats: list[float] = []
    for shape in shapes:
        for poly in shape.polygons:
            for lon, lat in poly[0]:  # holes lie inside the exterior
                lons.append(lon)
                lats.append(lat)
    for shape in shapes:
        for c in shape.circles:
            dlat = c.radius_m / M_PER_DEG
            dlon = dlat / max(math.cos(math.radians(c.lat)), 0.01)
            lons += [c.lon - dlon, c.lon + dlon]
            lats += [c.lat - dlat, c.lat + dlat]
    if not lons:
        return None
    return min(lons), min(lats), max(lons), max(lats)


@lru_cache(maxsize=256)
def outline(shapes: tuple[Shape, ...]) -> Outline | None:
    """Project lon/lat onto an equirectangular box (longitudes scaled by cos(mid latitude)) fitted into
    SVG_WIDTH x SVG_HEIGHT, aspect kept. Points are rounded to 0.1 px and repeats dropped, so the path stays
    small however detailed the polygon. Cached per distinct area. (No antimeridian handling.)"""
    bounds = _bounds(shapes)
    if bounds is None:
        return None
    min_lon, min_lat, max_lon, max_lat = bounds
    k = max(math.cos(math.radians((min_lat + max_lat) / 2)), 0.01)
    w, h = (max_lon - min_lon) * k, max_lat - min_lat
    inner_w, inner_h = SVG_WIDTH - 2 * SVG_PAD, SVG_HEIGHT - 2 * SVG_PAD
    scale = min(inner_w / w if w > 0 else math.inf, inner_h / h if h > 0 else math.inf)
    if not math.isfinite(scale):
        scale = 1.0
    off_x = SVG_PAD + (inner_w - w * scale) / 2
    off_y = SVG_PAD + (inner_h - h * scale) / 2

    def xy(lon: float, lat: float) -> tuple[float, float]:
        return round(off_x + (lon - min_lon) * k * scale, 1), round(off_y + (max_lat - lat) * scale, 1)

    paths = []
    for shape in shapes:
        for poly in shape.polygons:
            parts = []
            for ring in poly:
                pts: list[tuple[float, float]] = []
                for lon, lat in ring:
                    p = xy(lon, lat)
                    if not pts or pts[-1] != p:
                        pts.append(p)
                parts.append("M" + " L".join(f"{x:g} {y:g}" for x, y in pts) + " Z")
            paths.append(" ".join(parts))
    circles = []
    for shape in shapes:
        for c in shape.circles:
            cx, cy = xy(c.lon, c.lat)
            circles.append((cx, cy, round(max(c.radius_m / M_PER_DEG * scale, 1.0), 1)))
    return Outline(SVG_WIDTH, SVG_HEIGHT, tuple(paths), tuple(circles))


def view(area: AffectedArea | None) -> dict[str, Any] | None:
    """What the status page templates need: the name and the outline (None without an area)."""
    if area is None:
        return None
    return {"name": area.name, "outline": outline(area.shapes), "update_id": area.update_id}


def public_json(area: AffectedArea | None) -> dict[str, Any] | None:
    """The area in public JSON: its name, the named area slugs and the update's own GeoJSON polygon/circle."""
    if area is None:
        return None
    out: dict[str, Any] = {"description": area.name, "areas": list(area.data.get("areas") or [])}
    if area.data.get("polygon"):
        out["polygon"] = area.data["polygon"]
    if area.data.get("circle"):
        out["circle"] = area.data["circle"]
    return out
