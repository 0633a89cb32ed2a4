"""Updates: create/list/get/patch/delete, publish with the approval rule, corrections and cancels."""

from __future__ import annotations

import pytest
from tests.approving import confirm

from .helpers import assert_error


def test_create_list_get_patch_delete(client, auth, make_incident, unchanged):
    writer, reader = auth("write"), auth("read")
    incident = make_incident()
    resp = client.post(
        f"/v1/incidents/{incident['id']}/updates",
        headers=writer,
        json={
            "body": "Water is off on 5th Ave until 18:00.",
            "summary": "Water off until 18:00",
            "locale": "en",
            "translations": {"fr_ca": {"body": "L'eau est coupée jusqu'à 18 h.", "summary": "Eau coupée"}},
            "links": [{"title": "Map", "url": "https://example.org/map"}],
            "status": "identified",
            "channels": ["sms", "banner"],
            "audience": {"locales": ["en", "fr-ca"]},
        },
    )
    assert resp.status_code == 201, resp.text
    update = resp.json()
    assert update["state"] == "draft" and update["kind"] == "normal" and update["corrects_id"] is None
    assert update["translations"] == {"fr-CA": {"body": "L'eau est coupée jusqu'à 18 h.", "summary": "Eau coupée"}}
    assert update["links"] == [{"title": "Map", "url": "https://example.org/map"}]
    assert update["channels"] == ["sms", "banner"]
    assert update["audience"] == {"locales": ["en", "fr-CA"]}
    assert update["created_by"].startswith("key:")

    assert client.get(f"/v1/updates/{update['id']}", headers=reader).json() == update
    listed = client.get(f"/v1/incidents/{incident['id']}/updates", headers=reader).json()
    assert [u["id"] for u in listed] == [update["id"]]

    patched = client.patch(
        f"/v1/updates/{update['id']}", headers=writer, json={"summary": "Water off until 20:00", "channels": None}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["summary"] == "Water off until 20:00"
    assert patched.json()["channels"] is None  # back to the routing map's choice
    assert patched.json()["body"] == update["body"]

    assert client.delete(f"/v1/updates/{update['id']}", headers=writer).status_code == 204
    assert_error(client.get(f"/v1/updates/{update['id']}", headers=reader), 404, field="update_id")
    assert client.get(f"/v1/incidents/{incident['id']}/updates", headers=reader).json() == []


def test_publish_moves_incident_status(client, auth, make_incident, make_update):
    incident = make_incident(severity="major")
    update = make_update(incident["id"], status="resolved")
    resp = client.post(f"/v1/updates/{update['id']}/publish", json=confirm(update["id"]), headers=auth("publish"))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["approval_required"] is False
    assert body["update"]["state"] == "published" and body["update"]["published_at"]
    got = client.get(f"/v1/incidents/{incident['id']}", headers=auth("read")).json()
    assert got["status"] == "resolved" and got["resolved_at"] is not None


def test_published_update_is_frozen(client, admin, make_incident, make_update, unchanged):
    incident = make_incident()
    update = make_update(incident["id"])
    assert (
        client.post(f"/v1/updates/{update['id']}/publish", json=confirm(update["id"]), headers=admin).status_code == 200
    )
    with unchanged():
        assert_error(
            client.post(f"/v1/updates/{update['id']}/publish", json=confirm(update["id"]), headers=admin),
            409,
            "already_published",
        )
        assert_error(client.delete(f"/v1/updates/{update['id']}", headers=admin), 409, "already_published")
        assert_error(
            client.patch(f"/v1/updates/{update['id']}", headers=admin, json={"body": "changed"}),
            409,
            "already_published",
        )
    assert client.get(f"/v1/updates/{update['id']}", headers=admin).json()["body"] == update["body"]


def test_critical_update_needs_a_second_key(client, make_key, make_incident, make_update):
    incident = make_incident(severity="critical")
    update = make_update(incident["id"])
    requester = {"Authorization": f"Bearer {make_key('publish', name='alice')}"}
    approver = {"Authorization": f"Bearer {make_key('publish', name='bob')}"}

    pending = client.post(f"/v1/updates/{update['id']}/publish", json=confirm(update["id"]), headers=requester)
    assert pending.status_code == 202, pending.text
    assert pending.json()["approval_required"] is True
    assert pending.json()["update"]["state"] == "pending_approval"
    assert pending.json()["broadcast_id"] is None

    assert_error(
        client.post(f"/v1/updates/{update['id']}/approve", json=confirm(update["id"]), headers=requester),
        403,
        "forbidden",
    )
    assert client.get(f"/v1/updates/{update['id']}", headers=approver).status_code == 403  # publish != read

    etag = pending.headers["ETag"]  # the content asked for; approving needs it (tests/core/test_approval_rules.py)
    approved = client.post(
        f"/v1/updates/{update['id']}/approve", json=confirm(update["id"]), headers={**approver, "If-Match": etag}
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["update"]["state"] == "published"
    assert approved.json()["update"]["approved_by"] == "key:bob"
    assert approved.json()["update"]["published_by"] == "key:alice"  # the requester stays the publisher
    assert_error(
        client.post(f"/v1/updates/{update['id']}/approve", json=confirm(update["id"]), headers=approver),
        409,
        field="update_id",
    )


def test_editing_a_pending_update_voids_the_approval(client, auth, admin, make_incident, make_update):
    incident = make_incident(severity="critical")
    update = make_update(incident["id"])
    assert (
        client.post(
            f"/v1/updates/{update['id']}/publish", json=confirm(update["id"]), headers=auth("publish")
        ).status_code
        == 202
    )
    edited = client.patch(f"/v1/updates/{update['id']}", headers=admin, json={"body": "New text"})
    assert edited.json()["state"] == "draft" and edited.json()["published_by"] is None
    assert_error(
        client.post(f"/v1/updates/{update['id']}/approve", json=confirm(update["id"]), headers=auth("publish")), 409
    )


def test_test_updates_skip_approval(client, auth, make_incident, make_update):
    incident = make_incident(severity="critical")
    update = make_update(incident["id"], test=True)
    resp = client.post(f"/v1/updates/{update['id']}/publish", json=confirm(update["id"]), headers=auth("publish"))
    assert resp.status_code == 200, resp.text
    assert resp.json()["update"]["state"] == "published" and resp.json()["update"]["test"] is True


def test_approve_a_draft_is_409(client, admin, make_incident, make_update, unchanged):
    update = make_update(make_incident()["id"])
    with unchanged():
        assert_error(
            client.post(f"/v1/updates/{update['id']}/approve", json=confirm(update["id"]), headers=admin),
            409,
            field="update_id",
        )


@pytest.mark.parametrize("kind", ["correction", "cancel"])
def test_correction_and_cancel_reference_a_published_update(client, admin, make_incident, make_update, kind):
    incident = make_incident()
    original = make_update(incident["id"])
    assert (
        client.post(f"/v1/updates/{original['id']}/publish", json=confirm(original["id"]), headers=admin).status_code
        == 200
    )
    fix = make_update(incident["id"], kind=kind, corrects=original["id"], body="Correction: it is 6th Ave.")
    assert (fix["kind"], fix["corrects_id"]) == (kind, original["id"])
    published = client.post(f"/v1/updates/{fix['id']}/publish", json=confirm(fix["id"]), headers=admin)
    assert published.status_code == 200 and published.json()["update"]["state"] == "published"


def test_correction_validation_writes_nothing(client, admin, make_incident, make_update, unchanged):
    incident = make_incident()
    other = make_incident(title="Other")
    draft = make_update(incident["id"])
    published_elsewhere = make_update(other["id"])
    assert (
        client.post(
            f"/v1/updates/{published_elsewhere['id']}/publish", json=confirm(published_elsewhere["id"]), headers=admin
        ).status_code
        == 200
    )
    url = f"/v1/incidents/{incident['id']}/updates"
    cases = [
        {"body": "x", "kind": "correction"},  # no target
        {"body": "x", "kind": "cancel"},
        {"body": "x", "kind": "normal", "corrects": draft["id"]},  # only corrections reference
        {"body": "x", "kind": "correction", "corrects": draft["id"]},  # target not published
        {"body": "x", "kind": "correction", "corrects": published_elsewhere["id"]},  # another incident
        {"body": "x", "kind": "correction", "corrects": 999999},
        {"body": "x", "kind": "correction", "corrects": 10**30},
    ]
    with unchanged():
        for body in cases:
            assert_error(client.post(url, headers=admin, json=body), 422, field="corrects")
        assert_error(client.post(url, headers=admin, json={"body": "x", "kind": "retract"}), 422, field="kind")


VALID = {"body": "Crews on site.", "summary": "Crews on site"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"summary": "no body"}, "body"),
        (VALID | {"body": ""}, "body"),
        (VALID | {"body": "x" * 10_001}, "body"),
        (VALID | {"summary": "x" * 321}, "summary"),
        (VALID | {"locale": "english!"}, "locale"),
        (VALID | {"translations": {"english!": {"body": "x"}}}, "translations"),
        (VALID | {"translations": {"fr": {"summary": "no body"}}}, "translations.fr.body"),
        (VALID | {"links": [{"title": "x", "url": "javascript:alert(1)"}]}, "links.0.url"),
        (VALID | {"channels": ["pigeon"]}, "channels"),
        (VALID | {"status": "sleeping"}, "status"),
        (VALID | {"audience": {"locales": ["english!"]}}, "audience.locales"),
        (VALID | {"audience": {"planets": ["mars"]}}, "audience.planets"),
        (VALID | {"priority": 1}, "priority"),
        (VALID | {"body": "nul\x00"}, "body"),
    ],
)
def test_bad_update_is_422_and_writes_nothing(client, admin, make_incident, unchanged, body, field):
    incident = make_incident()
    with unchanged():
        resp = client.post(f"/v1/incidents/{incident['id']}/updates", headers=admin, json=body)
    assert_error(resp, 422, "invalid", field)


