"""An immutable in-memory snapshot of the active banners, loaded once per content change."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from broadcaster.bidi import strip_bidi
from broadcaster.domain import Severity, UpdateKind
from broadcaster.models import Category, Incident, Update
from broadcaster.public import area_outline, queries
from broadcaster.settings import get_settings

log = logging.getLogger(__name__)

#: banner text longer than this is cut on a word boundary (when the update has no summary)
SHORT_TEXT_CHARS = 240

#: contact keys of a routing-map entry -> (label, URL scheme or None for plain text)
ROUTE_KINDS: dict[str, tuple[str, str | None]] = {
    "phone": ("Call", "tel:"),
    "sms": ("Text", "sms:"),
    "email": ("Email", "mailto:"),
    "live_chat_url": ("Live chat", ""),
    "portal_url": ("Online portal", ""),
    "opening_hours": ("Hours", None),
    "note": ("Note", None),
}


def shorten(text: str, limit: int = SHORT_TEXT_CHARS) -> str:
    """`text` on one line, cut on a word boundary to at most `limit` characters (with an ellipsis)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.") + "…"


def safe_url(url: str) -> str | None:
    """Only http(s) URLs become links (never `javascript:` and friends)."""
    return url if url.lower().startswith(("https://", "http://")) else None


def routes(category: Category) -> list[dict[str, str]]:
    """The "how to reach us" routes of a routing-map entry, each with a safe href where it has one."""
    out: list[dict[str, str]] = []
    contact: dict[str, Any] = category.contact or {}
    for key, (label, scheme) in ROUTE_KINDS.items():
        value = contact.get(key)
        if not value:
            continue
        route = {"kind": key, "label": label, "value": str(value)}
        if scheme == "":
            href = safe_url(str(value))
            if href:
                route["href"] = href
        elif scheme:
            route["href"] = scheme + "".join(str(value).split())
        out.append(route)
    return out


@dataclass(frozen=True, slots=True)
class BannerItem:
    """One incident's banner: its latest published update, in every language it has."""

    update_id: int
    incident_id: int
    severity: str
    title: str
    kind: str
    status: str
    #: locale -> short text
    texts: dict[str, str]
    primary_locale: str
    links: tuple[dict[str, str], ...]
    routes: tuple[dict[str, str], ...]
    category: str
    sites: frozenset[str]
    updated_at: datetime
    #: the affected area in public JSON form (description, area slugs, GeoJSON polygon, circle), or None
    area: dict[str, Any] | None = None
    #: locale -> the most recent earlier update with text in a language the latest update has none in
    earlier: dict[str, Earlier] = field(default_factory=dict)

    def text_for(self, prefs: tuple[str, ...], default_locale: str) -> tuple[str, str]:
        """(locale, text): exact preference, then same language, then the default, then the original."""
        for pref in prefs:
            if pref in self.texts:
                return pref, self.texts[pref]
        for pref in prefs:
            loc = same_language(pref, self.texts)
            if loc is not None:
                return loc, self.texts[loc]
        loc = default_locale if default_locale in self.texts else self.primary_locale
        return loc, self.texts[loc]

    def choose(self, prefs: tuple[str, ...], default_locale: str) -> Choice:
        """What to show for `prefs`: the latest update in the first preferred language the incident has text in;
        when only an earlier update has that language (e.g. after an untranslated correction), the latest update
        as `text_for` picks it (its original language, marked by its locale) with that earlier update beside."""
        for pref in prefs:
            if pref in self.texts or same_language(pref, self.texts) is not None:
                return Choice(*self.text_for((pref,), default_locale), earlier=None, missing=False)
            loc = pref if pref in self.earlier else same_language(pref, self.earlier)
            if loc is not None:
                return Choice(*self.text_for((), default_locale), earlier=self.earlier[loc], missing=True)
        locale, text = self.text_for(prefs, default_locale)
        return Choice(locale, text, earlier=None, missing=bool(prefs))


def same_language(pref: str, texts: Mapping[str, object]) -> str | None:
    """The locale of `texts` in the language of `pref` (`fr-CA` -> `fr`, `pt` -> `pt-BR`), if any."""
    lang = pref.split("-")[0]
    for loc in (lang, *sorted(texts)):
        if loc.split("-")[0] == lang and loc in texts:
            return loc
    return None


@dataclass(frozen=True, slots=True)
class Earlier:
    """An earlier published update's banner text in one language."""

    update_id: int
    locale: str
    text: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Choice:
    """A banner's text for a reader: `locale`/`text` of the latest update; `earlier`: an earlier update in the
    reader's language shown beside it; `missing`: a language was asked for and `text` is not in it."""

    locale: str
    text: str
    earlier: Earlier | None
    missing: bool


