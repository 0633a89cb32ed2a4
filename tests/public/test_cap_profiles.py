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
from tests.standards.google import rules as google
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


@pytest.fixture
def google_on(monkeypatch):
    from broadcaster.settings import get_settings

    monkeypatch.setenv("CAP_PROFILE", "google")
    monkeypatch.setenv("CAP_JURISDICTION_CIRCLE", "40.7128,-74.006 25")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_every_document_and_the_index_meet_google_public_alerts(client, auth, publish, google_on):
    """CAP_PROFILE=google: every message (each validated against the CAP 1.2 XSD by emit_everything) passes
    Google's CAP rules and the Atom index passes Google's feed rules; a message without an area of its own gets
    one area named after the organisation holding the jurisdiction circle."""
    bodies = emit_everything(client, auth, publish)
    for identifier, body in bodies.items():
        assert google.errors(body) == [], identifier
    assert google.feed_errors(client.get("/v1/feeds/cap.xml").content) == []
    from broadcaster.settings import get_settings

    bare = cap_xsd.validate(next(b for b in bodies.values() if b"Boil water" in b))
    [info] = bare.findall(f"{CAP}info")
    [area] = info.findall(f"{CAP}area")
    assert area.findtext(f"{CAP}areaDesc") == get_settings().org_name
    assert area.findtext(f"{CAP}circle") == "40.7128,-74.006 25"
    assert len(info.findtext(f"{CAP}headline") or "") == google.HEADLINE_MAX
    # an update with its own polygon keeps it and gets no jurisdiction circle
    fire = cap_xsd.validate(next(b for b in bodies.values() if b"<polygon>" in b and b"Feu" in b))
    assert not [c for c in fire.iter(f"{CAP}circle") if c.text == "40.7128,-74.006 25"]


def test_the_google_rules_can_fail(client, auth, publish, google_on, monkeypatch):
    update = publish("Heat emergency", severity="minor", summary="Cooling centers open", area=POLYGON)
    good = client.get(f"/v1/feeds/cap/{update['id']}.xml").content
    assert google.errors(good) == []
    polygon = re.search(rb"<polygon>([^<]*)</polygon>", good)
    assert polygon
    first_point = polygon.group(1).split()[0]
    broken = {
        "expires": re.sub(rb"<expires>[^<]*</expires>", b"", good),
        "web": re.sub(rb"<web>[^<]*</web>", b"", good),
        "description": re.sub(rb"<description>[^<]*</description>", b"<description> </description>", good),
        "area shape": re.sub(rb"<polygon>[^<]*</polygon>", b"", good),
        "open polygon": good.replace(polygon.group(1), polygon.group(1).rsplit(b" ", 1)[0]),
        "precision": good.replace(first_point, first_point.replace(b",", b"1234567,", 1)),
        "references": good.replace(b"<msgType>Alert</msgType>", b"<msgType>Update</msgType>"),
        "expired before sent": re.sub(
            rb"<expires>[^<]*</expires>", b"<expires>2000-01-01T00:00:00-00:00</expires>", good
        ),
    }
    for rule, body in broken.items():
        assert cap_xsd.is_valid(body), rule
        assert google.errors(body), rule
    index = client.get("/v1/feeds/cap.xml").content
    assert google.feed_errors(index) == []
    assert google.feed_errors(
        index.replace(b'type="application/cap+xml"', b'type="text/html"').replace(
            b"<entry>", b'<entry><link href="https://x.example/" rel="related"/>'
        )
    )
    entry_id = re.search(rb"<id>(urn:cap:[^<]*)</id>", index)
    assert entry_id
    assert google.feed_errors(index.replace(b"</feed>", b"<entry><id>" + entry_id.group(1) + b"</id></entry></feed>"))
    # plain CAP 1.2 (no profile) lacks <expires> and, without an area, an <area>
    monkeypatch.setenv("CAP_PROFILE", "")
    from broadcaster.settings import get_settings

    get_settings.cache_clear()
    plain = publish("Heat emergency 2", severity="minor")
    assert google.errors(client.get(f"/v1/feeds/cap/{plain['id']}.xml").content)


def test_the_google_profile_needs_a_jurisdiction_circle():
    from pydantic import ValidationError

    from broadcaster.settings import Settings

    with pytest.raises(ValidationError, match="CAP_JURISDICTION_CIRCLE"):
        Settings(cap_profile="google", cap_jurisdiction_circle="")
    for bad in ("40.7,-74", "91,0 5", "40.7,-74 0", "here"):
        with pytest.raises(ValidationError, match="lat,lon radius_km"):
            Settings(cap_profile="google", cap_jurisdiction_circle=bad)
    assert Settings(cap_profile="google", cap_jurisdiction_circle=" 40.7,-74  2.5").cap_jurisdiction_circle == (
        "40.7,-74 2.5"
    )
