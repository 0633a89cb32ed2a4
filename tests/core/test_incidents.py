"""`/v1/incidents`: CRUD, list filters and keyset pagination."""

from __future__ import annotations

import pytest

from .helpers import assert_error


def test_create_with_first_update_get_patch_delete(client, auth, emergency_category, unchanged):
    writer, reader = auth("write"), auth("read")
    resp = client.post(
        "/v1/incidents",
        headers=writer,
        json={
            "title": "Water main break on 5th Ave",
            "category": "emergency",
            "severity": "critical",
            "affected_services": ["water"],
            "sites": ["main-site"],
            "update": {"body": "Crews are on their way.", "summary": "Crews on the way", "locale": "en"},
        },
    )
    assert resp.status_code == 201, resp.text
    incident = resp.json()
    assert incident["title"] == "Water main break on 5th Ave"
    assert incident["category"] == "emergency"
    assert (incident["severity"], incident["status"]) == ("critical", "investigating")
    assert incident["affected_services"] == ["water"] and incident["sites"] == ["main-site"]
    assert incident["resolved_at"] is None and incident["started_at"]
    (update,) = incident["updates"]
    assert update["state"] == "draft" and update["body"] == "Crews are on their way."

    got = client.get(f"/v1/incidents/{incident['id']}", headers=reader)
    assert got.status_code == 200 and got.json() == incident

    patched = client.patch(
        f"/v1/incidents/{incident['id']}", headers=writer, json={"status": "resolved", "title": "Fixed"}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["status"] == "resolved" and patched.json()["resolved_at"] is not None
    reopened = client.patch(f"/v1/incidents/{incident['id']}", headers=writer, json={"status": "monitoring"})
    assert reopened.json()["resolved_at"] is None

    admin = auth("admin")
    assert client.delete(f"/v1/incidents/{incident['id']}", headers=admin).status_code == 204
    assert_error(client.get(f"/v1/incidents/{incident['id']}", headers=reader), 404, field="incident_id")


def test_patch_moves_category_and_severity(client, admin, make_incident, technical_category):
    incident = make_incident()
    resp = client.patch(
        f"/v1/incidents/{incident['id']}", headers=admin, json={"category": "technical-issue", "severity": "minor"}
    )
    assert resp.status_code == 200, resp.text
    assert (resp.json()["category"], resp.json()["severity"]) == ("technical-issue", "minor")


def test_delete_incident_with_published_update_is_409(client, admin, make_incident, make_update, unchanged):
    incident = make_incident(severity="minor")
    update = make_update(incident["id"])
    assert client.post(f"/v1/updates/{update['id']}/publish", headers=admin).status_code == 200
    with unchanged():
        assert_error(client.delete(f"/v1/incidents/{incident['id']}", headers=admin), 409, field="incident_id")


def test_list_filters(client, admin, make_incident, technical_category):
    a = make_incident(title="A", severity="critical")
    b = make_incident(title="B", severity="minor", category="technical-issue")
    c = make_incident(title="C", severity="minor", status="resolved")

    def ids(query: str) -> list[int]:
        resp = client.get(f"/v1/incidents{query}", headers=admin)
        assert resp.status_code == 200, resp.text
        return [i["id"] for i in resp.json()["items"]]

    assert ids("") == [c["id"], b["id"], a["id"]]  # newest first
    assert ids("?severity=minor") == [c["id"], b["id"]]
    assert ids("?category=technical-issue") == [b["id"]]
    assert ids("?status=resolved") == [c["id"]]
    assert ids("?active=true") == [b["id"], a["id"]]
    assert ids("?active=false") == [c["id"]]
    assert ids("?severity=minor&active=true") == [b["id"]]
    assert ids("?since=2000-01-01T00:00:00Z") == [c["id"], b["id"], a["id"]]
    assert ids("?since=2999-01-01T00:00:00Z") == []
    assert ids("?since=2000-01-01T01:00:00%2B01:00") == [c["id"], b["id"], a["id"]]  # offsets are instants
    assert ids("?since=2000-01-01") == [c["id"], b["id"], a["id"]]


def test_pagination_cursors_walk_every_incident_once(client, admin, make_incident):
    made = [make_incident(title=f"incident {n}")["id"] for n in range(5)]
    seen: list[int] = []
    url = "/v1/incidents?limit=2"
    pages = 0
    while True:
        page = client.get(url, headers=admin).json()
        pages += 1
        seen += [i["id"] for i in page["items"]]
        assert len(page["items"]) <= 2
        if page["next_cursor"] is None:
            break
        url = f"/v1/incidents?limit=2&cursor={page['next_cursor']}"
    assert pages == 3
    assert seen == sorted(made, reverse=True)


def test_exact_page_has_no_next_cursor(client, admin, make_incident):
    make_incident()
    make_incident()
    page = client.get("/v1/incidents?limit=2", headers=admin).json()
    assert len(page["items"]) == 2 and page["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?severity=urgent", "severity"),
        ("?status=sleeping", "status"),
        ("?limit=0", "limit"),
        ("?limit=501", "limit"),
        ("?cursor=abc", "cursor"),
        ("?cursor=99999999999999999999", "cursor"),
        ("?since=yesterday", "since"),
        # past year 1 / 9999 once in UTC: these were 500s (OverflowError binding the value)
        ("?since=0001-01-01T00:00:00%2B23:59", "since"),
        ("?since=9999-12-31T23:59:59-23:59", "since"),
        ("?active=maybe", "active"),
    ],
)
def test_bad_list_query_is_422(client, admin, query, field):
    assert_error(client.get(f"/v1/incidents{query}", headers=admin), 422, field=field)


