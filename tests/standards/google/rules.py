"""Google Public Alerts' CAP requirements as checks (no XSD exists; see NOTICE).

`errors(body)` applies the errors of google/cap-library's GoogleProfile ("Google Public Alerts CAP v1.0",
java/src/com/google/publicalerts/cap/profile/GoogleProfile.java @ 56252b04be1e15ad6931b84fdb8c83c0988e4f1e) and two
written requirements of developers.google.com/public-alerts/reference/google-cap-requirements (one <info> per
language; polygons closed, at least 4 points, at most 6 decimal places). `feed_errors(atom)` applies
CapFeedValidator.java @ 8be7847e12dc2010cc7016f86d4cf65d426772fc and the feed-formats page (at most 900 KB).
Run after the CAP 1.2 schema check (tests/standards/cap).
"""

from __future__ import annotations

import re
from datetime import datetime

from lxml import etree

CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
ATOM = "{http://www.w3.org/2005/Atom}"
CAP_TYPES = {"application/cap+xml", "application/common-alerting-protocol+xml"}  # CapFeedParser's two CAP types
FEED_MAX_BYTES = 900 * 1024  # "feed formats": ideally 100 KB, at most 900 KB
HEADLINE_MAX = 140  # GoogleProfile HEADLINE_TOO_LONG (a recommendation, checked here too)


def _text(parent: etree._Element, tag: str) -> str:
    return (parent.findtext(CAP + tag) or "").strip()


def _pairs(parent: etree._Element, tag: str) -> set[tuple[str, str]]:
    return {(p.findtext(f"{CAP}valueName") or "", p.findtext(f"{CAP}value") or "") for p in parent.findall(CAP + tag)}


def _polygon_errors(text: str) -> list[str]:
    points = text.split()
    out = []
    if len(points) < 4 or points[0] != points[-1]:
        out.append("a polygon is closed (first point = last) with at least 4 points")
    if any(len(n.split(".")[1]) > 6 for p in points for n in p.split(",") if "." in n):
        out.append("polygon coordinates have at most 6 decimal places")
    return out


def errors(body: bytes) -> list[str]:
    """Every Google Public Alerts rule `body` (a CAP 1.2 alert) breaks, as "where: what"; [] when it meets them."""
    root = etree.fromstring(body)
    out: list[str] = []
    # UPDATE_OR_CANCEL_MUST_REFERENCE
    if _text(root, "msgType") in ("Update", "Cancel") and not _text(root, "references"):
        out.append("/alert/references: an Update or Cancel must reference the messages it applies to")
    infos = root.findall(f"{CAP}info")
    if not infos:  # INFO_IS_REQUIRED
        out.append("/alert: at least one <info> required")
    first: tuple[set[str], set[tuple[str, str]]] | None = None
    languages: list[str] = []
    for i, info in enumerate(infos, 1):
        where = f"/alert/info[{i}]"
        # CATEGORIES_MUST_MATCH, EVENT_CODES_MUST_MATCH
        these = ({c.text or "" for c in info.findall(f"{CAP}category")}, _pairs(info, "eventCode"))
        if first is None:
            first = these
        elif these != first:
            out.append(f"{where}: <category>/<eventCode> differ from the first <info>")
        # DESCRIPTION_IS_REQUIRED, WEB_IS_REQUIRED, EXPIRES_IS_REQUIRED, URGENCY/SEVERITY/CERTAINTY_IS_REQUIRED
        for tag in ("description", "web", "expires", "urgency", "severity", "certainty"):
            if not _text(info, tag):
                out.append(f"{where}: <{tag}> required")
        # EFFECTIVE_NOT_AFTER_EXPIRES (effective defaults to sent)
        if _text(info, "expires"):
            effective = datetime.fromisoformat(_text(info, "effective") or _text(root, "sent"))
            if effective > datetime.fromisoformat(_text(info, "expires")):
                out.append(f"{where}/expires: before <effective>/<sent>")
        if len(_text(info, "headline")) > HEADLINE_MAX:
            out.append(f"{where}/headline: more than {HEADLINE_MAX} characters")
        # multilingual alerts: one <info> per language (google-cap-requirements)
        languages.append(_text(info, "language") or "en-US")
        # AREA_IS_REQUIRED, CIRCLE_POLYGON_OR_GEOCODE_IS_REQUIRED
        areas = info.findall(f"{CAP}area")
        if not areas:
            out.append(f"{where}: at least one <area> required")
        for j, area in enumerate(areas, 1):
            if not any(area.find(CAP + tag) is not None for tag in ("polygon", "circle", "geocode")):
                out.append(f"{where}/area[{j}]: a <polygon>, <circle> or <geocode> required")
            for polygon in area.findall(f"{CAP}polygon"):
                out.extend(f"{where}/area[{j}]/polygon: {e}" for e in _polygon_errors(polygon.text or ""))
            for circle in area.findall(f"{CAP}circle"):
                match = re.fullmatch(r"\S+,\S+ (\S+)", (circle.text or "").strip())
                if not match or float(match[1]) <= 0:  # NONZERO_CIRCLE_RADIUS_RECOMMENDED
                    out.append(f"{where}/area[{j}]/circle: a radius above 0 required")
    if len(set(languages)) != len(languages):
        out.append(f"/alert: one <info> per language, got {languages}")
    return out


def feed_errors(atom: bytes) -> list[str]:
    """What Google's feed validator rejects in an Atom index of CAP messages; [] when none."""
    root = etree.fromstring(atom)
    out: list[str] = []
    if root.tag != f"{ATOM}feed":
        out.append("not an Atom feed")
    if len(atom) > FEED_MAX_BYTES:
        out.append(f"the feed is {len(atom)} bytes, at most {FEED_MAX_BYTES}")
    ids: set[str] = set()
    for i, entry in enumerate(root.findall(f"{ATOM}entry"), 1):
        where = f"/feed/entry[{i}]"
        links = entry.findall(f"{ATOM}link")
        typed = [ln for ln in links if (ln.get("type") or "").lower() in CAP_TYPES and ln.get("href")]
        if entry.find(f"{ATOM}content") is None and not typed and len(links) != 1:  # ATOM_ENTRY_MISSING_CAP_LINK
            out.append(f"{where}: a link to its CAP message required")
        entry_id = entry.findtext(f"{ATOM}id") or ""
        if not entry_id or entry_id in ids:  # ATOM_ENTRY_NON_UNIQUE_IDS
            out.append(f"{where}: a unique <id> required, got {entry_id!r}")
        ids.add(entry_id)
    return out
