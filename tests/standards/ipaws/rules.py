"""The CAP v1.2 USA IPAWS Profile v1.0 as checks: there is no XSD for the profile, so its rules are code (see NOTICE).

Sources: OASIS "CAP-v1.2-IPAWS-USA-v1.0" (docs.oasis-open.org/emergency/cap/v1.2/ipaws-profile/v1.0/), and the
profile as Google's validator applies it: google/cap-library java/src/com/google/publicalerts/cap/profile/us/
Ipaws1Profile.java @ 8be7847e12dc2010cc7016f86d4cf65d426772fc (its errors, plus its SAME-geocode recommendation,
enforced here because IPAWS-OPEN rejects EAS/WEA alerts without a location code). Run `errors()` after the CAP 1.2
schema check (tests/standards/cap).
"""

from __future__ import annotations

import re
from datetime import datetime

from lxml import etree

CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
CODE = "IPAWSv1.0"
EAS_ORG = {"EAS", "CIV", "WXR", "PEP"}  # SAME originator codes (47 CFR 11.31)
CMAMTEXT_MAX = 90  # WEA "CMAMtext": 90 characters
CMAMLONGTEXT_MAX = 360  # WEA 3.0 "CMAMlongtext" (FEMA, after v1.0): 360 characters


def _pairs(parent: etree._Element, tag: str) -> list[tuple[str, str]]:
    return [(p.findtext(f"{CAP}valueName") or "", p.findtext(f"{CAP}value") or "") for p in parent.findall(CAP + tag)]


def _zero_offset(value: str) -> bool:
    """True when a CAP dateTime is at UTC: the profile wants the sender's local offset (Ipaws1Profile
    SENT_INCLUDE_TIMEZONE_OFFSET / EXPIRES_INCLUDE_TIMEZONE_OFFSET, both errors)."""
    parsed = datetime.fromisoformat(value)
    return parsed.utcoffset() is not None and not parsed.utcoffset()


def errors(body: bytes) -> list[str]:
    """Every IPAWS v1.0 rule `body` (a CAP 1.2 alert) breaks, as "where: what" lines; [] when it meets the profile."""
    root = etree.fromstring(body)
    out: list[str] = []
    # <code> SHALL include "IPAWSv1.0" (VERSION_CODE_REQUIRED)
    if CODE not in [c.text for c in root.findall(f"{CAP}code")]:
        out.append(f"/alert: <code>{CODE}</code> required")
    # <sent> SHALL include the (local) time zone offset (SENT_INCLUDE_TIMEZONE_OFFSET)
    if _zero_offset(root.findtext(f"{CAP}sent") or ""):
        out.append("/alert/sent: a zero (UTC) offset; IPAWS wants the local offset")
    # an Update or Cancel MUST reference every related message not yet expired (UPDATE_OR_CANCEL_MUST_REFERENCE)
    if root.findtext(f"{CAP}msgType") in ("Update", "Cancel") and not (root.findtext(f"{CAP}references") or "").strip():
        out.append("/alert/references: an Update or Cancel must reference what it supersedes")
    infos = root.findall(f"{CAP}info")
    first: tuple[set[str], set[tuple[str, str]]] | None = None
    for i, info in enumerate(infos, 1):
        where = f"/alert/info[{i}]"
        # every <info> MUST have the same <category>s and <eventCode>s (CATEGORIES_MUST_MATCH, EVENT_CODES_MUST_MATCH)
        these = ({c.text or "" for c in info.findall(f"{CAP}category")}, set(_pairs(info, "eventCode")))
        if first is None:
            first = these
        elif these != first:
            out.append(f"{where}: <category>/<eventCode> differ from the first <info>")
        # <expires> is required, with the local offset (EXPIRES_IS_REQUIRED, EXPIRES_INCLUDE_TIMEZONE_OFFSET)
        expires = info.findtext(f"{CAP}expires")
        if not (expires or "").strip():
            out.append(f"{where}: <expires> required")
        elif _zero_offset(expires or ""):
            out.append(f"{where}/expires: a zero (UTC) offset; IPAWS wants the local offset")
        # one and only one SAME <eventCode>, a three-letter SAME event code (SAME_EVENT_CODE_REQUIRED)
        same = [v for n, v in _pairs(info, "eventCode") if n == "SAME"]
        if len(same) != 1 or not re.fullmatch(r"[A-Z]{3}", same[0]):
            out.append(f"{where}: exactly one SAME <eventCode> of three capital letters required, got {same}")
        # EAS and HazCollect: a parameter EAS-ORG with a SAME originator code (profile; a TODO in Ipaws1Profile)
        org = [v for n, v in _pairs(info, "parameter") if n == "EAS-ORG"]
        if len(org) != 1 or org[0] not in EAS_ORG:
            out.append(f"{where}: one EAS-ORG parameter (one of {sorted(EAS_ORG)}) required, got {org}")
        # WEA text: CMAMtext at most 90 characters; CMAMlongtext at most 360
        for name, limit in (("CMAMtext", CMAMTEXT_MAX), ("CMAMlongtext", CMAMLONGTEXT_MAX)):
            for value in (v for n, v in _pairs(info, "parameter") if n == name):
                if len(value) > limit:
                    out.append(f"{where}: {name} is {len(value)} characters, at most {limit}")
        # at least one <area> (AREA_IS_REQUIRED), each with a SAME 6-digit geocode (AREA_SAME_GEOCODE_RECOMMENDED)
        areas = info.findall(f"{CAP}area")
        if not areas:
            out.append(f"{where}: at least one <area> required")
        for j, area in enumerate(areas, 1):
            if not any(n == "SAME" and re.fullmatch(r"\d{6}", v) for n, v in _pairs(area, "geocode")):
                out.append(f"{where}/area[{j}]: a SAME <geocode> of 6 digits required")
    if not infos:
        out.append("/alert: at least one <info> required")
    return out
