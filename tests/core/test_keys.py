"""`/v1/keys`: list (masked) and revoke; revoked keys stop working."""

from __future__ import annotations

from .helpers import assert_error


def test_list_masks_keys(client, make_key, admin):
    plaintext = make_key("read", name="website")
    resp = client.get("/v1/keys", headers=admin)
    assert resp.status_code == 200
    keys = {k["name"]: k for k in resp.json()}
    assert keys["website"]["scopes"] == ["read"]
    assert keys["website"]["key"].endswith("_****") and plaintext not in resp.text
    assert keys["website"]["revoked_at"] is None
    assert keys["website"]["last_used_at"] is None
    client.get("/v1/incidents", headers={"Authorization": f"Bearer {plaintext}"})
    used = next(k for k in client.get("/v1/keys", headers=admin).json() if k["name"] == "website")
    assert used["last_used_at"] is not None


def test_revoke_makes_the_key_401(client, make_key, admin):
    plaintext = make_key("read", name="old")
    headers = {"Authorization": f"Bearer {plaintext}"}
    assert client.get("/v1/incidents", headers=headers).status_code == 200
    key_id = next(k["id"] for k in client.get("/v1/keys", headers=admin).json() if k["name"] == "old")
    assert client.delete(f"/v1/keys/{key_id}", headers=admin).status_code == 204
    assert_error(client.get("/v1/incidents", headers=headers), 401, "unauthorized")
    revoked = next(k for k in client.get("/v1/keys", headers=admin).json() if k["id"] == key_id)
    assert revoked["revoked_at"] is not None
    assert client.delete(f"/v1/keys/{key_id}", headers=admin).status_code == 204  # idempotent


def test_x_api_key_header_works(client, make_key):
    assert client.get("/v1/incidents", headers={"X-API-Key": make_key("read")}).status_code == 200


def test_unknown_key_is_404(client, admin, unchanged):
    with unchanged():
        assert_error(client.delete("/v1/keys/999", headers=admin), 404, "not_found", "key_id")


def test_garbage_keys_are_401(client):
    for value in ("Bearer nope", "Bearer bk_x_y", "Bearer bk_deadbeef_wrong", "Basic abc", "Bearer "):
        assert_error(client.get("/v1/incidents", headers={"Authorization": value}), 401, "unauthorized")


def test_key_id_past_the_column_is_422(client, admin, unchanged):
    """api_keys.id is a 32-bit INTEGER: 2**31 was a field-less 422 (database range error) on PostgreSQL."""
    with unchanged():
        assert_error(client.delete(f"/v1/keys/{2**31}", headers=admin), 422, "invalid", "key_id")
