"""Render every public surface into files, in the order they must be written (pages before their indexes)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy.orm import Session

from broadcaster import webpage
from broadcaster.public import banner_bytes, cap, cap_log, feeds, pages, queries, snapshot
from broadcaster.public.negotiation import variant_key
from broadcaster.settings import get_settings

JSON = "application/json"
HTML = "text/html; charset=utf-8"
JS = "text/javascript; charset=utf-8"
RSS = "application/rss+xml; charset=utf-8"
ATOM = "application/atom+xml; charset=utf-8"
CAP = cap.CONTENT_TYPE.decode()
#: pages of past incidents rendered (the history page lists up to 100)
MAX_PAST = 200


@dataclass(frozen=True)
class File:
    path: str
    body: bytes
    content_type: str

    @property
    def sha(self) -> str:
        return hashlib.sha256(self.content_type.encode() + b"\0" + self.body).hexdigest()


def cache_control() -> str:
    return banner_bytes.cache_control().decode()


def banner_path(site: str = "", lang: str = "") -> str:
    """Where banner.js looks for a variant: v1/banner.json, v1/banner.fr.json, v1/sites/www/banner.json, ..."""
    folder = f"v1/sites/{site}" if site else "v1"
    return f"{folder}/banner{'.' + lang if lang else ''}.json"


def _links_to_static(body: bytes) -> bytes:
    """Absolute links to this service's status page and feeds point at the static copy instead; the subscribe form
    keeps posting to the service."""
    settings = get_settings()
    static, service = settings.static_public_url.rstrip("/"), settings.public_url.rstrip("/")
    # the subscribe form posts to the service (list the static origin in FORM_ALLOWED_ORIGINS)
    body = body.replace(b'action="/v1/subscribe"', f'action="{service}/v1/subscribe"'.encode())
    if not static or static == service:
        return body
    for path in ("/status", "/v1/feeds/"):
        body = body.replace((service + path).encode(), (static + path).encode())
    return body


def _banners(session: Session) -> list[File]:
    settings = get_settings()
    snap = snapshot.load(session)
    out: list[File] = []
    for site in ["", *sorted(snap.sites)]:
        items = snap.for_site(site)
        for lang in ["", *settings.supported_locales]:
            prefs: tuple[str, ...] = (lang,) if lang else ()
            key = variant_key(prefs, snap.locales, snap.languages)
            out.append(File(banner_path(site, lang), banner_bytes.banner_json(items, key), JSON))
    default = snap.for_site("")
    out.append(
        File("v1/banner.html", banner_bytes.banner_html(default, variant_key((), snap.locales, snap.languages)), HTML)
    )
    return out


def build(session: Session) -> list[File]:
    """All files, in write order: CAP alerts and incident pages, then feeds and history, then the banner, and the
    status page (the index) last."""
    settings = get_settings()
    files: list[File] = []
    messages = cap_log.recent(session)
    for message in messages:  # the stored bytes, exactly as the service serves them (links left alone)
        files.append(File(feeds.cap_path(message).lstrip("/"), message.xml, CAP))
        if message.reason == cap_log.PUBLISH:
            files.append(File(f"v1/feeds/cap/{message.update_id}.xml", message.xml, CAP))
    incidents = {i.id: i for i in [*queries.active_incidents(session), *queries.past_incidents(session, MAX_PAST)]}
    for incident_id in sorted(incidents):
        page = pages.incident_page(session, incident_id)
        if page is not None:
            files.append(File(f"status/incidents/{incident_id}/index.html", _links_to_static(page), HTML))
    updates = queries.public_updates(session)
    files.append(File("v1/feeds/rss.xml", _links_to_static(feeds.public_feed(updates, "rss")), RSS))
    files.append(File("v1/feeds/atom.xml", _links_to_static(feeds.public_feed(updates, "atom")), ATOM))
    files.append(File("v1/feeds/cap.xml", _links_to_static(feeds.cap_index(messages)), ATOM))
    files.append(File("status/history/index.html", _links_to_static(pages.history_page(session)), HTML))
    files.extend(_banners(session))
    # the favicon the pages link (/favicon.svg, /favicon.ico), from the files shipped in the package
    files.extend(File(name, webpage.favicon(name), ctype) for name, ctype in webpage.FAVICON_TYPES.items())
    api = settings.public_url.rstrip("/") + "/v1/banner"
    files.append(File("v1/banner.js", banner_bytes.banner_js(static_url=settings.static_public_url, api=api), JS))
    files.append(File("status/index.html", _links_to_static(pages.status_page(session)), HTML))
    return files
