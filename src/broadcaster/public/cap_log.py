"""The CAP message log: every CAP document is stored when first emitted and served byte for byte ever after.

Per incident there are two streams, `Actual` (real sends) and `Exercise` (test sends). A message is *in force*
from when it is emitted until a Cancel in its stream. What is emitted:

- publishing an update: its own message, identifier `<host>.update.<update id>`, `sent` = publish time.
  msgType `Alert` when nothing of the stream is in force, else `Update` referencing every message in force;
  a cancel (retraction) is a `Cancel` referencing every message in force (the original and its corrections);
- a change to what the last message in force says (the incident's title, severity or status edited, a question
  closed, a named area's outline or the contact routes edited): an `Update` carrying the same update's content as
  it reads now, identifier `<host>.update.<update id>.<n>`, `sent` = now, referencing every message in force.

An `Update` or `Cancel` without an area of its own carries the area of what it supersedes (an Update: the latest
area in force; a Cancel: every area in force), so consumers filtering by area receive it.

`on_commit` runs inside every transaction that changed public content (hooks.public_content_committing), in a
savepoint: a failure is logged and never blocks publishing; whatever was missed is written at the next change,
or when the alert is first served (`ensure`), which is also how alerts published before the log existed get
their row (same identifier and publish time as before).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from broadcaster.domain import IncidentStatus, UpdateKind, UpdateState
from broadcaster.models import Incident, Update, utcnow
from broadcaster.models.public import CapMessage
from broadcaster.public import area_outline, cap

log = logging.getLogger(__name__)

PUBLISH, CHANGE = "publish", "change"
STATUSES = ("Actual", "Exercise")
#: the header a fingerprint is taken under: only what the message says counts, not its identity or time
_NEUTRAL = {"identifier": "-", "sender": "-", "sent": "2000-01-01T00:00:00-00:00", "msg_type": "Update"}


def status(update: Update) -> str:
    """The stream of `update`: test sends are CAP `Exercise`, everything else `Actual`."""
    return "Exercise" if update.test else "Actual"


def reference(message: CapMessage) -> str:
    """CAP's reference form of `message`: "sender,identifier,sent"."""
    return f"{message.sender},{message.identifier},{message.sent}"


def stream(session: Session, incident_id: int, status_: str) -> list[CapMessage]:
    """The incident's messages of one stream, oldest first."""
    stmt = select(CapMessage).where(CapMessage.incident_id == incident_id, CapMessage.status == status_)
    return list(session.scalars(stmt.order_by(CapMessage.id)))


def in_force(messages: Sequence[CapMessage]) -> list[CapMessage]:
    """The messages of a stream (oldest first) after its last Cancel."""
    last_cancel = max((i for i, m in enumerate(messages) if m.msg_type == "Cancel"), default=-1)
    return list(messages[last_cancel + 1 :])


def _sources(session: Session, messages: Iterable[CapMessage]) -> list[Update]:
    out = []
    for message in messages:
        update = session.get(Update, message.update_id)
        if update is not None:
            out.append(update)
    return out


def _areas(session: Session, sources: Sequence[Update], *, cancel: bool) -> list[area_outline.AffectedArea]:
    """The areas a message carries, from the updates of what is in force and its own (oldest first): the latest
    area (an Alert or Update), or every distinct area (a Cancel)."""
    with_area = [u for u in sources if u.area and (cancel or u.kind != UpdateKind.cancel.value)]
    if not cancel:
        with_area = with_area[-1:]
    seen: list[object] = []
    out = []
    for update in with_area:
        if update.area in seen:
            continue
        seen.append(update.area)
        area = area_outline.affected_area(session, update)
        if area is not None:
            out.append(area)
    return out


def fingerprint(update: Update, areas: Sequence[area_outline.AffectedArea]) -> str:
    """SHA-256 of what a message carrying `update` says now (identity, time and references left out)."""
    header = cap.Header(status=status(update), **_NEUTRAL)
    return hashlib.sha256(cap.render(update, header, areas)).hexdigest()


def _emit(
    session: Session,
    update: Update,
    *,
    identifier: str,
    sent: str,
    msg_type: str,
    refs: Sequence[CapMessage],
    reason: str,
    sources: Sequence[Update],
) -> CapMessage:
    areas = _areas(session, sources, cancel=msg_type == "Cancel")
    header = cap.Header(
        identifier=cap.restricted(identifier),
        sender=cap.sender(),
        sent=sent,
        status=status(update),
        msg_type=msg_type,
        references=" ".join(reference(r) for r in refs),
    )
    message = CapMessage(
        identifier=header.identifier,
        sender=header.sender,
        sent=header.sent,
        status=header.status,
        msg_type=msg_type,
        references=header.references,
        incident_id=update.incident_id,
        update_id=update.id,
        reason=reason,
        fingerprint=fingerprint(update, areas),
        xml=cap.render(update, header, areas),
    )
    session.add(message)
    session.flush()
    return message


