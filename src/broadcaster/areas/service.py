"""Named areas, an update's area, and who is inside it. Services take a session and never commit.

Targeting: a bounding-box prefilter in SQL (`ix_subscribers_lat_lon`) picks the located subscribers that may
be inside; shapely tests those points at once (`intersects_xy`: edges and vertices count as inside, holes do
not); the ids inside, plus the subscribers placed in the update's named areas, are written to `area_matches`
(COPY on PostgreSQL) under the update's id, and the audience filter is one `IN (SELECT ...)` on that table.
The matches are recomputed at every preview and at fan-out planning (once per transaction), so they follow
the current area, named-area shapes and subscriber locations.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from pydantic import ValidationError
from shapely.geometry.base import BaseGeometry
from sqlalchemy import ColumnElement, any_, delete, event, func, insert, select
from sqlalchemy.orm import Session, object_session

from broadcaster.areas.geometry import Circle, GeometryError, Matcher, parse_circle, parse_geometry
from broadcaster.areas.schemas import AREA_KINDS, MAX_IMPORT_FEATURES, AreaPatch, checked_geometry
from broadcaster.crud import get_by_slug
from broadcaster.domain import validate_slug
from broadcaster.errors import Conflict, Unprocessable, field_name
from broadcaster.models import Update
from broadcaster.models.areas import Area, AreaMatch, SubscriberArea
from broadcaster.models.delivery import Subscriber
from broadcaster.publishing import approval
from broadcaster.publishing.schemas import AreaBinding

log = logging.getLogger(__name__)

#: matches from which PostgreSQL's statistics of area_matches are refreshed at once
ANALYZE_AFTER_ROWS = 5_000
#: more bounding boxes than this (a MultiPolygon of many parts) are merged into one for the SQL prefilter
MAX_PREFILTER_BOXES = 16


# ---------------------------------------------------------------- named areas


def list_areas(session: Session) -> list[Area]:
    return list(session.scalars(select(Area).order_by(Area.slug)))


def get_area(session: Session, slug: str, *, field: str = "slug") -> Area:
    """The area `slug`: 404 when it is the addressed resource (`field="slug"`), else 422 naming `field`."""
    return get_by_slug(session, Area, slug, noun="area", field=field)


def resolve_slugs(session: Session, slugs: Sequence[str], *, field: str) -> list[Area]:
    """The named areas, in order; 422 naming `field[i]` for the first unknown slug."""
    if not slugs:
        return []
    found = {a.slug: a for a in session.scalars(select(Area).where(Area.slug.in_(list(slugs))))}
    for i, slug in enumerate(slugs):
        if slug not in found:
            raise Unprocessable(f"Unknown area {slug!r}.", field=f"{field}[{i}]", code="unknown_area")
    return [found[s] for s in slugs]


def _set_geometry(area: Area, geometry: dict[str, Any], shape: BaseGeometry) -> None:
    area.geometry = geometry
    area.min_lon, area.min_lat, area.max_lon, area.max_lat = (float(v) for v in shape.bounds)


def _feature(index: int, feature: Any) -> tuple[dict[str, Any], BaseGeometry]:
    """Validate one GeoJSON Feature; Unprocessable naming `features[index]...`."""
    where = f"features[{index}]"
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise Unprocessable(f"{where}: must be a GeoJSON Feature object", field=where)
    props = feature.get("properties")
    if not isinstance(props, dict):
        raise Unprocessable(f"{where}.properties: must be an object with slug and name", field=f"{where}.properties")
    slug = props.get("slug")
    if not isinstance(slug, str) or not slug:
        raise Unprocessable(f"{where}.properties.slug: is required", field=f"{where}.properties.slug")
    try:
        validate_slug(slug)
    except ValueError as exc:
        raise Unprocessable(f"{where}.properties.slug: {exc}", field=f"{where}.properties.slug") from None
    if len(slug) > 64:
        raise Unprocessable(f"{where}.properties.slug: at most 64 characters", field=f"{where}.properties.slug")
    name = props.get("name", slug)
    if not isinstance(name, str) or not name.strip() or len(name) > 200 or "\x00" in name:
        raise Unprocessable(f"{where}.properties.name: 1-200 characters of text", field=f"{where}.properties.name")
    kind = props.get("kind", "other")
    if kind not in AREA_KINDS:
        raise Unprocessable(
            f"{where}.properties.kind: one of {', '.join(AREA_KINDS)}", field=f"{where}.properties.kind"
        )
    description = props.get("description", "")
    if not isinstance(description, str) or len(description) > 2000 or "\x00" in description:
        raise Unprocessable(
            f"{where}.properties.description: text of at most 2000 characters",
            field=f"{where}.properties.description",
        )
    geometry = feature.get("geometry")
    try:
        shape = parse_geometry(geometry)
    except GeometryError as exc:
        path = f"{where}.geometry" + (f".{exc.path}" if exc.path else "")
        raise Unprocessable(f"{path}: {exc.message}", field=path) from None
    values = {"slug": slug, "name": name.strip(), "kind": kind, "description": description, "geometry": geometry}
    return values, shape


def geometry_version(geometry: Any) -> str:
    """A version of a geometry: a hash of its canonical JSON (any change to a coordinate changes it)."""
    raw = json.dumps(geometry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _naming(*slugs: str) -> Callable[[Update], bool]:
    """A test: whether an update's area names one of `slugs`."""
    wanted = set(slugs)

    def names(update: Update) -> bool:
        area = _area_of(update)
        return area is not None and bool(wanted & set(area.get("areas") or []))

    return names


