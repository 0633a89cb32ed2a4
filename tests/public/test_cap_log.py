"""CAP as a message log (issue 22): a published alert never changes; a change to what it said is a new Update
referencing every message it supersedes; a retraction cancels every message still in force; Updates and
Cancels carry the area; every document the service emits validates against the official OASIS CAP 1.2 XSD."""

from __future__ import annotations

import re
from typing import Any

from tests.public.test_area_display import BLOCKS, BLOCKS_CAP, FIFTH_AVE, HOLE, ISLAND, add_named_area
from tests.public.test_feeds import cap_log
from tests.standards import cap as cap_xsd

CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
POLYGON = {"description": FIFTH_AVE, "polygon": {"type": "Polygon", "coordinates": [BLOCKS]}}


def fields(body: bytes) -> dict[str, Any]:
    root = cap_xsd.validate(body)
    infos = root.findall(f"{CAP}info")
    return {
        "identifier": root.findtext(f"{CAP}identifier"),
        "sender": root.findtext(f"{CAP}sender"),
        "sent": root.findtext(f"{CAP}sent"),
        "status": root.findtext(f"{CAP}status"),
        "msgType": root.findtext(f"{CAP}msgType"),
        "incidents": root.findtext(f"{CAP}incidents"),
        "references": (root.findtext(f"{CAP}references") or "").split(),
        "event": [i.findtext(f"{CAP}event") for i in infos],
        "areas": [[a.findtext(f"{CAP}areaDesc") for a in i.findall(f"{CAP}area")] for i in infos],
        "polygons": [p.text for p in root.iter(f"{CAP}polygon")],
        "circles": [c.text for c in root.iter(f"{CAP}circle")],
    }


def ref(f: dict[str, Any]) -> str:
    return f"{f['sender']},{f['identifier']},{f['sent']}"


def log_of(client, incident_id: int) -> list[dict[str, Any]]:
    """The incident's messages, oldest first (the index lists newest first), each fetched from its own URL."""
    mine = [f for f in map(fields, cap_log(client).values()) if f["incidents"] == f"incident-{incident_id}"]
    return mine[::-1]


def _message_id(identifier: str) -> int:
    from sqlalchemy import select

    from broadcaster.db import session_scope
    from broadcaster.models.public import CapMessage

    with session_scope() as session:
        return int(session.scalars(select(CapMessage.id).where(CapMessage.identifier == identifier)).one())


def patch_incident(client, auth, incident_id: int, **changes: Any) -> None:
    resp = client.patch(f"/v1/incidents/{incident_id}", headers=auth("write", "publish"), json=changes)
    assert resp.status_code == 200, resp.text


def test_a_title_edit_is_a_new_update_and_the_alert_stays_byte_identical(client, auth, publish):
    first = publish("Boil water notice", severity="minor", area=POLYGON)
    iid = first["incident_id"]
    url = f"/v1/feeds/cap/{first['id']}.xml"
    before = client.get(url)
    assert before.status_code == 200
    was = fields(before.content)
    assert (was["msgType"], was["references"], was["event"]) == ("Alert", [], ["Boil water notice"])

    patch_incident(client, auth, iid, title="Boil water notice: north district")
    after = client.get(url)
    assert after.content == before.content  # same identifier, same sent, same bytes
    assert after.headers["etag"] == before.headers["etag"]

    log = log_of(client, iid)
    assert [(f["msgType"], f["event"]) for f in log] == [
        ("Alert", ["Boil water notice"]),
        ("Update", ["Boil water notice: north district"]),
    ]
    update = log[1]
    assert update["identifier"] == f"testserver.update.{first['id']}.2"
    assert update["references"] == [ref(was)]
    assert update["areas"] == [[FIFTH_AVE]] and update["polygons"] == [BLOCKS_CAP]  # the Update carries the area
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d-00:00", update["sent"])

    # nothing changed since: another publish elsewhere emits nothing more for this incident
    publish("Unrelated", severity="minor")
    assert len(log_of(client, iid)) == 2


def test_a_cancel_after_a_correction_cancels_both_and_carries_the_area(client, publish):
    first = publish("Gas leak", severity="minor", area=POLYGON)
    iid = first["incident_id"]
    fix = publish(incident_id=iid, body="Only Main St.", kind="correction", corrects=first["id"])
    cancel = publish(incident_id=iid, body="Sent in error.", kind="cancel", corrects=first["id"])
    original, correction, retraction = log_of(client, iid)
    assert original["identifier"] == f"testserver.update.{first['id']}"
    assert correction["identifier"] == f"testserver.update.{fix['id']}"
    assert retraction["identifier"] == f"testserver.update.{cancel['id']}"
    assert (correction["msgType"], correction["references"]) == ("Update", [ref(original)])
    assert (retraction["msgType"], retraction["references"]) == ("Cancel", [ref(original), ref(correction)])
    # neither the correction nor the cancel has an area of its own: both carry the one they supersede
    for message in (correction, retraction):
        assert message["areas"] == [[FIFTH_AVE]] and message["polygons"] == [BLOCKS_CAP]

    # after the retraction nothing is in force: the next update is a new Alert
    again = publish(incident_id=iid, body="A new leak on 2nd Ave.")
    newest = log_of(client, iid)[-1]
    assert newest["identifier"] == f"testserver.update.{again['id']}"
    assert (newest["msgType"], newest["references"], newest["areas"]) == ("Alert", [], [[]])


