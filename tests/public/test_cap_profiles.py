"""CAP profiles (issue 22): with CAP_PROFILE=ipaws every CAP document the service emits meets the CAP v1.2 USA
IPAWS Profile v1.0 (tests/standards/ipaws/rules.py: the profile has no XSD), on top of the OASIS CAP 1.2 XSD."""

from __future__ import annotations

import re
from typing import Any

import pytest
from tests.public.test_area_display import BLOCKS, FIFTH_AVE, HOLE, ISLAND, add_named_area
from tests.public.test_cap_log import POLYGON, fields, patch_incident
from tests.public.test_feeds import cap_log
from tests.standards import cap as cap_xsd
from tests.standards.ipaws import rules as ipaws

CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"


def emit_everything(client, auth, publish) -> dict[str, bytes]:
    """Every kind of message: Alert (no area, then polygon), Update (multipolygon with a hole, circle, named area),
    correction, title- and status-edit Updates, Cancel, a translation, an exercise; the CAP log by identifier."""
    add_named_area("chelsea", "Chelsea", {"type": "MultiPolygon", "coordinates": [[BLOCKS, HOLE], [ISLAND]]})
    multi = {
        "description": FIFTH_AVE,
        "areas": ["chelsea"],
        "polygon": {"type": "MultiPolygon", "coordinates": [[BLOCKS, HOLE], [ISLAND]]},
        "circle": {"lat": 40.7359, "lon": -73.9911, "radius_m": 250},
    }
    bare = publish("Water main break", severity="major", summary="Boil water before drinking " + "x" * 120)
    publish(incident_id=bare["incident_id"], body="Crews on site.")
    first = publish(
        "Chemical fire <b>&</b> smoke",
        severity="minor",
        area=POLYGON,
        translations={"fr": {"body": "Incendie", "summary": "Feu"}},
    )
    iid = first["incident_id"]
    second = publish(incident_id=iid, body="Wider area.", area=multi, status="identified")
    publish(incident_id=iid, body="Fixed wording.", kind="correction", corrects=second["id"])
    patch_incident(client, auth, iid, title="Chemical fire, Chelsea")
    patch_incident(client, auth, iid, status="monitoring")
    publish(incident_id=iid, body="Retracted.", kind="cancel", corrects=first["id"])
    publish("Quarterly drill", severity="minor", test=True, area=POLYGON)
    bodies = cap_log(client)
    seen = [fields(b) for b in bodies.values()]  # fields() validates each against the CAP 1.2 XSD
    assert {f["msgType"] for f in seen} == {"Alert", "Update", "Cancel"}
    assert {f["status"] for f in seen} == {"Actual", "Exercise"}
    assert any(f["circles"] for f in seen) and any(len(f["polygons"]) >= 3 for f in seen)
    return bodies


@pytest.fixture
def ipaws_on(monkeypatch):
    from broadcaster.settings import get_settings

    monkeypatch.setenv("CAP_PROFILE", "ipaws")
    monkeypatch.setenv("CAP_IPAWS_GEOCODES", "036061,036047")
    monkeypatch.setenv("SITE_TIMEZONE", "America/New_York")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_every_document_meets_the_ipaws_profile(client, auth, publish, ipaws_on):
    bodies = emit_everything(client, auth, publish)
    for identifier, body in bodies.items():
        assert ipaws.errors(body) == [], identifier
        root = cap_xsd.validate(body)
        # the local offset of SITE_TIMEZONE (New York: -05:00 or -04:00), never UTC
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d-0[45]:00", root.findtext(f"{CAP}sent") or "")
    long_summary = next(b for b in bodies.values() if b"Boil water" in b)
    cmam = re.search(rb"<valueName>CMAMtext</valueName>\s*<value>([^<]*)</value>", long_summary)
    assert cmam and len(cmam.group(1).decode()) == ipaws.CMAMTEXT_MAX


def test_the_ipaws_rules_can_fail(client, auth, publish, ipaws_on, monkeypatch):
    """The checker catches each rule the emitter is meant to meet (so the test above can fail)."""
    update: dict[str, Any] = publish("Heat emergency", severity="minor", summary="Cooling centers open")
    good = client.get(f"/v1/feeds/cap/{update['id']}.xml").content
    assert ipaws.errors(good) == []
    sent = re.search(rb"<sent>([^<]*)</sent>", good)
    assert sent
    broken = {
        "code": good.replace(b"<code>IPAWSv1.0</code>", b""),
        "sent": good.replace(sent.group(1), b"2026-01-01T00:00:00-00:00"),
        "expires": re.sub(rb"<expires>[^<]*</expires>", b"", good),
        "eventCode": good.replace(b"<value>CEM</value>", b"<value>CEMX</value>"),
        "EAS-ORG": good.replace(b"<value>CIV</value>", b"<value>ABC</value>"),
        "CMAMtext": good.replace(b"<value>Cooling centers open</value>", b"<value>" + b"y" * 91 + b"</value>"),
        "geocode": good.replace(b"<value>036061</value>", b"<value>36061</value>").replace(
            b"<value>036047</value>", b"<value>36047</value>"
        ),
        "references": good.replace(b"<msgType>Alert</msgType>", b"<msgType>Update</msgType>"),
    }
    for rule, body in broken.items():
        assert cap_xsd.is_valid(body), rule  # still CAP 1.2: only the profile catches it
        assert ipaws.errors(body), rule
    monkeypatch.setenv("CAP_PROFILE", "")
    from broadcaster.settings import get_settings

    get_settings.cache_clear()
    plain = publish("Heat emergency 2", severity="minor")
    assert len(ipaws.errors(client.get(f"/v1/feeds/cap/{plain['id']}.xml").content)) >= 5
