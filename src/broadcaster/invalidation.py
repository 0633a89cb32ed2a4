"""Public content changed: the version row, NOTIFY to other processes, and the listeners of this process.

Whoever changes what the public sees (publishing, service states, maintenance, question closing, an incident
edit) calls `content_changed(session)` in its transaction, or relies on the safety net below. After the commit,
this process's `hooks.public_content_changed` listeners run (the public package drops its cached pages).
"""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from broadcaster import hooks
from broadcaster.domain import UpdateState
from broadcaster.models import Category, Incident, Update, utcnow
from broadcaster.models.public import PublicState

#: PostgreSQL NOTIFY channel every API process LISTENs on; the payload is the new version.
CHANNEL = "broadcaster_public"
_PENDING = "broadcaster_public_version"
_HOOKED = "broadcaster_public_hooked"
_TOUCHED = "broadcaster_public_touched"
_INCIDENTS = "broadcaster_public_incidents"


def content_changed(session: Session) -> None:
    """Public content changed in the caller's transaction: invalidate banner/feed caches after commit.

    Bumps the `public_state` version row; on PostgreSQL also `pg_notify` (delivered at commit). This
    process's cache is invalidated right after the commit; other processes learn it from NOTIFY
    (PostgreSQL) or by polling the version row (SQLite). A rollback discards all of it.
    """
    now = utcnow()
    dialect = session.get_bind().dialect.name
    insert: Any = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(PublicState)
        .values(id=1, version=1, changed_at=now)
        .on_conflict_do_update(
            index_elements=[PublicState.id], set_={"version": PublicState.version + 1, "changed_at": now}
        )
        .returning(PublicState.version)
    )
    version = int(session.execute(stmt).scalar_one())
    if dialect == "postgresql":
        session.execute(
            pg_notify_stmt(),
            {"channel": CHANNEL, "payload": str(version)},
        )
    session.info[_PENDING] = version
    if not session.info.get(_HOOKED):
        session.info[_HOOKED] = True
        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_rollback", _after_rollback)


def pg_notify_stmt() -> Any:
    from sqlalchemy import text

    return text("SELECT pg_notify(:channel, :payload)")


def _after_commit(session: Session) -> None:
    version = session.info.pop(_PENDING, None)
    if version is not None:
        for listener in hooks.public_content_changed.functions():
            listener(version)


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


# --- safety net: any committed change to public content invalidates, wherever it was made ---------------
# Incident PATCH (status/severity/title/sites/public), routing-map (category contact) edits and the like
# happen in other packages; rather than asking each to call content_changed(), every ORM session that
# flushes an Incident, a Category or a published Update bumps the version once, just before its commit. Then,
# still inside the transaction, `hooks.public_content_committing` gets the incidents it touched (CAP messages).


def _touches_public(obj: object) -> bool:
    if isinstance(obj, Incident | Category):
        return True
    return isinstance(obj, Update) and obj.state == UpdateState.published.value


def _on_after_flush(session: Session, _context: Any) -> None:
    for obj in itertools.chain(session.new, session.dirty, session.deleted):
        if not _touches_public(obj):
            continue
        session.info[_TOUCHED] = True
        incident_id = obj.id if isinstance(obj, Incident) else getattr(obj, "incident_id", None)
        if incident_id is not None:
            session.info.setdefault(_INCIDENTS, set()).add(incident_id)


def _on_before_commit(session: Session) -> None:
    if session.new or session.dirty or session.deleted:
        session.flush()  # what the commit would flush next: seen by the listener above before deciding
    if session.info.pop(_TOUCHED, False) and _PENDING not in session.info:
        content_changed(session)
    incident_ids = session.info.pop(_INCIDENTS, set())
    if _PENDING in session.info:
        for committing in hooks.public_content_committing.functions():  # the CAP message log
            committing(session, incident_ids)


def _on_rollback(session: Session) -> None:
    session.info.pop(_TOUCHED, None)
    session.info.pop(_INCIDENTS, None)


def install() -> None:
    """Register the session-wide listeners (idempotent)."""
    if not event.contains(Session, "after_flush", _on_after_flush):
        event.listen(Session, "after_flush", _on_after_flush)
        event.listen(Session, "before_commit", _on_before_commit)
        event.listen(Session, "after_rollback", _on_rollback)


install()
