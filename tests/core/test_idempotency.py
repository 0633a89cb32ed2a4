"""`Idempotency-Key` on POST: replay, reuse with another body, failures not stored, scoped per API key."""

from __future__ import annotations

from .helpers import assert_error, row_counts

ALERT = {"category": "emergency", "message": "Water main break", "severity": "major"}


def test_same_key_and_body_replays_without_writing(client, auth, emergency_category):
    headers = auth("alerts") | {"Idempotency-Key": "op-1"}
    first = client.post("/v1/alerts", headers=headers, json=ALERT)
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    before = row_counts()
    again = client.post("/v1/alerts", headers=headers, json=ALERT)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert row_counts() == before
    assert len(client.get("/v1/incidents", headers=auth("read")).json()["items"]) == 1


def test_same_key_other_body_is_422(client, auth, emergency_category):
    headers = auth("alerts") | {"Idempotency-Key": "op-2"}
    assert client.post("/v1/alerts", headers=headers, json=ALERT).status_code == 201
    before = row_counts()
    other = client.post("/v1/alerts", headers=headers, json=ALERT | {"message": "Another"})
    assert_error(other, 422, "idempotency_key_reused", "Idempotency-Key")
    other_path = client.post("/v1/incidents", headers=headers, json={"title": "x"})
    assert_error(other_path, 422, "idempotency_key_reused")
    assert row_counts() == before


def test_failed_request_is_not_stored(client, auth, emergency_category):
    headers = auth("alerts") | {"Idempotency-Key": "op-3"}
    bad = client.post("/v1/alerts", headers=headers, json=ALERT | {"category": "nope"})
    assert_error(bad, 422, "unknown_category")
    assert row_counts()["idempotency_keys"] == 0
    fixed = client.post("/v1/alerts", headers=headers, json=ALERT)
    assert fixed.status_code == 201 and "idempotent-replayed" not in fixed.headers


def test_keys_are_per_api_key(client, auth, emergency_category):
    one, two = auth("alerts"), auth("alerts")
    a = client.post("/v1/alerts", headers=one | {"Idempotency-Key": "shared"}, json=ALERT)
    b = client.post("/v1/alerts", headers=two | {"Idempotency-Key": "shared"}, json=ALERT)
    assert a.status_code == b.status_code == 201
    assert "idempotent-replayed" not in b.headers
    assert a.json()["incident"]["id"] != b.json()["incident"]["id"]


def test_works_on_every_post(client, admin, emergency_category):
    headers = admin | {"Idempotency-Key": "create-incident"}
    body = {"title": "x", "category": "emergency", "severity": "minor"}
    first = client.post("/v1/incidents", headers=headers, json=body)
    again = client.post("/v1/incidents", headers=headers, json=body)
    assert again.headers["idempotent-replayed"] == "true" and again.json()["id"] == first.json()["id"]


def test_without_a_key_the_endpoint_answers_401(client, emergency_category):
    resp = client.post("/v1/alerts", headers={"Idempotency-Key": "k"}, json=ALERT)
    assert_error(resp, 401)
    assert row_counts()["idempotency_keys"] == 0


def test_overlong_key_is_422(client, auth, emergency_category):
    resp = client.post("/v1/alerts", headers=auth("alerts") | {"Idempotency-Key": "k" * 256}, json=ALERT)
    assert_error(resp, 422, "invalid", "Idempotency-Key")
    assert row_counts()["incidents"] == 0


def test_key_on_a_path_longer_than_the_column_is_the_endpoint_answer(client, admin):
    """The request path is stored with the key (500 characters): a longer one was a 500 on PostgreSQL."""
    path = f"/v1/updates/{'9' * 600}/publish"
    resp = client.post(path, headers=admin | {"Idempotency-Key": "long-path"})
    assert_error(resp, 422, "invalid", "update_id")
    assert row_counts()["idempotency_keys"] == 0


def test_key_of_a_request_cut_off_by_a_crash_says_so(client, auth, emergency_category):
    """A pending record (the server died mid-request) answers 409 in progress, and once it is clearly stale,
    409 abandoned telling the client to check and use a new key; it never runs the request a second time."""
    from datetime import timedelta

    from sqlalchemy import update

    from broadcaster.db import session_scope
    from broadcaster.models import IdempotencyRecord, utcnow

    headers = auth("alerts") | {"Idempotency-Key": "crashed"}
    assert client.post("/v1/alerts", headers=headers, json=ALERT).status_code == 201
    with session_scope() as session:  # as if the process had died before storing the response
        session.execute(update(IdempotencyRecord).values(status_code=None, response_body=None))
    before = row_counts()
    assert_error(client.post("/v1/alerts", headers=headers, json=ALERT), 409, "idempotency_in_progress")
    with session_scope() as session:
        session.execute(update(IdempotencyRecord).values(created_at=utcnow() - timedelta(minutes=6)))
    stale = client.post("/v1/alerts", headers=headers, json=ALERT)
    assert_error(stale, 409, "idempotency_key_abandoned", "Idempotency-Key")
    assert "new key" in stale.json()["detail"]
    assert row_counts() == before
