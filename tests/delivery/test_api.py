"""Subscribers API, CSV import, broadcast reports, cancel, delivery log and CSV export, auth and bad input."""

from __future__ import annotations

from sqlalchemy import func, select


def _count_subscribers() -> int:
    from broadcaster.db import session_scope
    from broadcaster.models.delivery import Subscriber

    with session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(Subscriber)))


def test_subscriber_crud_and_scopes(client, auth, emergency_category):
    body = {"phone": "+1 (555) 123-0001", "email": "Ann@Example.org", "categories": ["emergency"], "locale": "fr_ca"}
    assert client.post("/v1/subscribers", json=body).status_code == 401
    assert client.post("/v1/subscribers", json=body, headers=auth("read")).status_code == 403
    assert _count_subscribers() == 0
    resp = client.post("/v1/subscribers", json=body, headers=auth("write"))
    assert resp.status_code == 201, resp.text
    sub = resp.json()
    assert (sub["phone"], sub["email"], sub["locale"], sub["categories"]) == (
        "+15551230001",
        "ann@example.org",
        "fr-CA",
        ["emergency"],
    )
    dup = client.post("/v1/subscribers", json={"email": "ann@example.org"}, headers=auth("write"))
    assert dup.status_code == 409
    reader = auth("read")
    assert client.get(f"/v1/subscribers/{sub['id']}", headers=reader).json()["id"] == sub["id"]
    assert client.get("/v1/subscribers", headers=reader).json()["items"][0]["id"] == sub["id"]
    assert client.get("/v1/subscribers?category=other", headers=reader).json()["items"] == []
    assert client.get("/v1/subscribers", headers={}).status_code == 401
    patched = client.patch(f"/v1/subscribers/{sub['id']}", json={"tags": ["North"]}, headers=auth("write"))
    assert patched.status_code == 200 and patched.json()["tags"] == ["north"]
    assert client.patch(f"/v1/subscribers/{sub['id']}", json={"tags": ["x"]}, headers=reader).status_code == 403
    assert client.delete(f"/v1/subscribers/{sub['id']}", headers=reader).status_code == 403
    assert client.delete(f"/v1/subscribers/{sub['id']}", headers=auth("write")).status_code == 204
    assert client.get(f"/v1/subscribers/{sub['id']}", headers=reader).status_code == 404


def test_subscriber_bad_input_writes_nothing(client, auth, emergency_category):
    w = auth("write")
    cases = [
        ({"phone": "5551234"}, "phone"),
        ({"email": "not-an-email"}, "email"),
        ({}, None),
        ({"email": "a@example.org", "categories": ["nope"]}, "categories"),
        ({"email": "a@example.org", "locale": "english!"}, "locale"),
        ({"email": "a@example.org", "surprise": 1}, "surprise"),
    ]
    for body, field in cases:
        resp = client.post("/v1/subscribers", json=body, headers=w)
        assert resp.status_code == 422, (body, resp.text)
        if field:
            assert field in (resp.json()["field"] or ""), (body, resp.json())
    assert _count_subscribers() == 0


def test_csv_import_keeps_good_rows_and_reports_bad_ones(client, auth, emergency_category):
    csv_text = (
        "phone,email,name,locale,categories,tags,test_group\n"
        "+15550000001,a@example.org,Ann,en,emergency,north;south,yes\n"
        "12345,b@example.org,Bob,en,,,\n"
        "+15550000003,not-mail,Cy,en,,,\n"
        "+15550000004,d@example.org,Di,en,unknown-cat,,\n"
        ",,Nobody,en,,,\n"
        "+15550000001,,Ann again,fr,,,\n"
    )
    assert client.post("/v1/subscribers/import", content=csv_text, headers=auth("read")).status_code == 403
    resp = client.post(
        "/v1/subscribers/import?wait=true",
        files={"file": ("subs.csv", csv_text, "text/csv")},
        headers=auth("write"),
    )
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert (report["state"], report["created"], report["updated"], report["rejected"]) == ("done", 1, 1, 4)
    assert (report["filename"], report["total_rows"], report["rows_done"]) == ("subs.csv", 6, 6)
    rejected = {e["row"]: e["field"] for e in report["errors"]}
    assert rejected == {3: "phone", 4: "email", 5: "categories", 6: None}
    subs = client.get("/v1/subscribers", headers=auth("read")).json()["items"]
    assert len(subs) == 1
    assert (subs[0]["name"], subs[0]["locale"], subs[0]["tags"], subs[0]["test_group"]) == (
        "Ann again",
        "fr",
        ["north", "south"],
        True,
    )
    bad = client.post("/v1/subscribers/import", content="name\nx\n", headers=auth("write"))
    assert bad.status_code == 422 and bad.json()["field"] == "file"


