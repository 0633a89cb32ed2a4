"""Import jobs: storing an upload, checking it, the batched upsert of parsed rows, and the report.

Functions that take a `Session` never commit (the caller's transaction); the others open their own short
transactions, so an upload never holds SQLite's write lock while the client is still sending.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.db import get_engine, session_scope
from broadcaster.errors import NotFound
from broadcaster.imports import parsing
from broadcaster.imports.parsing import Row
from broadcaster.models import Category, utcnow
from broadcaster.models.areas import Area, SubscriberArea
from broadcaster.models.delivery import Subscriber
from broadcaster.models.imports import ImportChunk, ImportJob, ImportRowError
from broadcaster.models.services import Service
from broadcaster.subscribers import memberships

#: the upload is stored in pieces of this size
CHUNK_BYTES = 1 << 20
#: rows per batch: one transaction (and one lookup of existing subscribers) each
BATCH_ROWS = 1000
#: rejected rows kept in the error report per job; more are counted in `rejected` but not listed
MAX_REPORTED_ROWS = 10_000


# --- upload ------------------------------------------------------------------------------------------------


def create_job(actor: str, filename: str) -> int:
    with session_scope() as session:
        job = ImportJob(actor=actor[:200], filename=filename[:255], state="uploading")
        session.add(job)
        session.flush()
        return job.id


def store_chunk(job_id: int, seq: int, data: bytes) -> None:
    with session_scope() as session:
        session.add(ImportChunk(job_id=job_id, seq=seq, data=data))
        session.execute(
            update(ImportJob)
            .where(ImportJob.id == job_id)
            .values(chunks=seq + 1, size_bytes=ImportJob.size_bytes + len(data), updated_at=utcnow())
        )


def discard(job_id: int) -> None:
    """Forget an upload that failed (its chunks go with it): a refused upload leaves nothing behind."""
    with session_scope() as session:
        session.execute(delete(ImportChunk).where(ImportChunk.job_id == job_id))
        session.execute(delete(ImportJob).where(ImportJob.id == job_id))


def seal(job_id: int, actor: str) -> None:
    """Check the stored file from end to end (encoding, header, CSV syntax) and queue it; `CsvProblem` (422)
    before any subscriber is written."""
    total = parsing.check(get_engine(), job_id)
    with session_scope() as session:
        job = session.get(ImportJob, job_id)
        assert job is not None
        job.total_rows, job.state = total, "queued"
        audit.record(session, actor, "subscriber.import", "import", job_id, bytes=job.size_bytes, rows=total)


# --- the batched upsert -----------------------------------------------------------------------------------


@dataclass
class BatchResult:
    created: int = 0
    updated: int = 0
    rejected: list[Row] = field(default_factory=list)


#: every column of a subscriber created by an import (one executemany needs the same keys in every row)
_NEW_ROW: dict[str, object] = {
    "source": "csv",
    "email_confirmed": True,
    "email_opted_out": False,
    "sms_opted_out": False,
    "phone": None,
    "email": None,
}


def _get(target: Subscriber | dict[str, object], key: str) -> object:
    return target.get(key) if isinstance(target, dict) else getattr(target, key)


def _values(row: Row, body_fields: dict[str, object], only_filled: bool) -> dict[str, object]:
    """Column values and choices (categories, tags, services: lists of slugs) of a row."""
    values: dict[str, object] = {}
    for key, value in body_fields.items():
        if only_filled and not row.cells.get(key):
            continue  # an update only touches the cells the row fills in
        if key == "email" and value:
            value = str(value).lower()
        values[key] = value
    return values


def _split_choices(values: dict[str, object]) -> dict[str, list[str]]:
    """Take the choices out of `values` (they become join rows, not columns)."""
    return {k: list(values.pop(k) or []) for k in memberships.KINDS if k in values}  # type: ignore[call-overload]


def upsert(session: Session, rows: list[Row], known_categories: set[str]) -> BatchResult:
    """Create or update the subscribers of one batch (matched by phone or email, in the database or earlier in
    the batch); rows that fail validation, name unknown categories or services, or match two subscribers are
    rejected. Categories, tags and services are written as join rows in bulk (a few statements per batch)."""
    result = BatchResult()
    good: list[Row] = []
    named_services = {s for r in rows if r.body is not None for s in r.body.services}
    known_services = (
        set(session.scalars(select(Service.slug).where(Service.slug.in_(named_services)))) if named_services else set()
    )
    locate(rows)
    area_ids = known_areas(session, rows)
    for row in rows:
        if row.body is not None and not row.errors:
            missing = [c for c in row.body.categories if c not in known_categories]
            if missing:
                row.errors = [("categories", f"unknown category {missing[0]!r}")]
            elif unknown_area := [a for a in row.body.areas if a not in area_ids]:
                row.errors = [("areas", f"unknown area {unknown_area[0]!r}")]
            elif unknown := [s for s in row.body.services if s not in known_services]:
                row.errors = [("services", f"unknown service {unknown[0]!r}")]
        (result.rejected if row.errors or row.body is None else good).append(row)
    phones = {r.body.phone for r in good if r.body and r.body.phone}
    emails = {str(r.body.email).lower() for r in good if r.body and r.body.email}
    by_phone: dict[str, Subscriber | dict[str, object]] = {}
    by_email: dict[str, Subscriber | dict[str, object]] = {}
    if phones or emails:
        conds = []
        if phones:
            conds.append(Subscriber.phone.in_(phones))
        if emails:
            conds.append(Subscriber.email.in_(emails))
        for sub in session.scalars(select(Subscriber).where(or_(*conds))):
            if sub.phone:
                by_phone[sub.phone] = sub
            if sub.email:
                by_email[sub.email] = sub
    new: list[dict[str, object]] = []  # inserted in one executemany at the end of the batch
    changes: dict[int, dict[str, list[str]]] = {}  # choices of existing subscribers, replaced in bulk
    placed: dict[int, list[int]] = {}  # named areas (ids) of subscribers whose row gives `areas`
    for row in good:
        assert row.body is not None
        email = str(row.body.email).lower() if row.body.email else None
        found = {id(s): s for s in (by_phone.get(row.body.phone or ""), by_email.get(email or "")) if s is not None}
        if len(found) > 1:
            row.errors = [("email", "phone and email belong to two different subscribers")]
            result.rejected.append(row)
            continue
        fields = row.body.model_dump(exclude={"email_confirmed"})
        if found:
            target = next(iter(found.values()))
            values = _values(row, fields, only_filled=True)
            if isinstance(target, dict):  # created earlier in this batch
                target.update(values)
            else:
                if "areas" in values:
                    placed[target.id] = [area_ids[a] for a in values.pop("areas")]  # type: ignore[attr-defined]
                changes.setdefault(target.id, {}).update(_split_choices(values))
                for key, value in values.items():
                    setattr(target, key, value)
                target.updated_at = utcnow()
            result.updated += 1
        else:
            now = utcnow()
            target = _NEW_ROW | _values(row, fields, only_filled=False) | {"created_at": now, "updated_at": now}
            new.append(target)
            result.created += 1
        phone, address = _get(target, "phone"), _get(target, "email")
        if phone:
            by_phone[str(phone)] = target
        if address:
            by_email[str(address)] = target
    if new:
        choices = [_split_choices(target) for target in new]
        for target, choice in zip(new, choices, strict=True):
            target["all_categories"] = memberships.everything(choice)
        areas = [list(target.pop("areas", None) or []) for target in new]  # type: ignore[call-overload]
        ids = session.scalars(insert(Subscriber).returning(Subscriber.id, sort_by_parameter_order=True), new).all()
        placed |= {sid: [area_ids[a] for a in slugs] for sid, slugs in zip(ids, areas, strict=True) if slugs}
        memberships.add(session, dict(zip(ids, choices, strict=True)))
    session.flush()
    if changes:
        memberships.replace(session, changes)
    if placed:
        place(session, placed)
    return result


def locate(rows: list[Row]) -> None:
    """Geocode the `address` of valid rows without lat/lon when GEOCODER_URL is set (each address once per
    batch); a row whose address is not found is imported without a location (and logged)."""
    from broadcaster.areas import geocoder
    from broadcaster.settings import get_settings

    settings = get_settings()
    if not geocoder.enabled(settings):
        return
    wanted = [r for r in rows if r.body is not None and not r.errors and r.body.lat is None and r.cells.get("address")]
    found = geocoder.geocode_all((r.cells["address"] for r in wanted), settings)
    for row in wanted:
        assert row.body is not None
        if (point := found.get(row.cells["address"])) is not None:
            row.body.lat, row.body.lon = point
            row.cells["lat"], row.cells["lon"] = str(point[0]), str(point[1])


def known_areas(session: Session, rows: list[Row]) -> dict[str, int]:
    """Ids of the named areas the batch's rows name, by slug."""
    named = {a for r in rows if r.body is not None for a in r.body.areas}
    if not named:
        return {}
    return {slug: aid for slug, aid in session.execute(select(Area.slug, Area.id).where(Area.slug.in_(named)))}