def _publish_message(session: Session, update: Update) -> CapMessage:
    """The message of a newly published update (Alert, Update or Cancel)."""
    force = in_force(stream(session, update.incident_id, status(update)))
    sources = [*_sources(session, force), update]
    identifier = f"{cap.host()}.update.{update.id}"
    sent = cap.cap_time(update.published_at or update.created_at)
    if update.kind == UpdateKind.cancel.value:
        # a retraction cancels everything of the incident still in force: the original and its corrections
        refs = force or list(
            session.scalars(
                select(CapMessage).where(CapMessage.update_id == update.corrects_id).order_by(CapMessage.id)
            )
        )
        msg_type = "Cancel" if refs else "Alert"
    else:
        refs, msg_type = force, ("Update" if force else "Alert")
    return _emit(
        session, update, identifier=identifier, sent=sent, msg_type=msg_type, refs=refs, reason=PUBLISH, sources=sources
    )


def _change_message(session: Session, status_: str, incident_id: int) -> CapMessage | None:
    """An Update when what the stream's last message in force says has changed since it was emitted."""
    force = in_force(stream(session, incident_id, status_))
    if not force:
        return None
    sources = _sources(session, force)
    if not sources or sources[-1].id != force[-1].update_id:
        return None
    update = sources[-1]
    if fingerprint(update, _areas(session, sources, cancel=False)) == force[-1].fingerprint:
        return None
    count = session.scalar(select(func.count()).select_from(CapMessage).where(CapMessage.update_id == update.id))
    return _emit(
        session,
        update,
        identifier=f"{cap.host()}.update.{update.id}.{int(count or 0) + 1}",
        sent=cap.cap_time(utcnow()),
        msg_type="Update",
        refs=force,
        reason=CHANGE,
        sources=sources,
    )


def sync_incident(session: Session, incident: Incident) -> list[CapMessage]:
    """Write the incident's missing messages: one per published update not yet logged (in publish order), then an
    Update per stream whose last message in force no longer says what the incident says. Private incidents emit
    nothing."""
    if not incident.public:
        return []
    logged = set(
        session.scalars(
            select(CapMessage.update_id).where(CapMessage.incident_id == incident.id, CapMessage.reason == PUBLISH)
        )
    )
    pending = [u for u in incident.updates if u.state == UpdateState.published.value and u.id not in logged]
    pending.sort(key=lambda u: (u.published_at or u.created_at, u.id))
    out = [_publish_message(session, u) for u in pending]
    for status_ in STATUSES:
        message = _change_message(session, status_, incident.id)
        if message is not None:
            out.append(message)
    return out


def sync(session: Session, incident_ids: Iterable[int] = ()) -> list[CapMessage]:
    """`sync_incident` for the incidents touched (`incident_ids`) and every unresolved public incident with
    messages (a question closed or a contact route edited changes what their alerts say)."""
    live = select(Incident.id).where(
        Incident.public.is_(True),
        Incident.status != IncidentStatus.resolved.value,
        exists().where(CapMessage.incident_id == Incident.id),
    )
    ids = set(incident_ids) | set(session.scalars(live))
    out: list[CapMessage] = []
    for incident_id in sorted(ids):
        incident = session.get(Incident, incident_id)
        if incident is not None:
            out.extend(sync_incident(session, incident))
    return out


def on_commit(session: Session, incident_ids: set[int]) -> None:
    """hooks.public_content_committing: write the messages the transaction emits, in a savepoint (a failure is
    logged; the messages are then written at the next change or when first served)."""
    try:
        with session.begin_nested():
            sync(session, incident_ids)
    except Exception:
        log.exception("CAP messages were not written in this transaction; they follow at the next change")


def ensure(session: Session, updates: Iterable[Update]) -> bool:
    """Log the published updates among `updates` that have no message yet (alerts published before the log
    existed, or whose transaction could not write it), and commit. True when it wrote something."""
    wanted = {u.incident_id for u in updates if u.state == UpdateState.published.value}
    if not wanted:
        return False
    have = set(session.scalars(select(CapMessage.update_id).where(CapMessage.update_id.in_([u.id for u in updates]))))
    missing = {u.incident_id for u in updates if u.state == UpdateState.published.value and u.id not in have}
    if not missing:
        return False
    try:
        wrote = False
        for incident_id in sorted(missing):
            incident = session.get(Incident, incident_id)
            if incident is not None:
                wrote = bool(sync_incident(session, incident)) or wrote
        session.commit()
        return wrote
    except IntegrityError:  # another process wrote them first
        session.rollback()
        return False


def publish_message(session: Session, update_id: int) -> CapMessage | None:
    """The stored message of a published update of a public incident (written now if missing), else None."""
    update = session.get(Update, update_id)
    if update is None or update.state != UpdateState.published.value or not update.incident.public:
        return None
    stmt = select(CapMessage).where(CapMessage.update_id == update_id, CapMessage.reason == PUBLISH)
    message = session.scalars(stmt).first()
    if message is None:
        ensure(session, [update])
        message = session.scalars(stmt).first()
    return message


def message(session: Session, message_id: int) -> CapMessage | None:
    """A stored message of a public incident, else None."""
    found = session.get(CapMessage, message_id)
    if found is None:
        return None
    incident = session.get(Incident, found.incident_id)
    return found if incident is not None and incident.public else None


def recent(session: Session, limit: int = 50) -> list[CapMessage]:
    """The newest messages of public incidents, newest first (the CAP index); recent published updates without
    one are logged first."""
    from broadcaster.public import queries

    ensure(session, queries.public_updates(session, include_tests=True, limit=limit))
    stmt = (
        select(CapMessage)
        .join(Incident, CapMessage.incident_id == Incident.id)
        .where(Incident.public.is_(True))
        .order_by(CapMessage.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))