def test_broadcast_report_log_export_and_cancel(
    memory, drain, add_subscribers, publish, client, auth, emergency_category
):
    from broadcaster.db import session_scope
    from broadcaster.delivery.planner import plan_next
    from broadcaster.delivery.testing import permanent

    add_subscribers(3)
    memory.script["+15550000002"] = [permanent("21211", "=HYPERLINK(bad)")]
    out = publish(channels=["memory"])
    bid = out["broadcast_id"]
    reader = auth("read")
    assert client.get(f"/v1/broadcasts/{bid}").status_code == 401
    assert client.get(f"/v1/broadcasts/{bid}", headers=reader).json()["state"] == "planning"
    drain()
    rep = client.get(f"/v1/broadcasts/{bid}", headers=reader).json()
    assert rep["counts"] == {"memory": {"sent": 2, "failed": 1}}
    assert (rep["state"], rep["total"], rep["finished"], rep["progress"]) == ("done", 3, 3, 1.0)
    assert rep["rate_per_second"] >= 0
    log = client.get(f"/v1/broadcasts/{bid}/deliveries?status=failed", headers=reader).json()
    assert [d["address"] for d in log["items"]] == ["+15550000002"]
    assert log["items"][0]["error_reason"] == "=HYPERLINK(bad)"
    page = client.get(f"/v1/broadcasts/{bid}/deliveries?limit=2", headers=reader).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = client.get(f"/v1/broadcasts/{bid}/deliveries?limit=2&cursor={page['next_cursor']}", headers=reader)
    assert len(rest.json()["items"]) == 1
    csv_resp = client.get(f"/v1/broadcasts/{bid}/deliveries.csv", headers=reader)
    assert csv_resp.status_code == 200 and csv_resp.headers["content-type"].startswith("text/csv")
    lines = csv_resp.text.strip().splitlines()
    assert lines[0].startswith("id,channel,address") and len(lines) == 4
    assert "'=HYPERLINK(bad)" in csv_resp.text  # formula neutralised
    assert client.get("/v1/broadcasts", headers=reader).json()["items"][0]["id"] == bid
    assert client.get("/v1/broadcasts/999999", headers=reader).status_code == 404

    # cancel: needs publish scope; pending rows stop at once
    second = publish(channels=["memory"])["broadcast_id"]
    with session_scope() as session:
        plan_next(session)
    assert client.post(f"/v1/broadcasts/{second}/cancel", headers=auth("write")).status_code == 403
    assert client.post(f"/v1/broadcasts/{second}/cancel").status_code == 401
    resp = client.post(f"/v1/broadcasts/{second}/cancel", headers=auth("publish"))
    assert resp.status_code == 200 and resp.json() == {"id": second, "state": "cancelled", "cancelled": 3}
    sent_before = len(memory.sent)
    drain()
    assert len(memory.sent) == sent_before
    again = client.post(f"/v1/broadcasts/{second}/cancel", headers=auth("publish"))
    assert again.status_code == 409


def test_claimed_batch_rechecks_cancel(memory, add_subscribers, publish, emergency_category):
    import asyncio

    from broadcaster.db import get_engine, session_scope
    from broadcaster.delivery.planner import cancel, plan_next
    from broadcaster.delivery.worker import Worker, claim

    add_subscribers(2)
    bid = publish(channels=["memory"])["broadcast_id"]
    with session_scope() as session:
        plan_next(session)
    batch = claim(get_engine(), "w", 10, 60)
    with session_scope() as session:
        cancel(session, bid)
    outcomes = asyncio.run(Worker(worker_id="w").process(batch))
    assert {o.status for o in outcomes} == {"cancelled"}
    assert memory.sent == []


