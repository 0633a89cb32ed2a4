"""GeoJSON geometry checks and point-in-area tests with shapely 2 (vectorised, GEOS underneath).

Coordinates are WGS 84 degrees, GeoJSON order `[lon, lat]`. A point on an area's edge or vertex counts as
inside (`intersects_xy`, i.e. "covers" semantics); a point inside a hole is outside (it is on neither the
polygon's interior nor its boundary).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

#: the most positions (over all rings of all polygons) one geometry may have
MAX_VERTICES = 10_000
#: the largest bounding box (degrees of latitude, and of longitude) one geometry may span: about
#: 1,100 km north-south: a region, not a continent (a mistake like swapped lat/lon is caught here)
MAX_SPAN_DEGREES = 10.0
#: the largest circle radius (metres)
MAX_RADIUS_M = 500_000.0
#: mean Earth radius (metres) of the haversine distance used for circles
EARTH_RADIUS_M = 6_371_008.8
#: metres per degree of latitude on that sphere
METRES_PER_DEGREE = math.pi * EARTH_RADIUS_M / 180.0
#: a point this close to a circle's rim (relative) is on it, so inside
CIRCLE_TOLERANCE = 1e-9


class GeometryError(ValueError):
    """A bad geometry: `path` is where, relative to the geometry (e.g. `coordinates[0][3]`)."""

    def __init__(self, message: str, path: str = ""):
        super().__init__(message)
        self.message = message
        self.path = path


def _join(prefix: str, path: str) -> str:
    if not path:
        return prefix
    if not prefix:
        return path
    return f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"


def field_path(prefix: str, exc: GeometryError) -> str:
    """`area.polygon` + `coordinates[0]` -> `area.polygon.coordinates[0]`."""
    return _join(prefix, exc.path)


def _number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _check_ring(ring: Any, path: str) -> list[tuple[float, float]]:
    if not isinstance(ring, list):
        raise GeometryError("a linear ring must be an array of positions", path)
    if len(ring) < 4:
        raise GeometryError(f"a linear ring needs at least 4 positions (it has {len(ring)})", path)
    out: list[tuple[float, float]] = []
    for i, pos in enumerate(ring):
        where = f"{path}[{i}]"
        if not isinstance(pos, list) or len(pos) not in (2, 3) or not all(_number(v) for v in pos):
            raise GeometryError("a position must be [lon, lat] (numbers; an optional 3rd is altitude)", where)
        lon, lat = float(pos[0]), float(pos[1])
        if not -180.0 <= lon <= 180.0:
            raise GeometryError(f"longitude {lon} is outside [-180, 180] (GeoJSON order is [lon, lat])", where)
        if not -90.0 <= lat <= 90.0:
            raise GeometryError(f"latitude {lat} is outside [-90, 90] (GeoJSON order is [lon, lat])", where)
        out.append((lon, lat))
    if out[0] != out[-1]:
        raise GeometryError("the ring is not closed: its last position must equal its first", path)
    return out


def _check_polygon(rings: Any, path: str) -> list[list[tuple[float, float]]]:
    if not isinstance(rings, list) or not rings:
        raise GeometryError("a polygon must be a non-empty array of linear rings", path)
    return [_check_ring(ring, f"{path}[{i}]") for i, ring in enumerate(rings)]


def parse_geometry(value: Any) -> BaseGeometry:
    """Validate a GeoJSON Polygon/MultiPolygon geometry object and return it as a shapely geometry.

    Raises GeometryError naming the offending part; checks type, closed rings of at least 4 positions, lon/lat
    ranges, the vertex count, the bounding-box size and validity (no self-intersection, holes inside)."""
    if not isinstance(value, dict):
        raise GeometryError("must be a GeoJSON geometry object")
    kind = value.get("type")
    if kind not in ("Polygon", "MultiPolygon"):
        raise GeometryError(f"type must be 'Polygon' or 'MultiPolygon', not {kind!r}", "type")
    if "coordinates" not in value:
        raise GeometryError("coordinates are missing", "coordinates")
    coords = value["coordinates"]
    if kind == "Polygon":
        polygons = [_check_polygon(coords, "coordinates")]
    else:
        if not isinstance(coords, list) or not coords:
            raise GeometryError("a MultiPolygon must be a non-empty array of polygons", "coordinates")
        polygons = [_check_polygon(p, f"coordinates[{i}]") for i, p in enumerate(coords)]
    vertices = sum(len(ring) for poly in polygons for ring in poly)
    if vertices > MAX_VERTICES:
        raise GeometryError(f"too many positions: {vertices} (at most {MAX_VERTICES})", "coordinates")
    parts = [shapely.Polygon(poly[0], poly[1:]) for poly in polygons]
    geom: BaseGeometry = parts[0] if kind == "Polygon" else shapely.MultiPolygon(parts)
    min_lon, min_lat, max_lon, max_lat = geom.bounds
    if max_lon - min_lon > MAX_SPAN_DEGREES or max_lat - min_lat > MAX_SPAN_DEGREES:
        raise GeometryError(
            f"the area spans {max_lon - min_lon:.2f}° of longitude and {max_lat - min_lat:.2f}° of latitude; "
            f"at most {MAX_SPAN_DEGREES:g}° each",
            "coordinates",
        )
    if not shapely.is_valid(geom):
        raise GeometryError(f"invalid geometry: {shapely.is_valid_reason(geom)}", "coordinates")
    if geom.area == 0:
        raise GeometryError("the area is empty (zero size)", "coordinates")
    return geom


@dataclass(frozen=True)
class Circle:
    """A centre and a radius in metres (great-circle distance on a sphere)."""

    lat: float
    lon: float
    radius_m: float

    def bounds(self) -> tuple[float, float, float, float]:
        """(min_lon, min_lat, max_lon, max_lat) enclosing the circle, a little generous."""
        dlat = self.radius_m / METRES_PER_DEGREE * 1.001
        cos_lat = max(math.cos(math.radians(min(89.9, abs(self.lat) + dlat))), 1e-6)
        dlon = min(180.0, dlat / cos_lat)
        return (
            max(-180.0, self.lon - dlon),
            max(-90.0, self.lat - dlat),
            min(180.0, self.lon + dlon),
            min(90.0, self.lat + dlat),
        )

    def contains(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Vectorised: which points are within the radius (on the rim counts as inside)."""
        return haversine_m(self.lat, self.lon, lat, lon) <= self.radius_m * (1 + CIRCLE_TOLERANCE) + 1e-6

    def polygon(self, segments: int = 64) -> BaseGeometry:
        """The circle drawn as a polygon (for maps, CAP and the status page; targeting uses the exact distance)."""
        d = self.radius_m / EARTH_RADIUS_M
        lat1, lon1 = math.radians(self.lat), math.radians(self.lon)
        points = []
        for i in range(segments):
            bearing = 2 * math.pi * i / segments
            lat2 = math.asin(math.sin(lat1) * math.cos(d) + math.cos(lat1) * math.sin(d) * math.cos(bearing))
            lon2 = lon1 + math.atan2(
                math.sin(bearing) * math.sin(d) * math.cos(lat1), math.cos(d) - math.sin(lat1) * math.sin(lat2)
            )
            points.append((math.degrees(lon2), math.degrees(lat2)))
        points.append(points[0])
        return shapely.Polygon(points)