def place(session: Session, placed: dict[int, list[int]]) -> None:
    """Replace the named areas of these subscribers (bulk)."""
    session.execute(delete(SubscriberArea).where(SubscriberArea.subscriber_id.in_(list(placed))))
    rows = [{"subscriber_id": sid, "area_id": aid} for sid, aids in placed.items() for aid in dict.fromkeys(aids)]
    if rows:
        session.execute(insert(SubscriberArea), rows)


def known_categories(session: Session) -> set[str]:
    return set(session.scalars(select(Category.slug)))


def record_errors(session: Session, job_id: int, rows: list[Row], reported_so_far: int) -> None:
    """Add the rejected rows to the report, up to MAX_REPORTED_ROWS rows per job."""
    room = max(0, MAX_REPORTED_ROWS - reported_so_far)
    entries = [
        {"job_id": job_id, "row": row.number, "field": (name or None) and name[:100], "reason": reason}
        for row in rows[:room]
        for name, reason in row.errors
    ]
    if entries:
        session.execute(insert(ImportRowError), entries)


# --- reading ---------------------------------------------------------------------------------------------


def get(session: Session, job_id: int) -> ImportJob:
    job = session.get(ImportJob, job_id)
    if job is None:
        raise NotFound(f"Import {job_id} does not exist.", field="import_id")
    return job


def errors(session: Session, job_id: int, *, after: int | None, limit: int) -> list[ImportRowError]:
    stmt = select(ImportRowError).where(ImportRowError.job_id == job_id).order_by(ImportRowError.id).limit(limit)
    if after is not None:
        stmt = stmt.where(ImportRowError.id > after)
    return list(session.scalars(stmt))


def rows_per_second(job: ImportJob, now: datetime | None = None) -> float | None:
    if job.started_at is None or not job.rows_done:
        return None
    end = job.finished_at or now or utcnow()
    seconds = (end - job.started_at).total_seconds()
    return round(job.rows_done / seconds, 1) if seconds > 0 else None
