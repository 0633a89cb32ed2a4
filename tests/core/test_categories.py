"""`/v1/categories`: CRUD of routing-map entries, auth and bad input."""

from __future__ import annotations

import pytest

from .helpers import assert_error

NEW = {
    "slug": "billing",
    "name": "Billing",
    "contact": {"portal_url": "https://portal.example.org/billing", "email": "billing@example.org"},
    "channels": {"major": ["email"], "critical": ["email", "banner"]},
}


def test_create_get_list_patch_delete(client, auth, unchanged):
    writer, reader = auth("write"), auth("read")
    created = client.post("/v1/categories", headers=writer, json=NEW)
    assert created.status_code == 201, created.text
    cat = created.json()
    assert cat["slug"] == "billing" and cat["name"] == "Billing"
    assert cat["contact"] == {"portal_url": "https://portal.example.org/billing", "email": "billing@example.org"}
    assert cat["channels"] == {"major": ["email"], "critical": ["email", "banner"]}

    assert client.get("/v1/categories/billing", headers=reader).json() == cat
    assert [c["slug"] for c in client.get("/v1/categories", headers=reader).json()] == ["billing"]

    patched = client.patch(
        "/v1/categories/billing",
        headers=writer,
        # fewer channels (adding one loosens safety: an admin proposes it, tests/core/test_routing_versions.py)
        json={"name": "Billing & payments", "contact": {"phone": "+1 555 123 4567"}, "channels": {"major": ["email"]}},
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["name"] == "Billing & payments"
    assert body["contact"] == {"phone": "+15551234567"}  # E.164, replaces the whole contact route
    assert body["channels"] == {"major": ["email"]}

    assert client.delete("/v1/categories/billing", headers=writer).status_code == 204
    assert_error(client.get("/v1/categories/billing", headers=reader), 404, "unknown_category", "slug")


def test_list_is_ordered_by_position(client, admin, emergency_category, technical_category):
    client.post("/v1/categories", headers=admin, json=NEW | {"position": 1})
    slugs = [c["slug"] for c in client.get("/v1/categories", headers=admin).json()]
    assert slugs == ["emergency", "billing", "technical-issue"]


def test_duplicate_slug_is_409_and_writes_nothing(client, admin, emergency_category, unchanged):
    with unchanged():
        resp = client.post("/v1/categories", headers=admin, json={"slug": "emergency", "name": "Again"})
    assert_error(resp, 409, "duplicate", "slug")


def test_delete_category_in_use_is_409(client, admin, make_incident, unchanged):
    make_incident()
    with unchanged():
        assert_error(client.delete("/v1/categories/emergency", headers=admin), 409, field="slug")
    assert client.get("/v1/categories/emergency", headers=admin).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (NEW | {"slug": "Not A Slug"}, "slug"),
        (NEW | {"slug": ""}, "slug"),
        ({"slug": "x"}, "name"),
        (NEW | {"channels": {"critical": ["pigeon"]}}, "channels"),
        (NEW | {"channels": {"urgent": ["email"]}}, "channels.urgent.[key]"),
        (NEW | {"channels": {"major": ["email", "email"]}}, "channels"),
        (NEW | {"contact": {"phone": "call us"}}, "contact.phone"),
        (NEW | {"contact": {"live_chat_url": "not a url"}}, "contact.live_chat_url"),
        (NEW | {"contact": {"fax": "+15551234567"}}, "contact.fax"),
        (NEW | {"unknown": 1}, "unknown"),
        (NEW | {"position": 10**30}, "position"),
    ],
)
def test_bad_category_is_422_and_writes_nothing(client, admin, body, field, unchanged):
    with unchanged():
        resp = client.post("/v1/categories", headers=admin, json=body)
    assert_error(resp, 422, "invalid", field)


def test_patch_bad_input_leaves_category_unchanged(client, admin, emergency_category, unchanged):
    with unchanged():
        resp = client.patch("/v1/categories/emergency", headers=admin, json={"channels": {"critical": ["pigeon"]}})
    assert_error(resp, 422, "invalid", "channels")
    assert client.get("/v1/categories/emergency", headers=admin).json() == emergency_category


def test_unknown_category_is_404(client, admin):
    assert_error(client.patch("/v1/categories/nope", headers=admin, json={"name": "x"}), 404, "unknown_category")
    assert_error(client.delete("/v1/categories/nope", headers=admin), 404, "unknown_category")


def test_patch_with_null_fields_leaves_them_unchanged(client, admin, emergency_category):
    """`null` in a patch means "unchanged"; `"channels": null` used to be a 500 (the channel check ran on None)."""
    body = {"channels": None, "contact": None, "description": None, "position": None, "name": "Emergencies"}
    resp = client.patch("/v1/categories/emergency", headers=admin, json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["name"] == "Emergencies"
    assert resp.json()["channels"] == emergency_category["channels"]
    assert resp.json()["contact"] == emergency_category["contact"]