def import_collection(session: Session, body: Any, actor: str) -> tuple[list[str], list[str]]:
    """Upsert every feature of a GeoJSON FeatureCollection (by `properties.slug`); all or nothing. An area
    replaced with another geometry (or name) voids the pending approvals of the updates naming it.

    Returns (created slugs, updated slugs). Any bad feature raises Unprocessable naming it before anything
    is written."""
    if not isinstance(body, dict) or body.get("type") != "FeatureCollection":
        raise Unprocessable("body must be a GeoJSON FeatureCollection", field="type")
    features = body.get("features")
    if not isinstance(features, list) or not features:
        raise Unprocessable("features: a non-empty array of Feature objects is required", field="features")
    if len(features) > MAX_IMPORT_FEATURES:
        raise Unprocessable(f"features: at most {MAX_IMPORT_FEATURES} per import", field="features")
    parsed = [_feature(i, f) for i, f in enumerate(features)]
    seen: dict[str, int] = {}
    for i, (values, _shape) in enumerate(parsed):
        if values["slug"] in seen:
            raise Unprocessable(
                f"features[{i}].properties.slug: {values['slug']!r} is also features[{seen[values['slug']]}]",
                field=f"features[{i}].properties.slug",
            )
        seen[values["slug"]] = i
    existing = {a.slug: a for a in session.scalars(select(Area).where(Area.slug.in_(list(seen))))}
    watched = approval.watch(session, _naming(*existing))
    created: list[str] = []
    updated: list[str] = []
    for values, shape in parsed:
        area = existing.get(values["slug"])
        if area is None:
            area = Area(slug=values["slug"])
            session.add(area)
            created.append(values["slug"])
        else:
            updated.append(values["slug"])
        area.name, area.kind, area.description = values["name"], values["kind"], values["description"]
        _set_geometry(area, values["geometry"], shape)
    session.flush()
    watched.void(session, actor, cause="areas imported")
    return created, updated


def update_area(session: Session, slug: str, patch: AreaPatch, actor: str) -> Area:
    """Edit a named area; a new geometry (or name) voids the pending approvals of the updates naming it."""
    area = get_area(session, slug)
    watched = approval.watch(session, _naming(slug))
    values = patch.model_dump(exclude_unset=True)
    for key in ("name", "kind", "description"):
        if values.get(key) is not None:
            setattr(area, key, values[key])
    if patch.geometry is not None:
        _set_geometry(area, patch.geometry, parse_geometry(patch.geometry))
    session.flush()
    watched.void(session, actor, cause=f"area {slug} edited")
    return area


def _used_by_drafts(session: Session, slug: str) -> list[int]:
    """Ids of unpublished updates whose area names `slug` (JSON is scanned in Python: drafts are few)."""
    rows = session.execute(
        select(Update.id, Update.area).where(Update.area.is_not(None), Update.state != "published")
    ).all()
    return [uid for uid, area in rows if slug in ((area or {}).get("areas") or [])]


def delete_area(session: Session, slug: str) -> None:
    """Delete a named area (its placements go with it); 409 while an unpublished update targets it."""
    area = get_area(session, slug)
    if users := _used_by_drafts(session, slug):
        raise Conflict(
            f"Area {slug!r} is named by unpublished update(s) {', '.join(map(str, users[:10]))}; change them first.",
            field="slug",
        )
    session.delete(area)
    session.flush()


