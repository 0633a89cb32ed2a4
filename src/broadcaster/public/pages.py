"""The server-rendered status page: current incidents with their timeline, history, routing map."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from broadcaster.domain import IncidentStatus, UpdateKind
from broadcaster.models import Incident, Update
from broadcaster.public import area_outline, queries
from broadcaster.public.snapshot import routes, same_language
from broadcaster.public.statuspage import components_view
from broadcaster.public.templating import env
from broadcaster.settings import get_settings
from broadcaster.subscribers import memberships


@dataclass
class TimelineEntry:
    id: int
    kind: str
    status: str | None
    summary: str
    body: str
    #: the language of `summary`/`body` (the update's own, or the reader's when it has a translation)
    locale: str
    published_at: datetime
    corrects_id: int | None
    corrected_by: list[tuple[int, str]]
    #: a language was asked for and this update has no text in it (shown in its own language)
    missing: bool = False
    #: set on an untranslated update newer than the latest one in the asked language: that update's id
    see_translation: int | None = None


def in_language(update: Update, lang: str | None) -> tuple[str, str, str] | None:
    """(locale, summary, body) of `update` in `lang` (exact tag, then the same language); None if it has none."""
    if lang is None:
        return update.locale, update.summary, update.body
    texts = {k: (v.get("summary", ""), v.get("body", "")) for k, v in (update.translations or {}).items()}
    texts[update.locale] = (update.summary, update.body)
    loc = lang if lang in texts else same_language(lang, texts)
    return None if loc is None else (loc, *texts[loc])


def timeline(incident: Incident, lang: str | None = None) -> list[TimelineEntry]:
    """Published (non-test) updates, newest first; corrections and retractions cross-linked. With `lang`: each
    update in that language when it has it, else in its own (`missing`); untranslated updates newer than the
    latest translated one point to it (`see_translation`)."""
    rows = queries.published(incident)
    by_target: dict[int, list[tuple[int, str]]] = {}
    for u in rows:
        if u.corrects_id is not None:
            by_target.setdefault(u.corrects_id, []).append((u.id, u.kind))
    out = []
    for u in reversed(rows):
        shown = in_language(u, lang)
        locale, summary, body = shown or (u.locale, u.summary, u.body)
        out.append(
            TimelineEntry(
                id=u.id,
                kind=u.kind,
                status=u.status,
                summary=summary,
                body=body,
                locale=locale,
                published_at=_when(u),
                corrects_id=u.corrects_id,
                corrected_by=by_target.get(u.id, []),
                missing=shown is None,
            )
        )
    latest = next((e.id for e in out if not e.missing and e.kind != UpdateKind.cancel.value), None)
    if lang is not None and latest is not None:
        for e in out:
            if e.id == latest:
                break
            e.see_translation = latest
    return out


def _when(update: Update) -> datetime:
    return update.published_at or update.created_at


def _incident_view(session: Session, incident: Incident, lang: str | None = None) -> dict[str, Any]:
    entries = timeline(incident, lang)
    area = area_outline.incident_area(session, incident, queries.published(incident))
    return {
        "id": incident.id,
        "title": incident.title,
        "severity": incident.severity,
        "status": incident.status,
        "retracted": bool(entries) and entries[0].kind == UpdateKind.cancel.value,
        "resolved": incident.status == IncidentStatus.resolved.value,
        "category": incident.category.name,
        "routes": routes(incident.category),
        "started_at": incident.started_at,
        "resolved_at": incident.resolved_at,
        "updated_at": entries[0].published_at if entries else incident.updated_at,
        "timeline": entries,
        "lang_query": f"?lang={lang}" if lang else "",
        #: the latest area an update targeted: its name and an inline SVG outline (see area_outline)
        "area": area_outline.view(area),
    }


def _common(session: Session, lang: str | None = None) -> dict[str, Any]:
    settings = get_settings()
    return {
        "lang": lang,
        #: appended to links between status pages, so the reader stays in the language asked for
        "lang_query": f"?lang={lang}" if lang else "",
        "org_name": settings.org_name,
        "locales": settings.supported_locales,
        "default_locale": settings.default_locale,
        "categories": [
            {"slug": c.slug, "name": c.name, "description": c.description, "routes": routes(c)}
            for c in queries.categories(session)
        ],
    }


def status_page(session: Session, lang: str | None = None) -> bytes:
    ctx = _common(session, lang)
    #: the subscribe form's "services to follow" (public services; none: the fieldset is left out)
    ctx["follow_services"] = [{"slug": s.slug, "name": s.name} for s in memberships.public_services(session)]
    from broadcaster.maintenance.service import maintenance_incident_ids, public_windows

    #: planned and running maintenance has its own section (a running window's banner still shows)
    ctx["maintenance"] = public_windows(session)
    in_maintenance = maintenance_incident_ids(session)
    ctx["incidents"] = [
        _incident_view(session, i, lang) for i in queries.active_incidents(session) if i.id not in in_maintenance
    ]
    ctx["recent"] = [_incident_view(session, i, lang) for i in queries.past_incidents(session, limit=5)]
    ctx["component_groups"] = components_view(session)
    return env().get_template("status.html").render(**ctx).encode()


def history_page(session: Session, lang: str | None = None) -> bytes:
    ctx = _common(session, lang)
    ctx["incidents"] = [_incident_view(session, i, lang) for i in queries.past_incidents(session, limit=100)]
    return env().get_template("history.html").render(**ctx).encode()


def incident_page(session: Session, incident_id: int, lang: str | None = None) -> bytes | None:
    incident = queries.public_incident(session, incident_id)
    if incident is None:
        return None
    ctx = _common(session, lang)
    ctx["incident"] = _incident_view(session, incident, lang)
    return env().get_template("incident.html").render(**ctx).encode()
