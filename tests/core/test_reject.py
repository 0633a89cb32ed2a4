"""Rejecting a pending update with a comment (issue 11): back to draft, who/when/why shown, audited.

Alice (read, write, publish) asks for approval; Bob (read, publish) reviews.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.approving import confirm

from .helpers import assert_error


@pytest.fixture
def alice(make_key) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key('read', 'write', 'publish', name='alice')}"}


@pytest.fixture
def bob(make_key) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key('read', 'publish', name='bob')}"}


@pytest.fixture
def pending(client, alice, make_incident, make_update) -> dict[str, Any]:
    incident = make_incident(severity="critical")
    update = make_update(incident["id"])
    resp = client.post(f"/v1/updates/{update['id']}/publish", headers=alice)
    assert resp.status_code == 202, resp.text
    return resp.json()["update"]


def _reject(client, update_id: int, who: dict[str, str], comment: Any = "Wrong district: it is the south one.") -> Any:
    return client.post(f"/v1/updates/{update_id}/reject", headers=who, json={"comment": comment})


def test_reject_returns_the_update_to_draft_with_the_comment(client, alice, bob, pending):
    resp = _reject(client, pending["id"], bob)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["state"] == "draft" and body["published_by"] is None
    assert body["rejection"]["by"] == "key:bob"
    assert body["rejection"]["comment"] == "Wrong district: it is the south one."
    assert body["rejection"]["at"]
    shown = client.get(f"/v1/updates/{pending['id']}", headers=alice).json()
    assert (
        shown["rejection"] == body["rejection"]
        and "ETag" not in client.get(f"/v1/updates/{pending['id']}", headers=alice).headers
    )
    # nothing was sent, and the rejected version cannot be approved any more
    assert client.get("/v1/broadcasts", headers=alice).json()["items"] == []
    again = client.post(
        f"/v1/updates/{pending['id']}/approve", json=confirm(pending["id"]), headers={**bob, "If-Match": '"x"'}
    )
    assert_error(again, 409, "not_pending")


def test_reject_is_audited_with_before_and_after(client, admin, bob, pending):
    assert _reject(client, pending["id"], bob).status_code == 200
    items = client.get("/v1/audit", headers=admin, params={"action": "update.reject"}).json()["items"]
    [entry] = items
    assert entry["actor"] == "key:bob" and entry["target_type"] == "update"
    assert entry["target_id"] == str(pending["id"])
    assert entry["before"]["state"] == "pending_approval" and entry["before"]["requested_by"] == "key:alice"
    assert entry["after"]["state"] == "draft" and entry["after"]["rejected_by"] == "key:bob"
    assert entry["detail"]["comment"] == "Wrong district: it is the south one."


def test_the_requester_cannot_reject_their_own_request(client, alice, pending, unchanged):
    with unchanged():
        resp = _reject(client, pending["id"], alice)
    assert_error(resp, 403, "forbidden", "Authorization")
    assert client.get(f"/v1/updates/{pending['id']}", headers=alice).json()["state"] == "pending_approval"


def test_reject_needs_a_pending_update(client, alice, bob, make_incident, make_update):
    update = make_update(make_incident()["id"])
    assert_error(_reject(client, update["id"], bob), 409, "not_pending", "update_id")
    assert_error(_reject(client, 999_999, bob), 404, field="update_id")


@pytest.mark.parametrize("comment", ["", "   ", "x" * 2001, None, 5])
def test_reject_comment_is_validated(client, bob, pending, comment, unchanged):
    with unchanged():
        resp = _reject(client, pending["id"], bob, comment)
    assert_error(resp, 422, field="comment")


def test_reject_needs_the_publish_scope(client, auth, pending):
    assert_error(_reject(client, pending["id"], auth("read", "write")), 403, "forbidden")


def test_after_a_rejection_the_author_can_ask_again(client, alice, bob, pending):
    assert _reject(client, pending["id"], bob).status_code == 200
    edited = client.patch(f"/v1/updates/{pending['id']}", headers=alice, json={"body": "South district."})
    assert edited.status_code == 200, edited.text
    asked = client.post(f"/v1/updates/{pending['id']}/publish", headers=alice)
    assert asked.status_code == 202, asked.text
    assert asked.json()["update"]["rejection"]["by"] == "key:bob"  # the last rejection stays visible
    etag = client.post(f"/v1/updates/{pending['id']}/preview", headers=bob).headers["ETag"]
    approved = client.post(
        f"/v1/updates/{pending['id']}/approve", json=confirm(pending["id"]), headers={**bob, "If-Match": etag}
    )
    assert approved.status_code == 200, approved.text


def test_openapi_documents_reject(client):
    doc = client.get("/openapi.json").json()
    op = doc["paths"]["/v1/updates/{update_id}/reject"]["post"]
    assert {"200", "403", "404", "409"} <= set(op["responses"])
    assert "rejection" in doc["components"]["schemas"]["UpdateOut"]["properties"]