def count_subscribers(session: Session, slug: str) -> dict[str, int]:
    """Subscribers placed in the area, located inside it, and both together (each counted once)."""
    area = get_area(session, slug)
    shape = parse_geometry(area.geometry)
    located_ids = _located_inside(session, Matcher([shape], []))
    placed_ids = np.fromiter(
        session.scalars(select(SubscriberArea.subscriber_id).where(SubscriberArea.area_id == area.id)), dtype=np.int64
    )
    return {
        "subscribers": len(np.union1d(located_ids, placed_ids)),
        "placed": len(placed_ids),
        "located": len(located_ids),
    }


# ---------------------------------------------------------------- subscribers' areas


def set_subscriber_areas(session: Session, subscriber_id: int, slugs: Sequence[str], *, field: str = "areas") -> None:
    """Place a subscriber in exactly these named areas (422 naming `field[i]` for an unknown slug)."""
    areas = resolve_slugs(session, list(dict.fromkeys(slugs)), field=field)
    session.execute(delete(SubscriberArea).where(SubscriberArea.subscriber_id == subscriber_id))
    if areas:
        session.execute(insert(SubscriberArea), [{"subscriber_id": subscriber_id, "area_id": a.id} for a in areas])


def subscriber_area_slugs(session: Session, subscriber_ids: Sequence[int]) -> dict[int, list[str]]:
    """Named-area slugs per subscriber id (sorted)."""
    out: dict[int, list[str]] = {sid: [] for sid in subscriber_ids}
    if not subscriber_ids:
        return out
    rows = session.execute(
        select(SubscriberArea.subscriber_id, Area.slug)
        .join(Area, Area.id == SubscriberArea.area_id)
        .where(SubscriberArea.subscriber_id.in_(list(subscriber_ids)))
        .order_by(Area.slug)
    ).all()
    for sid, slug in rows:
        out.setdefault(sid, []).append(slug)
    return out


# ---------------------------------------------------------------- an update's area


def validate_update_area(session: Session, area: dict[str, Any] | None, *, field: str = "area") -> None:
    """Check what pydantic cannot: the named areas exist (422 naming `area.areas[i]`)."""
    if area:
        resolve_slugs(session, list(area.get("areas") or []), field=f"{field}.areas")


def _area_of(update: Update) -> dict[str, Any] | None:
    area = update.area
    return area if isinstance(area, dict) and area else None


def _shapes(session: Session, area: dict[str, Any]) -> tuple[list[Area], list[BaseGeometry], list[Circle]]:
    """The named areas that still exist (one deleted since the update was published contributes nothing),
    the polygons (named areas' and the update's own) and the circle."""
    slugs = list(area.get("areas") or [])
    found = {a.slug: a for a in session.scalars(select(Area).where(Area.slug.in_(slugs)))} if slugs else {}
    named = [found[s] for s in slugs if s in found]
    polygons = [parse_geometry(a.geometry) for a in named]
    if area.get("polygon"):
        polygons.append(parse_geometry(area["polygon"]))
    circles = [parse_circle(area["circle"])] if area.get("circle") else []
    return named, polygons, circles


def area_geometries(session: Session, update: Update) -> list[BaseGeometry]:
    """The update's area as shapely geometries ([lon, lat]): each named area, then its polygon, then its circle
    drawn as a 64-sided polygon. Empty when the update has no area. For CAP `<area>` and the status page."""
    area = _area_of(update)
    if area is None:
        return []
    _named, polygons, circles = _shapes(session, area)
    return polygons + [c.polygon() for c in circles]


def area_binding(session: Session, update: Update) -> dict[str, Any] | None:
    """`{"areas": [...]}`: what an approval of `update` binds of its area (hooks.content_binding): each named
    area with its name and geometry version (None when it no longer exists), then its own polygon and circle."""
    area = _area_of(update)
    if area is None:
        return None
    slugs = list(area.get("areas") or [])
    found = {a.slug: a for a in session.scalars(select(Area).where(Area.slug.in_(slugs)))} if slugs else {}
    out = [
        AreaBinding(slug=s, name=found[s].name, geometry_version=geometry_version(found[s].geometry))
        if s in found
        else AreaBinding(slug=s, name=s, geometry_version=None)
        for s in slugs
    ]
    if area.get("polygon"):
        out.append(AreaBinding(slug=None, name="the marked area", geometry_version=geometry_version(area["polygon"])))
    if area.get("circle"):
        c = area["circle"]
        radius = float(c["radius_m"])
        size = f"{radius / 1000:g} km" if radius >= 1000 else f"{radius:g} m"
        name = f"within {size} of {float(c['lat']):.5f}, {float(c['lon']):.5f}"
        out.append(AreaBinding(slug=None, name=name, geometry_version=geometry_version(c)))
    return {"areas": out}


