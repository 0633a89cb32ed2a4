"""RSS 2.0 and Atom feeds of public updates, and the Atom index of CAP alerts (feedgen)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime

from feedgen.feed import FeedGenerator
from lxml import etree

from broadcaster.bidi import strip_bidi
from broadcaster.domain import UpdateKind
from broadcaster.models import Update
from broadcaster.models.public import CapMessage
from broadcaster.public import cap, queries
from broadcaster.settings import get_settings

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
ATOM = "http://www.w3.org/2005/Atom"


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


@dataclass(frozen=True)
class Entry:
    """One feed entry: an update and what changed its entry after publication."""

    update: Update
    #: publication time: RSS <pubDate>, Atom <published>; never moves
    published: datetime
    #: the last time the entry's title or text changed (Atom <updated>, RSS <atom:updated>): its publication,
    #: a later correction or retraction of it, or a change of the incident's title
    updated: datetime
    #: published corrections and retractions of this update, oldest first (each adds a line to the entry)
    revisions: list[Update]


def entry(update: Update) -> Entry:
    """The feed entry of `update`: a correction or retraction of it, or a new incident title, moves its <updated>
    (an entry never changes its title or text while its <updated> stays the same; its id never changes)."""
    published = update.published_at or update.created_at
    revisions = [u for u in queries.published(update.incident, include_tests=update.test) if u.corrects_id == update.id]
    times = [published, *((u.published_at or u.created_at) for u in revisions)]
    retitled = update.incident.title_changed_at
    if retitled is not None:
        times.append(retitled)
    return Entry(update, published, max(times), revisions)


def _link(update: Update) -> str:
    return f"{_base()}/status/incidents/{update.incident_id}#update-{update.id}"


def entry_text(item: Entry) -> str:
    """The entry's text: the update's body, then one line per later correction or retraction of it."""
    text = strip_bidi(item.update.body)
    for rev in item.revisions:
        what = "Retracted" if rev.kind == UpdateKind.cancel.value else "Corrected"
        when = (rev.published_at or rev.created_at).strftime("%Y-%m-%d %H:%M UTC")
        text += f"\n\n{what} on {when}: {_link(rev)}"
    return text


def _feed(title: str, self_url: str, entries: list[Entry]) -> FeedGenerator:
    settings = get_settings()
    fg = FeedGenerator()
    fg.id(self_url)
    fg.title(title)
    fg.description(f"Public incident updates from {settings.org_name}.")
    fg.link(href=self_url, rel="self")
    fg.link(href=f"{_base()}/status", rel="alternate")  # last link = RSS <link>
    fg.language(settings.default_locale)
    # fixed to the content, so every process renders identical bytes (and ETags); moves when any entry changes
    latest = max((e.updated for e in entries), default=EPOCH)
    fg.updated(latest)
    fg.lastBuildDate(latest)
    return fg


def public_feed(updates: list[Update], kind: str) -> bytes:
    """RSS (`kind="rss"`) or Atom (`"atom"`) of the given updates, newest first.

    The id (Atom) / guid (RSS) of an entry is its update's permalink: stable. Atom <published> and RSS <pubDate>
    are the publication time; Atom <updated> and RSS <atom:updated> move when the entry changes (see `entry`)."""
    url = f"{_base()}/v1/feeds/{kind}.xml"
    entries = [entry(u) for u in updates]
    fg = _feed(f"{get_settings().org_name} status", url, entries)
    for item in entries:
        link = _link(item.update)
        fe = fg.add_entry(order="append")
        fe.id(link)
        fe.guid(link, permalink=True)
        fe.title(entry_title(item.update))
        fe.link(href=link)
        if kind == "rss":
            fe.description(text_as_html(entry_text(item)))
        else:
            fe.content(entry_text(item), type="text")
        fe.published(item.published)
        fe.updated(item.updated)
    if kind == "atom":
        return fg.atom_str(pretty=False)
    return _rss_updated(fg.rss_str(pretty=False), [e.updated for e in entries])


def _rss_updated(rss: bytes, updated: list[datetime]) -> bytes:
    """RSS 2.0 has no per-item modification date: add Atom's <atom:updated> to each item (in order)."""
    from lxml import etree

    root = etree.fromstring(rss)
    items = root.findall("channel/item")
    for item, when in zip(items, updated, strict=True):
        etree.SubElement(item, f"{{{ATOM}}}updated").text = when.astimezone(UTC).isoformat()
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


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
    latest = max((datetime.fromisoformat(m.sent) for m in messages), default=EPOCH)
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
        fe.published(datetime.fromisoformat(message.sent))  # when it was sent (-00:00 reads as UTC)
        fe.updated(datetime.fromisoformat(message.sent))
    return _typed_links(fg.atom_str(pretty=False))


def _typed_links(atom: bytes) -> bytes:
    """feedgen 1.0 drops rel/type on entry links; mark the CAP links as application/cap+xml."""
    root = etree.fromstring(atom)
    for link in root.iterfind(f"{{{ATOM}}}entry/{{{ATOM}}}link"):
        link.set("rel", "alternate")
        link.set("type", "application/cap+xml")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
