"""`POST /v1/incidents` with its first update (what the console's compose form sends for a new incident): the
incident and the update are written together or not at all (issue 21: a failed submit once left an
"Untitled incident" behind)."""

from __future__ import annotations

from typing import Any


def _body(**update: Any) -> dict[str, Any]:
    return {
        "title": "Chlorine leak",
        "category": "emergency",
        "severity": "critical",
        "update": {"body": "Stay indoors.", **update},
    }


def test_incident_and_first_update_in_one_request(client, admin, emergency_category) -> None:
    resp = client.post("/v1/incidents", headers=admin, json=_body(summary="Stay in"))
    assert resp.status_code == 201, resp.text
    data = resp.json()
    assert data["title"] == "Chlorine leak"
    [update] = data["updates"]
    assert update["state"] == "draft" and update["summary"] == "Stay in"
    audit = client.get("/v1/audit", headers=admin, params={"target_type": "update"}).json()["items"]
    assert [(e["action"], e["target_id"]) for e in audit] == [("update.create", str(update["id"]))]


def test_an_invalid_first_update_writes_nothing(client, admin, emergency_category, unchanged) -> None:
    with unchanged():
        resp = client.post("/v1/incidents", headers=admin, json=_body(body=""))
    assert resp.status_code == 422
    assert [e["field"] for e in resp.json()["errors"]] == ["update.body"]
    assert client.get("/v1/incidents", headers=admin).json()["items"] == []


def test_a_first_update_refused_by_the_database_checks_writes_nothing(
    client, admin, emergency_category, unchanged
) -> None:
    """An error found while writing (a named area that does not exist) rolls the incident back too."""
    with unchanged():
        resp = client.post("/v1/incidents", headers=admin, json=_body(area={"areas": ["nowhere"]}))
    assert resp.status_code == 422, resp.text
    assert resp.json()["field"].startswith("update.area")
    assert client.get("/v1/incidents", headers=admin).json()["items"] == []


def test_a_blank_title_is_refused(client, admin, emergency_category, unchanged) -> None:
    with unchanged():
        resp = client.post("/v1/incidents", headers=admin, json=_body() | {"title": "   "})
    assert resp.status_code == 422
    assert resp.json()["field"] == "title"