@dataclass(frozen=True, slots=True)
class Snapshot:
    version: int
    items: tuple[BannerItem, ...]
    locales: frozenset[str] = field(default_factory=frozenset)
    languages: frozenset[str] = field(default_factory=frozenset)
    sites: frozenset[str] = field(default_factory=frozenset)

    def for_site(self, site: str) -> tuple[BannerItem, ...]:
        return tuple(i for i in self.items if not i.sites or site in i.sites)


def short_text(summary: str, body: str) -> str:
    return shorten(summary) if summary.strip() else shorten(body)


def banner_text(session: Session, update: Update, locale: str) -> str:
    """The banner's short text in `locale`: the operator's banner template (broadcaster.rendering), or
    the summary / body cut on a word boundary when rendering is unavailable or fails."""
    try:
        from broadcaster.rendering.compose import render_update

        text = render_update(session, update, "banner", locale).message.text
        if text.strip():
            return strip_bidi(text)
    except Exception:
        log.warning("public: banner template failed for update %s (%s); using the summary", update.id, locale)
    if locale == update.locale:
        summary, body = update.summary, update.body
    else:
        tr = (update.translations or {}).get(locale, {})
        summary, body = tr.get("summary", ""), tr.get("body", "")
    marker = {UpdateKind.correction.value: "Correction: "}.get(update.kind, "")
    return strip_bidi(marker + short_text(summary, body))


def with_area(text: str, area_name: str) -> str:
    """The banner text naming the affected area: "… — affected area: 5th Ave" (unchanged without a name)."""
    return f"{text} — affected area: {strip_bidi(area_name)}" if area_name else text


def _item(session: Session, incident: Incident, update: Update) -> BannerItem:
    """The incident's banner: its latest published update `update` in each of its languages, and, for each
    language it lacks, the most recent earlier update (not a retraction, not retracted) that has it."""
    locales = [update.locale, *(update.translations or {})]
    retracted = {
        u.corrects_id for u in queries.published(incident) if u.kind == UpdateKind.cancel.value and u.corrects_id
    }
    area = area_outline.incident_area(session, incident, queries.published(incident))
    texts = {
        loc: with_area(banner_text(session, update, loc), area.name if area else "") for loc in dict.fromkeys(locales)
    }
    status_link = f"{get_settings().public_url.rstrip('/')}/status/incidents/{incident.id}"
    links = [{"title": "Status page", "url": status_link}]
    links += [
        {"title": strip_bidi(link["title"]), "url": link["url"]}
        for link in update.links or []
        if safe_url(link.get("url", ""))
    ]
    earlier: dict[str, Earlier] = {}
    for prev in reversed(queries.published(incident)):  # newest first
        if prev.id == update.id or prev.kind == UpdateKind.cancel.value or prev.id in retracted:
            continue
        for loc in dict.fromkeys([prev.locale, *(prev.translations or {})]):
            if loc not in texts and loc not in earlier:
                text = with_area(banner_text(session, prev, loc), area.name if area else "")
                earlier[loc] = Earlier(prev.id, loc, text, prev.published_at or prev.created_at)
    return BannerItem(
        update_id=update.id,
        incident_id=incident.id,
        severity=incident.severity,
        title=strip_bidi(incident.title),
        kind=update.kind if update.kind != UpdateKind.cancel.value else UpdateKind.normal.value,
        status=incident.status,
        texts=texts,
        primary_locale=update.locale,
        links=tuple(links),
        routes=tuple(routes(incident.category)),
        category=incident.category.name,
        sites=frozenset(incident.sites or ()),
        updated_at=update.published_at or update.created_at,
        area=area_outline.public_json(area),
        earlier=earlier,
    )


def load(session: Session) -> Snapshot:
    """Read the active banners. The version is read first so a concurrent change is never missed."""
    version = queries.current_version(session)
    items = [_item(session, i, queries.published(i)[-1]) for i in queries.active_incidents(session)]
    items.sort(key=lambda it: (-Severity(it.severity).rank, -it.updated_at.timestamp(), -it.update_id))
    locales = frozenset(loc for it in items for loc in (*it.texts, *it.earlier))
    return Snapshot(
        version=version,
        items=tuple(items),
        locales=locales,
        languages=frozenset(loc.split("-")[0] for loc in locales),
        sites=frozenset(s for it in items for s in it.sites),
    )