def test_a_cancel_carries_every_area_in_force(client, publish):
    first = publish("Flooding", severity="minor", area=POLYGON)
    iid = first["incident_id"]
    circle = {"description": "Riverside", "circle": {"lat": 40.73, "lon": -73.99, "radius_m": 1500}}
    publish(incident_id=iid, body="Now Riverside too.", area=circle)
    publish(incident_id=iid, body="Withdrawn.", kind="cancel", corrects=first["id"])
    *_, retraction = log_of(client, iid)
    assert retraction["msgType"] == "Cancel" and len(retraction["references"]) == 2
    assert retraction["areas"] == [[FIFTH_AVE, "Riverside"]]
    assert retraction["circles"] == ["40.73,-73.99 1.5"]


def test_every_document_the_service_emits_validates(client, auth, publish):
    """Alert, Update, correction, Cancel, title-edit Update, status-change Update, polygon, multipolygon with a
    hole, circle, named areas, translations, an exercise (test send): every one against the official XSD."""
    add_named_area("chelsea", "Chelsea", {"type": "MultiPolygon", "coordinates": [[BLOCKS, HOLE], [ISLAND]]})
    multi = {
        "description": FIFTH_AVE,
        "areas": ["chelsea"],
        "polygon": {"type": "MultiPolygon", "coordinates": [[BLOCKS, HOLE], [ISLAND]]},
        "circle": {"lat": 40.7359, "lon": -73.9911, "radius_m": 250},
    }
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
    seen = [fields(b) for b in bodies.values()]  # fields() validates each one
    assert {f["msgType"] for f in seen} == {"Alert", "Update", "Cancel"}
    assert {f["status"] for f in seen} == {"Actual", "Exercise"}
    assert any(f["circles"] for f in seen) and any(len(f["polygons"]) >= 3 for f in seen)
    for f in seen:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d-00:00", f["sent"])
        assert not re.search(r"[\s,<&]", f["identifier"] + f["sender"])
        for reference in f["references"]:
            sender, identifier, sent = reference.split(",")
            assert sender == f["sender"] and identifier in bodies and sent == fields(bodies[identifier])["sent"]
    exercise = [f for f in seen if f["status"] == "Exercise"]
    assert [f["msgType"] for f in exercise] == ["Alert"]
    assert b"<note>Exercise:" in bodies[exercise[0]["identifier"]]


def test_alerts_published_before_the_log_get_their_row_when_first_served(client, publish):
    """Upgrading: an update published before the table existed is logged the first time it is served, with the
    identifier it always had, and the same bytes from then on."""
    from sqlalchemy import delete

    from broadcaster.db import session_scope
    from broadcaster.models.public import CapMessage
    from broadcaster.public.cache import get_cache

    first = publish("Road closed", severity="minor")
    second = publish(incident_id=first["incident_id"], body="Still closed.")
    with session_scope() as session:
        session.execute(delete(CapMessage))
    get_cache().invalidate()
    body = client.get(f"/v1/feeds/cap/{second['id']}.xml").content
    log = log_of(client, first["incident_id"])
    assert [(f["identifier"], f["msgType"]) for f in log] == [
        (f"testserver.update.{first['id']}", "Alert"),
        (f"testserver.update.{second['id']}", "Update"),
    ]
    assert fields(body) == log[1]
    get_cache().invalidate()
    assert client.get(f"/v1/feeds/cap/{second['id']}.xml").content == body


def test_message_urls_404_for_unknown_and_private(client, publish, auth):
    assert client.get("/v1/feeds/cap/messages/999999.xml").status_code == 404
    update = publish("Private matter", severity="minor")
    [message] = log_of(client, update["incident_id"])
    message_id = _message_id(message["identifier"])
    assert client.get(f"/v1/feeds/cap/messages/{message_id}.xml").status_code == 200
    patch_incident(client, auth, update["incident_id"], public=False)
    assert client.get(f"/v1/feeds/cap/messages/{message_id}.xml").status_code == 404
    assert client.get(f"/v1/feeds/cap/{update['id']}.xml").status_code == 404