def area_description(session: Session, update: Update) -> str:
    """How to name the update's area to people: its `description`, else the named areas' names, a circle's
    radius and centre, or "the marked area". Empty when the update has no area."""
    area = _area_of(update)
    if area is None:
        return ""
    if (area.get("description") or "").strip():
        return str(area["description"]).strip()
    parts: list[str] = []
    slugs = list(area.get("areas") or [])
    if slugs:
        names = dict(session.execute(select(Area.slug, Area.name).where(Area.slug.in_(slugs))).tuples().all())
        parts += [names.get(s, s) for s in slugs]
    if area.get("circle"):
        c = area["circle"]
        radius = float(c["radius_m"])
        size = f"{radius / 1000:g} km" if radius >= 1000 else f"{radius:g} m"
        parts.append(f"within {size} of {float(c['lat']):.5f}, {float(c['lon']):.5f}")
    if area.get("polygon"):
        parts.append("the marked area")
    return ", ".join(parts)


def _boxes(matcher: Matcher) -> list[tuple[float, float, float, float]]:
    boxes = matcher.boxes()
    if len(boxes) > MAX_PREFILTER_BOXES:
        boxes = [
            (
                min(b[0] for b in boxes),
                min(b[1] for b in boxes),
                max(b[2] for b in boxes),
                max(b[3] for b in boxes),
            )
        ]
    return boxes


def _candidates(session: Session, box: tuple[float, float, float, float]) -> np.ndarray:
    """(n, 3) float64 array of id, lon, lat of located subscribers in the box (index range scan)."""
    min_lon, min_lat, max_lon, max_lat = box
    sql = (
        "SELECT id, lon, lat FROM subscribers WHERE lat IS NOT NULL AND lat BETWEEN %s AND %s AND lon BETWEEN %s AND %s"
    )
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        sql = sql.replace("%s", "?")
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, (min_lat, max_lat, min_lon, max_lon))
        rows = cursor.fetchall()
    finally:
        cursor.close()
    if not rows:
        return np.empty((0, 3), dtype=np.float64)
    return np.asarray(rows, dtype=np.float64)


def _located_inside(session: Session, matcher: Matcher) -> np.ndarray:
    """Ids (sorted, unique int64) of the located subscribers inside the matcher's union."""
    found: list[np.ndarray] = []
    for box in _boxes(matcher):
        cand = _candidates(session, box)
        if len(cand):
            mask = matcher.contains(cand[:, 1], cand[:, 2])
            found.append(cand[mask, 0].astype(np.int64))
    if not found:
        return np.empty(0, dtype=np.int64)
    return np.unique(np.concatenate(found))


def _ids(session: Session, sql: str, params: tuple[Any, ...]) -> np.ndarray:
    """One integer column as an int64 array, through the driver's cursor (no ORM rows)."""
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        sql = sql.replace("%s", "?")
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    finally:
        cursor.close()
    return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))


def _placed(session: Session, named: list[Area]) -> np.ndarray:
    """Ids of the subscribers placed in the named areas."""
    if not named:
        return np.empty(0, dtype=np.int64)
    stmt = select(SubscriberArea.subscriber_id).where(SubscriberArea.area_id.in_([a.id for a in named])).distinct()
    return np.fromiter(session.scalars(stmt), dtype=np.int64)