def test_list_unknown_category_is_422(client, admin):
    assert_error(client.get("/v1/incidents?category=nope", headers=admin), 422, "unknown_category", "category")


VALID = {"title": "Outage", "category": "emergency", "severity": "major"}


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        (VALID | {"category": "nope"}, 422, "unknown_category", "category"),
        (VALID | {"severity": "urgent"}, 422, "invalid", "severity"),
        (VALID | {"status": "sleeping"}, 422, "invalid", "status"),
        ({k: v for k, v in VALID.items() if k != "title"}, 422, "invalid", "title"),
        (VALID | {"title": ""}, 422, "invalid", "title"),
        (VALID | {"title": "x" * 301}, 422, "invalid", "title"),
        (VALID | {"sites": ["Bad Site"]}, 422, "invalid", "sites"),
        (VALID | {"colour": "red"}, 422, "invalid", "colour"),
        (VALID | {"update": {"body": "x", "locale": "english!"}}, 422, "invalid", "update.locale"),
        (VALID | {"update": {"body": "x", "channels": ["pigeon"]}}, 422, "invalid", "update.channels"),
        (VALID | {"title": "nul \x00 byte"}, 422, "invalid", "title"),
        (VALID | {"affected_services": ["a\x00"]}, 422, "invalid", "affected_services"),
    ],
)
def test_bad_incident_is_4xx_and_writes_nothing(
    client, admin, emergency_category, unchanged, body, status, code, field
):
    with unchanged():
        resp = client.post("/v1/incidents", headers=admin, json=body)
    assert_error(resp, status, code, field)


def test_patch_bad_input_changes_nothing(client, admin, make_incident):
    incident = make_incident()
    for body, field in (
        ({"severity": "urgent"}, "severity"),
        ({"category": "nope"}, "category"),
        ({"title": ""}, "title"),
        ({"owner": "me"}, "owner"),
    ):
        assert_error(client.patch(f"/v1/incidents/{incident['id']}", headers=admin, json=body), 422, field=field)
    assert client.get(f"/v1/incidents/{incident['id']}", headers=admin).json() == incident


@pytest.mark.parametrize("path", ["/v1/incidents/999", "/v1/incidents/999/updates"])
def test_unknown_incident_is_404(client, admin, path):
    assert_error(client.get(path, headers=admin), 404, "not_found", "incident_id")


@pytest.mark.parametrize("incident_id", ["abc", "0", "99999999999999999999"])
def test_bad_incident_id_is_422(client, admin, incident_id):
    assert_error(client.get(f"/v1/incidents/{incident_id}", headers=admin), 422, field="incident_id")