def test_bad_patch_changes_nothing(client, admin, make_incident, make_update):
    update = make_update(make_incident()["id"])
    for body, field in (
        ({"locale": "english!"}, "locale"),
        ({"channels": ["pigeon"]}, "channels"),
        ({"kind": "cancel"}, "kind"),
        ({"body": ""}, "body"),
    ):
        assert_error(client.patch(f"/v1/updates/{update['id']}", headers=admin, json=body), 422, field=field)
    assert client.get(f"/v1/updates/{update['id']}", headers=admin).json() == update


def test_update_of_unknown_incident_is_404(client, admin, unchanged):
    with unchanged():
        resp = client.post("/v1/incidents/999/updates", headers=admin, json=VALID)
    assert_error(resp, 404, "not_found", "incident_id")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/updates/999"),
        ("PATCH", "/v1/updates/999"),
        ("DELETE", "/v1/updates/999"),
        ("POST", "/v1/updates/999/publish"),
        ("POST", "/v1/updates/999/approve"),
    ],
)
def test_unknown_update_is_404(client, admin, method, path):
    resp = client.request(method, path, headers=admin, json={} if method == "PATCH" else None)
    assert_error(resp, 404, "not_found", "update_id")


@pytest.mark.parametrize(("threshold", "status"), [("1", 202), ("2", 200), ("0", 200)])
def test_large_audience_needs_approval(client, admin, make_incident, make_update, monkeypatch, threshold, status):
    from broadcaster.settings import get_settings

    for n in range(2):
        resp = client.post(
            "/v1/subscribers", headers=admin, json={"email": f"p{n}@example.org", "categories": ["emergency"]}
        )
        assert resp.status_code == 201, resp.text
    monkeypatch.setenv("APPROVAL_AUDIENCE_THRESHOLD", threshold)
    get_settings.cache_clear()
    update = make_update(make_incident(severity="minor")["id"], channels=["email"])
    resp = client.post(f"/v1/updates/{update['id']}/publish", json=confirm(update["id"]), headers=admin)
    assert resp.status_code == status, resp.text
    assert resp.json()["approval_required"] is (status == 202)


def test_approval_severity_none_turns_approval_off(client, admin, make_incident, make_update, monkeypatch):
    from broadcaster.settings import get_settings

    monkeypatch.setenv("APPROVAL_SEVERITY", "none")
    get_settings.cache_clear()
    update = make_update(make_incident(severity="critical")["id"])
    assert (
        client.post(f"/v1/updates/{update['id']}/publish", json=confirm(update["id"]), headers=admin).status_code == 200
    )
