"""CAP 1.2 (OASIS Common Alerting Protocol) documents for published updates, and their Atom index.

Mapping: first published update of an incident -> msgType Alert; later updates and corrections ->
Update, a cancel -> Cancel, both with `references` = "sender,identifier,sent" of the referenced alert.
Test sends -> status Test. Severity critical/major/minor/info -> Extreme/Severe/Moderate/Minor.
An update with an area gets one `<area>` per shape in every `<info>` (see `area_elements`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

from lxml import etree
from sqlalchemy.orm import object_session

from broadcaster.domain import IncidentStatus, UpdateKind, UpdateState
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
    """CAP's dateTime form: YYYY-MM-DDThh:mm:ss+00:00 (no fractions, explicit offset, never Z)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(microsecond=0).isoformat()


def sender() -> str:
    return _RESTRICTED.sub("-", get_settings().cap_sender)


def identifier(update: Update) -> str:
    host = urlsplit(get_settings().public_url).netloc or "broadcaster"
    return _RESTRICTED.sub("-", f"{host}.update.{update.id}")


def sent(update: Update) -> str:
    return cap_time(update.published_at or update.created_at)


def reference(update: Update) -> str:
    return f"{sender()},{identifier(update)},{sent(update)}"


def category(incident: Incident) -> str:
    """A CAP category when the routing-map slug names one (e.g. 'health', 'infra'), else Other."""
    slug = incident.category.slug.lower()
    for cat in CATEGORIES:
        if slug == cat.lower() or slug.startswith(cat.lower() + "-"):
            return cat
    return "Other"


def _published(incident: Incident, test: bool) -> list[Update]:
    rows = [u for u in incident.updates if u.state == UpdateState.published.value and u.test == test]
    return sorted(rows, key=lambda u: (u.published_at or u.created_at, u.id))


def msg_type_and_refs(update: Update) -> tuple[str, list[Update]]:
    if update.kind in (UpdateKind.cancel.value, UpdateKind.correction.value):
        target = next((u for u in update.incident.updates if u.id == update.corrects_id), None)
        refs = [target] if target is not None else []
        return ("Cancel" if update.kind == UpdateKind.cancel.value else "Update"), refs
    earlier = [u for u in _published(update.incident, update.test) if u.id != update.id]
    earlier = [u for u in earlier if (u.published_at or u.created_at, u.id) < (update.published_at, update.id)]
    return ("Update", [earlier[-1]]) if earlier else ("Alert", [])


def _sub(parent: etree._Element, tag: str, text: str) -> etree._Element:
    node = etree.SubElement(parent, f"{{{NS}}}{tag}")
    node.text = text
    return node


def update_area(update: Update) -> area_outline.AffectedArea | None:
    session = object_session(update)
    return area_outline.affected_area(session, update) if session is not None and update.area else None


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


def question_instruction(update: Update) -> str:
    """The open question of an update as CAP `<instruction>` text ("" when it asks none, or it is closed):
    `responseType` Execute means "do what <instruction> says", here: answer the message you received."""
    question = update.question
    if question is None or question.state != "open":
        return ""
    options = ", ".join(f"{o['key']} for {o['label']}" for o in question.options)
    return f"{question.text} If you received our message, reply {options}"


def alert_xml(update: Update) -> bytes:
    """One CAP 1.2 <alert> for a published update (valid against the OASIS CAP-v1.2.xsd)."""
    settings = get_settings()
    incident = update.incident
    msg_type, refs = msg_type_and_refs(update)
    root = etree.Element(f"{{{NS}}}alert", nsmap={None: NS})
    _sub(root, "identifier", identifier(update))
    _sub(root, "sender", sender())
    _sub(root, "sent", sent(update))
    _sub(root, "status", "Test" if update.test else "Actual")
    _sub(root, "msgType", msg_type)
    _sub(root, "scope", "Public")
    if update.test:
        _sub(root, "note", "Test message: no action required.")
    elif update.kind == UpdateKind.correction.value:
        _sub(root, "note", "Correction of an earlier message.")
    if refs:
        _sub(root, "references", " ".join(reference(r) for r in refs))
    _sub(root, "incidents", f"incident-{incident.id}")
    resolved = incident.status == IncidentStatus.resolved.value or update.status == IncidentStatus.resolved.value
    contact = "; ".join(f"{r['label']}: {r['value']}" for r in routes(incident.category))
    texts = {update.locale: (update.summary, update.body)}
    for loc, tr in (update.translations or {}).items():
        texts[loc] = (tr.get("summary", ""), tr.get("body", ""))
    web = f"{settings.public_url.rstrip('/')}/status/incidents/{incident.id}"
    area = update_area(update)
    asks = question_instruction(update)
    for locale, (summary, body) in texts.items():
        info = etree.SubElement(root, f"{{{NS}}}info")
        _sub(info, "language", locale)
        _sub(info, "category", category(incident))
        _sub(info, "event", incident.title)
        _sub(info, "responseType", "AllClear" if resolved or msg_type == "Cancel" else "Monitor")
        if asks and not resolved and msg_type != "Cancel":
            _sub(info, "responseType", "Execute")  # reply to the question in <instruction> (docs/responses.md)
        _sub(info, "urgency", "Past" if resolved else URGENCY.get(incident.severity, "Unknown"))
        _sub(info, "severity", SEVERITY.get(incident.severity, "Unknown"))
        _sub(info, "certainty", "Likely" if incident.status == IncidentStatus.investigating.value else "Observed")
        _sub(info, "senderName", settings.org_name)
        _sub(info, "headline", (summary or incident.title)[:160])
        _sub(info, "description", body)
        instruction = "; ".join(part for part in (asks, contact) if part)
        if instruction:
            _sub(info, "instruction", instruction)
        _sub(info, "web", web)
        area_elements(info, area)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