def test_health_ready_and_metrics(memory, drain, add_subscribers, publish, client, auth, emergency_category):
    assert client.get("/healthz").text == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ok"}
    add_subscribers(2)
    publish(channels=["memory"])
    from broadcaster.db import session_scope
    from broadcaster.delivery.planner import plan_next

    with session_scope() as session:
        plan_next(session)
    scraper = auth("metrics")
    text = client.get("/metrics", headers=scraper).text
    assert 'broadcaster_queue_depth{channel="memory"} 2.0' in text
    drain()
    text = client.get("/metrics", headers=scraper).text
    assert 'broadcaster_deliveries_total{channel="memory",status="sent"}' in text
    assert "broadcaster_send_seconds_bucket" in text


def test_openapi_documents_hand_parsed_bodies_and_non_json_answers(client):
    """Endpoints that parse their body themselves document it, and non-JSON answers name their media type
    (so clients and the schema fuzzer in tests/core/test_fuzz.py know them)."""
    paths = client.get("/openapi.json").json()["paths"]

    def body(path: str) -> set[str]:
        return set(paths[path]["post"]["requestBody"]["content"])

    def media(path: str, method: str, status: str) -> set[str]:
        return set(paths[path][method]["responses"][status]["content"])

    assert body("/v1/subscribers/import") == {"text/csv", "multipart/form-data"}
    assert body("/v1/subscribe") == {"application/json", "application/x-www-form-urlencoded"}
    assert (
        body("/v1/webhooks/twilio/status")
        == body("/v1/webhooks/twilio/inbound")
        == {"application/x-www-form-urlencoded"}
    )
    assert body("/v1/webhooks/sendgrid/events") == {"application/json"}
    assert media("/v1/webhooks/twilio/inbound", "post", "200") == {"application/xml"}
    assert media("/v1/broadcasts/{broadcast_id}/deliveries.csv", "get", "200") == {"text/csv"}
    assert media("/healthz", "get", "200") == {"text/plain"}
    assert media("/v1/subscribe", "post", "202") == {"application/json", "text/html"}
    for method in ("get", "post"):
        assert media("/v1/unsubscribe", method, "200") == {"text/html"}
    assert media("/v1/subscribe/confirm", "get", "400") == {"text/html"}


def test_nul_in_a_subscriber_is_422_naming_the_field(client, auth, emergency_category):
    """PostgreSQL cannot store NUL: it was a field-less 422 there (and stored on SQLite)."""
    w = auth("write")
    resp = client.post("/v1/subscribers", json={"phone": "+15551230000", "name": "a\x00b"}, headers=w)
    assert resp.status_code == 422 and resp.json()["field"] == "name", resp.text
    resp = client.post("/v1/subscribers", json={"phone": "+15551230000", "tags": ["a\x00"]}, headers=w)
    assert resp.status_code == 422 and resp.json()["field"] == "tags", resp.text
    assert _count_subscribers() == 0


def test_csv_import_odd_files(client, auth, emergency_category):
    """A bare CR in a field was a 500 (csv's "new-line character seen in unquoted field"), and so was a field
    over csv's size limit; a NUL in a row failed the whole import on PostgreSQL."""
    w = auth("write") | {"Content-Type": "text/csv"}
    resp = client.post(
        "/v1/subscribers/import?wait=true",
        headers=w,
        content="phone,name\r\n+15551230000,A\rB\r\n+15551230001,C\x00\r\n",
    )
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["created"] == 1 and [e["row"] for e in report["errors"]] == [3, 4]
    assert report["errors"][1]["field"] == "name"
    big = "phone,name\n+15551230002," + "x" * 200_000 + "\n"
    resp = client.post("/v1/subscribers/import", headers=w, content=big)
    assert resp.status_code == 422 and resp.json()["field"] == "file", resp.text
    assert _count_subscribers() == 1


def test_subscriber_search_ignores_case_and_wildcards(client, auth):
    """Searching "ann" finds "Ann" on PostgreSQL too (its LIKE is case-sensitive), and % matches only %."""
    w, r = auth("write"), auth("read")
    for body in ({"name": "Ann Smith", "email": "ann@example.org"}, {"name": "Bob 100%", "phone": "+15550001111"}):
        assert client.post("/v1/subscribers", json=body, headers=w).status_code == 201
    names = lambda q: [s["name"] for s in client.get("/v1/subscribers", params={"q": q}, headers=r).json()["items"]]  # noqa: E731
    assert names("ANN") == ["Ann Smith"]
    assert names("100%") == ["Bob 100%"] and names("%") == ["Bob 100%"] and names("_") == []