def haversine_m(lat0: float, lon0: float, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Great-circle distance (metres) from (lat0, lon0) to each point."""
    phi0, phi = math.radians(lat0), np.radians(lat)
    dphi = phi - phi0
    dlmb = np.radians(lon - lon0)
    a = np.sin(dphi / 2) ** 2 + math.cos(phi0) * np.cos(phi) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def parse_circle(value: Any) -> Circle:
    """Validate `{"lat", "lon", "radius_m"}`; GeometryError names the key."""
    if not isinstance(value, dict):
        raise GeometryError("must be an object with lat, lon and radius_m")
    for key in ("lat", "lon", "radius_m"):
        if key not in value:
            raise GeometryError(f"{key} is missing", key)
        if not _number(value[key]):
            raise GeometryError(f"{key} must be a number", key)
    extra = sorted(set(value) - {"lat", "lon", "radius_m"})
    if extra:
        raise GeometryError(f"unknown key {extra[0]!r}", extra[0])
    lat, lon, radius = float(value["lat"]), float(value["lon"]), float(value["radius_m"])
    if not -90.0 <= lat <= 90.0:
        raise GeometryError(f"latitude {lat} is outside [-90, 90]", "lat")
    if not -180.0 <= lon <= 180.0:
        raise GeometryError(f"longitude {lon} is outside [-180, 180]", "lon")
    if not 0.0 < radius <= MAX_RADIUS_M:
        raise GeometryError(f"radius_m must be > 0 and at most {MAX_RADIUS_M:g} metres", "radius_m")
    return Circle(lat=lat, lon=lon, radius_m=radius)


class Matcher:
    """The union of polygons and circles, tested against many points at once."""

    def __init__(self, polygons: Sequence[BaseGeometry], circles: Sequence[Circle]):
        self.polygon = shapely.union_all(list(polygons)) if polygons else None
        if self.polygon is not None:
            shapely.prepare(self.polygon)
        self.circles = list(circles)

    def boxes(self) -> list[tuple[float, float, float, float]]:
        """Bounding boxes (min_lon, min_lat, max_lon, max_lat) for the SQL prefilter: one per part."""
        out: list[tuple[float, float, float, float]] = []
        if self.polygon is not None:
            for part in shapely.get_parts(self.polygon):
                b = part.bounds
                out.append((b[0], b[1], b[2], b[3]))
        out += [c.bounds() for c in self.circles]
        return out

    def contains(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """A boolean mask: which points are inside the union (edges and vertices count)."""
        mask = np.zeros(len(lon), dtype=bool)
        if self.polygon is not None and len(lon):
            mask |= shapely.intersects_xy(self.polygon, lon, lat)
        for circle in self.circles:
            mask |= circle.contains(lon, lat)
        return mask
