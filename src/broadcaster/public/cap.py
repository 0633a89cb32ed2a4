"""CAP 1.2 (OASIS Common Alerting Protocol) rendering: one `<alert>` for what a published update says.

Which messages exist (Alert, Update, Cancel), their identifiers, `sent` and `references` are decided by the
message log (public/cap_log.py), which stores each document once. Here: the header it passes in, then one
`<info>` per language. Test sends are status Exercise. Severity critical/major/minor/info ->
Extreme/Severe/Moderate/Minor. Each area passed in gives one `<area>` per shape in every `<info>`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from lxml import etree

from broadcaster.domain import IncidentStatus, UpdateKind
from broadcaster.models import Incident, Update
from broadcaster.public import area_outline
from broadcaster.public.snapshot import routes
from broadcaster.settings import get_settings

NS = "urn:oasis:names:tc:emergency:cap:1.2"
CONTENT_TYPE = b"application/cap+xml; charset=utf-8"

SEVERITY = {"critical": "Extreme", "major": "Severe", "minor": "Moderate", "info": "Minor"}
URGENCY = {"critical": "Immediate", "major": "Immediate", "minor": "Expected", "info": "Unknown"}
CATEGORIES = (
    "Geo",
    "Met",
    "Safety",
    "Security",
    "Rescue",
    "Fire",
    "Health",
    "Env",
    "Transport",
    "Infra",
    "CBRNE",
    "Other",
)
_RESTRICTED = re.compile(r"[\s,<&]+")


def cap_time(value: datetime) -> str:
    """CAP 1.2's dateTime form (section 3.3.2): YYYY-MM-DDThh:mm:ss with an explicit offset, no fractions, and UTC
    written "-00:00" (never "Z", never "+00:00"). Under the IPAWS profile, which wants the sender's local offset
    (tests/standards/ipaws/rules.py), the time is written in SITE_TIMEZONE (still "-00:00" when that is UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.replace(microsecond=0)
    settings = get_settings()
    if settings.cap_profile == "ipaws":
        local = value.astimezone(ZoneInfo(settings.site_timezone))
        if local.utcoffset():
            return local.isoformat()
    return value.astimezone(UTC).replace(tzinfo=None).isoformat() + "-00:00"


def restricted(value: str) -> str:
    """`value` without the characters CAP forbids in identifiers and senders (spaces, commas, '<', '&')."""
    return _RESTRICTED.sub("-", value)


def sender() -> str:
    return restricted(get_settings().cap_sender)


def host() -> str:
    """The public host, the first part of every identifier (`<host>.update.<id>`)."""
    return urlsplit(get_settings().public_url).netloc or "broadcaster"


def category(incident: Incident) -> str:
    """A CAP category when the routing-map slug names one (e.g. 'health', 'infra'), else Other."""
    slug = incident.category.slug.lower()
    for cat in CATEGORIES:
        if slug == cat.lower() or slug.startswith(cat.lower() + "-"):
            return cat
    return "Other"


@dataclass(frozen=True)
class Header:
    """The `<alert>` fields around the `<info>` blocks: who sent which message when, and what it supersedes."""

    identifier: str
    sender: str
    sent: str
    status: str  # Actual | Exercise
    msg_type: str  # Alert | Update | Cancel
    references: str = ""  # "sender,identifier,sent" of each superseded or cancelled message, space-separated


def note(update: Update) -> str:
    """The `<note>`: an exercise (a test send) says so; a correction says what it is."""
    if update.test:
        return "Exercise: a test send from Broadcaster to its test group. No action required."
    if update.kind == UpdateKind.correction.value:
        return "Correction of an earlier message."
    return ""


def _sub(parent: etree._Element, tag: str, text: str) -> etree._Element:
    node = etree.SubElement(parent, f"{{{NS}}}{tag}")
    node.text = text
    return node


def area_elements(info: etree._Element, area: area_outline.AffectedArea | None) -> None:
    """Append the update's `<area>` blocks to `info` (CAP 1.2 section 3.2.4).

    The update's own polygon/circle form one `<area>` (areaDesc: its description, else the named areas'
    names); each named area forms another (areaDesc: its name). Every polygon's exterior ring is one
    `<polygon>` ("lat,lon" pairs, first = last); holes cannot be expressed in CAP and are left out, so a
    CAP reader sees the area without them. A circle is "lat,lon radius_km"."""
    if area is None:
        return
    for shape in area.shapes:
        node = etree.SubElement(info, f"{{{NS}}}area")
        _sub(node, "areaDesc", shape.description)
        for poly in shape.polygons:
            _sub(node, "polygon", area_outline.cap_polygon(poly[0]))
        for circle in shape.circles:
            _sub(node, "circle", area_outline.cap_circle(circle))
    if not area.shapes and area.name:  # named areas not (or no longer) known here: the name alone
        _sub(etree.SubElement(info, f"{{{NS}}}area"), "areaDesc", area.name)


def _ipaws_geocodes(info: etree._Element, start: int, geocodes: Sequence[str], org: str) -> None:
    """IPAWS wants a SAME `<geocode>` in the area: the configured codes go into every `<area>` after `start`
    (after their polygons and circles); without an area, one `<area>` naming the jurisdiction holds them."""
    blocks = list(info)[start:]
    if not blocks:
        area = etree.SubElement(info, f"{{{NS}}}area")
        _sub(area, "areaDesc", org)
        blocks = [area]
    for area in blocks:
        for value in geocodes:
            geocode = etree.SubElement(area, f"{{{NS}}}geocode")
            _sub(geocode, "valueName", "SAME")
            _sub(geocode, "value", value)


def _google_shapes(info: etree._Element, start: int, circle: str, org: str) -> None:
    """Google Public Alerts wants every `<area>` to hold a `<polygon>`, `<circle>` or `<geocode>`: an area after
    `start` without one (a named area whose outline is unknown) gets the jurisdiction circle; without an area, one
    `<area>` naming the jurisdiction holds it (tests/standards/google/rules.py)."""
    blocks = list(info)[start:]
    if not blocks:
        area = etree.SubElement(info, f"{{{NS}}}area")
        _sub(area, "areaDesc", org)
        blocks = [area]
    shapes = {f"{{{NS}}}{tag}" for tag in ("polygon", "circle", "geocode")}
    for area in blocks:
        if not any(child.tag in shapes for child in area):
            _sub(area, "circle", circle)


def question_instruction(update: Update) -> str:
    """The open question of an update as CAP `<instruction>` text ("" when it asks none, or it is closed):
    `responseType` Execute means "do what <instruction> says", here: answer the message you received."""
    question = update.question
    if question is None or question.state != "open":
        return ""
    options = ", ".join(f"{o['key']} for {o['label']}" for o in question.options)
    return f"{question.text} If you received our message, reply {options}"


def render(update: Update, header: Header, areas: Sequence[area_outline.AffectedArea] = ()) -> bytes:
    """One CAP 1.2 `<alert>` saying what `update` says now, under `header`, with an `<area>` per shape of each of
    `areas` in every `<info>` (valid against the OASIS CAP-v1.2.xsd; public/cap_log.py stores it once)."""
    settings = get_settings()
    incident = update.incident
    cancel = header.msg_type == "Cancel"
    root = etree.Element(f"{{{NS}}}alert", nsmap={None: NS})
    _sub(root, "identifier", header.identifier)
    _sub(root, "sender", header.sender)
    _sub(root, "sent", header.sent)
    _sub(root, "status", header.status)
    _sub(root, "msgType", header.msg_type)
    _sub(root, "scope", "Public")
    ipaws = settings.cap_profile == "ipaws"
    google = settings.cap_profile == "google"
    if ipaws:
        _sub(root, "code", "IPAWSv1.0")
    text = note(update)
    if text:
        _sub(root, "note", text)
    if header.references:
        _sub(root, "references", header.references)
    _sub(root, "incidents", f"incident-{incident.id}")
    resolved = incident.status == IncidentStatus.resolved.value or update.status == IncidentStatus.resolved.value
    contact = "; ".join(f"{r['label']}: {r['value']}" for r in routes(incident.category))
    texts = {update.locale: (update.summary, update.body)}
    for loc, tr in (update.translations or {}).items():
        texts[loc] = (tr.get("summary", ""), tr.get("body", ""))
    web = f"{settings.public_url.rstrip('/')}/status/incidents/{incident.id}"
    asks = question_instruction(update)
    for locale, (summary, body) in texts.items():
        info = etree.SubElement(root, f"{{{NS}}}info")
        _sub(info, "language", locale)
        _sub(info, "category", category(incident))
        _sub(info, "event", incident.title)
        _sub(info, "responseType", "AllClear" if resolved or cancel else "Monitor")
        if asks and not resolved and not cancel:
            _sub(info, "responseType", "Execute")  # reply to the question in <instruction> (docs/responses.md)
        _sub(info, "urgency", "Past" if resolved or cancel else URGENCY.get(incident.severity, "Unknown"))
        _sub(info, "severity", SEVERITY.get(incident.severity, "Unknown"))
        _sub(info, "certainty", "Likely" if incident.status == IncidentStatus.investigating.value else "Observed")
        if ipaws:  # a SAME event code: required by the IPAWS v1.0 profile
            code = etree.SubElement(info, f"{{{NS}}}eventCode")
            _sub(code, "valueName", "SAME")
            _sub(code, "value", settings.cap_ipaws_event_code)
        if ipaws or google:  # an expiry: required by both profiles
            expires = datetime.fromisoformat(header.sent) + timedelta(hours=settings.cap_expires_hours)
            _sub(info, "expires", cap_time(expires))
        _sub(info, "senderName", settings.org_name)
        headline = summary or incident.title
        _sub(info, "headline", headline[:140] if google else headline[:160])  # Google: under 140 characters
        # Google requires a <description>; a translation may have no body of its own
        _sub(info, "description", body or (headline if google else ""))
        instruction = "; ".join(part for part in (asks, contact) if part)
        if instruction:
            _sub(info, "instruction", instruction)
        _sub(info, "web", web)
        if ipaws:
            for name, value in (
                ("EAS-ORG", settings.cap_ipaws_eas_org),
                ("CMAMtext", (summary or incident.title)[:90]),
            ):
                parameter = etree.SubElement(info, f"{{{NS}}}parameter")
                _sub(parameter, "valueName", name)
                _sub(parameter, "value", value)
        start = len(info)
        for area in areas:
            area_elements(info, area)
        if ipaws:
            _ipaws_geocodes(info, start, settings.cap_ipaws_geocodes, settings.org_name)
        if google:
            _google_shapes(info, start, settings.cap_jurisdiction_circle, settings.org_name)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