def _write_matches(session: Session, key: int, ids: np.ndarray) -> tuple[int, int]:
    """Make the rows under `key` exactly `ids` (sorted, unique), writing only the difference with what is
    stored: a refresh where nobody moved in or out writes nothing. Returns (added, removed)."""
    conn = session.connection()
    postgres = conn.dialect.name == "postgresql"
    if postgres:  # one refresh of a key at a time (two would insert the same rows)
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (key,))
    stored = np.sort(_ids(session, "SELECT subscriber_id FROM area_matches WHERE match_key = %s", (key,)))
    added = np.setdiff1d(ids, stored, assume_unique=True)
    removed = np.setdiff1d(stored, ids, assume_unique=True)
    if len(removed) == len(stored) and len(stored):
        session.execute(delete(AreaMatch).where(AreaMatch.match_key == key))
    elif len(removed):
        for chunk in np.array_split(removed, max(1, len(removed) // 10_000 + 1)):
            session.execute(
                delete(AreaMatch).where(AreaMatch.match_key == key, AreaMatch.subscriber_id.in_(chunk.tolist()))
            )
    if not len(added):
        return 0, len(removed)
    if postgres:
        buf = io.StringIO()
        np.savetxt(buf, np.column_stack([np.full(len(added), key, dtype=np.int64), added]), fmt="%d", delimiter="\t")
        raw = conn.connection.dbapi_connection
        with raw.cursor() as cur, cur.copy("COPY area_matches (match_key, subscriber_id) FROM STDIN") as copy:  # type: ignore[union-attr]
            copy.write(buf.getvalue())
        if len(added) >= ANALYZE_AFTER_ROWS:
            # fresh statistics (ANALYZE counts this transaction's own rows): the audience query then knows how
            # many subscribers the area holds
            conn.exec_driver_sql("ANALYZE area_matches")
    else:
        session.execute(insert(AreaMatch), [{"match_key": key, "subscriber_id": int(i)} for i in added])
    return len(added), len(removed)


def refresh_matches(session: Session, key: int, area: dict[str, Any]) -> int:
    """Recompute who is inside `area` (located inside, or placed in a named area) and make the rows under
    `key` exactly them; returns how many."""
    named, polygons, circles = _shapes(session, area)
    ids = np.union1d(_located_inside(session, Matcher(polygons, circles)), _placed(session, named))
    session.flush()
    _write_matches(session, key, ids)
    return len(ids)


def _session_of(update: Update) -> Session | None:
    """The session an update (or, for an unsaved draft, its incident's category) belongs to."""
    incident = getattr(update, "incident", None)
    for obj in (update, incident, getattr(incident, "category", None)):
        if obj is not None and (session := object_session(obj)) is not None:
            return session
    return None


def match_key(session: Session, update: Update) -> int | None:
    """The `area_matches` key holding who is inside the update's area, computed once per transaction; None
    when the update has no area. An unsaved draft gets a one-off negative key whose rows are deleted before
    the transaction commits."""
    area = _area_of(update)
    if area is None:
        return None
    txn = session.get_transaction()
    fingerprint = (update.id if update.id is not None else id(update), json.dumps(area, sort_keys=True))
    cache: dict[Any, Any] = session.info.setdefault("area_matches", {})
    if cache.get("txn") is not txn:
        cache.clear()
        cache["txn"] = txn
    if fingerprint in cache:
        return int(cache[fingerprint])
    if update.id is not None:
        key = int(update.id)
    else:
        key = -random.randint(1, 2**62)

        def _forget(sess: Session) -> None:
            sess.execute(delete(AreaMatch).where(AreaMatch.match_key == key))

        event.listen(session, "before_commit", _forget, once=True)
    refresh_matches(session, key, area)
    cache[fingerprint] = key
    return key


def area_condition(session: Session | None, update: Update) -> ColumnElement[bool] | None:
    """The WHERE clause keeping the subscribers inside the update's area; None when it has no area."""
    if _area_of(update) is None:
        return None
    session = session or _session_of(update)
    if session is None:
        raise RuntimeError("area targeting needs the update's session")
    key = match_key(session, update)
    matched = select(AreaMatch.subscriber_id).where(AreaMatch.match_key == key)
    if session.get_bind().dialect.name == "postgresql":
        # `id = ANY(ARRAY(SELECT ...))`: the area's ids drive the query (primary-key lookups), whatever the
        # planner guesses for the other audience subqueries; a plain IN let it scan a whole category first
        return Subscriber.id == any_(func.array(matched.scalar_subquery()))
    return Subscriber.id.in_(matched)


def check_geometry_body(value: Any, field: str) -> dict[str, Any]:
    """Validate a geometry sent outside a pydantic model: 422 naming `field` and the bad part."""
    try:
        return checked_geometry(value)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = field_name([field, *err["loc"]]) or field
        raise Unprocessable(f"{where}: {err['msg']}", field=where) from None
