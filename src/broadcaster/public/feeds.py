"""RSS 2.0 and Atom feeds of public updates, and the Atom index of CAP alerts (feedgen)."""

from __future__ import annotations

import html
from datetime import UTC, datetime

from feedgen.feed import FeedGenerator
from lxml import etree

from broadcaster.bidi import strip_bidi
from broadcaster.domain import UpdateKind
from broadcaster.models import Update
from broadcaster.models.public import CapMessage
from broadcaster.public import cap
from broadcaster.settings import get_settings

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _base() -> str:
    return get_settings().public_url.rstrip("/")


def entry_title(update: Update) -> str:
    prefix = {UpdateKind.correction.value: "Correction: ", UpdateKind.cancel.value: "Retracted: "}.get(update.kind, "")
    status = f" ({update.status})" if update.status else ""
    return strip_bidi(f"{prefix}{update.incident.title}{status}")


def text_as_html(text: str) -> str:
    """Plain text as the HTML an RSS <description> holds (readers render it as HTML): markup characters
    escaped, line breaks kept. The XML serialiser escapes it once more, so `<img>` arrives as text."""
    return "<br>\n".join(html.escape(line) for line in text.splitlines()) if text else ""


def _feed(title: str, self_url: str, updates: list[Update]) -> FeedGenerator:
    settings = get_settings()
    fg = FeedGenerator()
    fg.id(self_url)
    fg.title(title)
    fg.description(f"Public incident updates from {settings.org_name}.")
    fg.link(href=self_url, rel="self")
    fg.link(href=f"{_base()}/status", rel="alternate")  # last link = RSS <link>
    fg.language(settings.default_locale)
    # fixed to the content, so every process renders identical bytes (and ETags)
    latest = max((u.published_at or u.created_at for u in updates), default=EPOCH)
    fg.updated(latest)
    fg.lastBuildDate(latest)
    return fg


def public_feed(updates: list[Update], kind: str) -> bytes:
    """RSS (`kind="rss"`) or Atom (`"atom"`) of the given updates, newest first."""
    url = f"{_base()}/v1/feeds/{kind}.xml"
    fg = _feed(f"{get_settings().org_name} status", url, updates)
    for update in updates:
        link = f"{_base()}/status/incidents/{update.incident_id}#update-{update.id}"
        when = update.published_at or update.created_at
        fe = fg.add_entry(order="append")
        fe.id(link)
        fe.guid(link, permalink=True)
        fe.title(entry_title(update))
        fe.link(href=link)
        if kind == "rss":
            fe.description(text_as_html(strip_bidi(update.body)))
        else:
            fe.content(strip_bidi(update.body), type="text")
        fe.published(when)
        fe.updated(when)
    return fg.rss_str(pretty=False) if kind == "rss" else fg.atom_str(pretty=False)


_CAP_PREFIX = {"Update": "Update: ", "Cancel": "Cancelled: "}


def cap_path(message: CapMessage) -> str:
    """Where one stored CAP message is served (and written by the static copy)."""
    return f"/v1/feeds/cap/messages/{message.id}.xml"


def cap_index(messages: list[CapMessage]) -> bytes:
    """An Atom feed whose entries link to one CAP 1.2 document each (the usual CAP feed shape): every message
    of the log, newest first; an entry never changes once listed (id, title, times come from the message)."""
    url = f"{_base()}/v1/feeds/cap.xml"
    fg = FeedGenerator()
    fg.id(url)
    fg.title(f"{get_settings().org_name} CAP alerts")
    fg.link(href=url, rel="self")
    fg.link(href=f"{_base()}/status", rel="alternate")
    latest = max((m.created_at for m in messages), default=EPOCH)
    fg.updated(latest)
    for message in messages:
        root = etree.fromstring(message.xml)
        info = root.find(f"{{{cap.NS}}}info")
        event = info.findtext(f"{{{cap.NS}}}event") if info is not None else ""
        headline = info.findtext(f"{{{cap.NS}}}headline") if info is not None else ""
        exercise = " [TEST]" if message.status == "Exercise" else ""  # a test send
        fe = fg.add_entry(order="append")
        fe.id(f"urn:cap:{message.sender}:{message.identifier}")
        fe.title(strip_bidi(f"{_CAP_PREFIX.get(message.msg_type, '')}{event or ''}{exercise}"))
        fe.link(href=f"{_base()}{cap_path(message)}", rel="alternate", type="application/cap+xml")
        fe.summary(strip_bidi(headline or ""))
        fe.published(message.created_at)
        fe.updated(message.created_at)
    return _typed_links(fg.atom_str(pretty=False))


def _typed_links(atom: bytes) -> bytes:
    """feedgen 1.0 drops rel/type on entry links; mark the CAP links as application/cap+xml."""
    root = etree.fromstring(atom)
    for link in root.iterfind("{http://www.w3.org/2005/Atom}entry/{http://www.w3.org/2005/Atom}link"):
        link.set("rel", "alternate")
        link.set("type", "application/cap+xml")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
