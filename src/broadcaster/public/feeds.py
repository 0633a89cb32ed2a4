"""RSS 2.0 and Atom feeds of public updates, and the Atom index of CAP alerts (feedgen)."""

from __future__ import annotations

import html
from datetime import UTC, datetime

from feedgen.feed import FeedGenerator

from broadcaster.bidi import strip_bidi
from broadcaster.domain import UpdateKind
from broadcaster.models import Update
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


def cap_index(updates: list[Update]) -> bytes:
    """An Atom feed whose entries link to one CAP 1.2 document each (the usual CAP feed shape)."""
    url = f"{_base()}/v1/feeds/cap.xml"
    fg = _feed(f"{get_settings().org_name} CAP alerts", url, updates)
    for update in updates:
        fe = fg.add_entry(order="append")
        fe.id(f"urn:cap:{cap.sender()}:{cap.identifier(update)}")
        fe.title(entry_title(update) + (" [TEST]" if update.test else ""))
        fe.link(href=f"{_base()}/v1/feeds/cap/{update.id}.xml", rel="alternate", type="application/cap+xml")
        fe.summary(strip_bidi(update.summary or update.body[:300]))
        when = update.published_at or update.created_at
        fe.published(when)
        fe.updated(when)
    return _typed_links(fg.atom_str(pretty=False))


def _typed_links(atom: bytes) -> bytes:
    """feedgen 1.0 drops rel/type on entry links; mark the CAP links as application/cap+xml."""
    from lxml import etree

    root = etree.fromstring(atom)
    for link in root.iterfind("{http://www.w3.org/2005/Atom}entry/{http://www.w3.org/2005/Atom}link"):
        link.set("rel", "alternate")
        link.set("type", "application/cap+xml")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
