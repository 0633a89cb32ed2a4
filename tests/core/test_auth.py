"""Every core endpoint: 401 without a key, 403 with a key lacking the scope, nothing written either way."""

from __future__ import annotations

import pytest
from tests.routes import app_routes

from .helpers import assert_error

INCIDENT = {"title": "x", "category": "emergency", "severity": "major"}
UPDATE = {"body": "x"}

#: (method, path, required scope, JSON body). Paths use incident 1 / update 1 (created by the fixture).
ENDPOINTS = [
    ("GET", "/v1/categories", "read", None),
    ("POST", "/v1/categories", "write", {"slug": "new", "name": "New"}),
    ("GET", "/v1/categories/emergency", "read", None),
    ("PATCH", "/v1/categories/emergency", "write", {"name": "E"}),
    ("DELETE", "/v1/categories/emergency", "write", None),
    ("GET", "/v1/routing-map", "read", None),
    ("PUT", "/v1/routing-map", "write", {"categories": []}),
    ("GET", "/v1/routing-map/versions", "read", None),
    ("GET", "/v1/routing-map/versions/1", "read", None),
    ("POST", "/v1/routing-map/versions/1/approve", "publish", None),
    ("POST", "/v1/routing-map/versions/1/reject", "publish", {"comment": "x"}),
    ("GET", "/v1/incidents", "read", None),
    ("POST", "/v1/incidents", "write", INCIDENT),
    ("GET", "/v1/incidents/1", "read", None),
    ("PATCH", "/v1/incidents/1", "write", {"title": "y"}),
    ("DELETE", "/v1/incidents/1", "admin", None),
    ("POST", "/v1/incidents/1/updates", "write", UPDATE),
    ("GET", "/v1/incidents/1/updates", "read", None),
    ("GET", "/v1/incidents/1/change-requests", "read", None),
    ("GET", "/v1/incidents/1/change-requests/1", "read", None),
    ("POST", "/v1/incidents/1/change-requests/1/approve", "publish", None),
    ("POST", "/v1/incidents/1/change-requests/1/reject", "publish", {"comment": "no"}),
    ("GET", "/v1/updates/1", "read", None),
    ("PATCH", "/v1/updates/1", "write", {"body": "y"}),
    ("DELETE", "/v1/updates/1", "write", None),
    ("POST", "/v1/updates/1/publish", "publish", None),
    ("POST", "/v1/updates/1/approve", "publish", None),
    ("POST", "/v1/updates/1/reject", "publish", {"comment": "no"}),
    ("POST", "/v1/updates/1/preview", "read", None),
    ("POST", "/v1/preview", "read", {"category": "emergency", "severity": "major", "update": UPDATE}),
    ("POST", "/v1/alerts", "alerts", {"category": "emergency", "message": "x"}),
    ("GET", "/v1/keys", "admin", None),
    ("DELETE", "/v1/keys/1", "admin", None),
]
CORE_TAGS = {"incidents", "alerts", "routing map", "api keys"}


@pytest.fixture
def seeded(client, admin, emergency_category):
    incident = client.post("/v1/incidents", headers=admin, json=INCIDENT | {"update": UPDATE}).json()
    assert incident["id"] == 1 and incident["updates"][0]["id"] == 1
    return incident


def _wrong_scope(required: str) -> str:
    return "alerts" if required == "read" else "read"


@pytest.mark.parametrize(("method", "path", "scope", "body"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _, _ in ENDPOINTS])
def test_401_without_key_and_403_with_wrong_scope(client, auth, seeded, unchanged, method, path, scope, body):
    wrong = auth(_wrong_scope(scope))
    with unchanged():
        missing = client.request(method, path, json=body)
        assert_error(missing, 401, "unauthorized", "Authorization")
        assert missing.headers["www-authenticate"] == "Bearer"
        assert_error(client.request(method, path, json=body, headers={"Authorization": "Bearer bk_0_x"}), 401)
        forbidden = assert_error(client.request(method, path, json=body, headers=wrong), 403, "forbidden")
        assert forbidden["required_scope"] == scope


@pytest.mark.parametrize(("method", "path", "scope", "body"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _, _ in ENDPOINTS])
def test_the_right_scope_gets_through(client, auth, seeded, method, path, scope, body):
    resp = client.request(method, path, json=body, headers=auth(scope))
    assert resp.status_code not in (401, 403), resp.text
    assert resp.status_code < 500


def test_every_core_route_is_in_the_table(app):
    routes = {
        (method, path) for method, path, route in app_routes(app) if CORE_TAGS & set(getattr(route, "tags", None) or [])
    }
    assert routes, "no core routes found: the test would check nothing"
    table = {(m, p.replace("/1", "/{id}").replace("emergency", "{slug}")) for m, p, _, _ in ENDPOINTS}
    normalised = {
        (
            m,
            p.replace("{incident_id}", "{id}")
            .replace("{update_id}", "{id}")
            .replace("{key_id}", "{id}")
            .replace("{change_id}", "{id}")
            .replace("{number}", "{id}"),
        )
        for m, p in routes
    }
    assert normalised - table == set(), "add new endpoints to ENDPOINTS"


def test_admin_implies_every_scope(client, admin, seeded):
    assert client.get("/v1/incidents", headers=admin).status_code == 200
    assert client.post("/v1/alerts", headers=admin, json={"category": "emergency", "message": "x"}).status_code == 201
