"""One error shape; bad input is always 4xx (never 500) and writes nothing."""

from __future__ import annotations

import json

import pytest

from .helpers import assert_error

ALERT = {"category": "emergency", "message": "Water main break"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/alerts"),
        ("POST", "/v1/incidents"),
        ("POST", "/v1/categories"),
        ("POST", "/v1/incidents/1/updates"),
        ("PATCH", "/v1/incidents/1"),
        ("PATCH", "/v1/updates/1"),
        ("PATCH", "/v1/categories/emergency"),
    ],
)
def test_malformed_json_is_400(client, admin, emergency_category, unchanged, method, path):
    client.post("/v1/incidents", headers=admin, json={"title": "x", "category": "emergency", "severity": "minor"})
    client.post("/v1/incidents/1/updates", headers=admin, json={"body": "x"})
    headers = admin | {"Content-Type": "application/json"}
    with unchanged():
        for content in (b'{"category": "emergency",', b"not json", b'{"a": 1}}'):
            assert_error(client.request(method, path, headers=headers, content=content), 400, "malformed_json")


def test_missing_body_and_wrong_type_are_422(client, admin, unchanged):
    with unchanged():
        assert_error(client.post("/v1/alerts", headers=admin), 422, "invalid")
        assert_error(client.post("/v1/alerts", headers=admin, json=["a list"]), 422, "invalid")
        assert_error(client.post("/v1/alerts", headers=admin, content=b"category=x", params={}), 422, "invalid")


@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/alerts"), ("PUT", "/v1/routing-map")])
def test_oversize_body_is_413(client, admin, emergency_category, unchanged, method, path):
    from broadcaster.settings import get_settings

    limit = get_settings().max_body_bytes
    big = json.dumps(ALERT | {"message": "x" * limit})
    with unchanged():
        resp = client.request(method, path, headers=admin | {"Content-Type": "application/json"}, content=big)
    assert_error(resp, 413, "payload_too_large", "body")


@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/alerts"), ("PUT", "/v1/routing-map")])
@pytest.mark.parametrize("idempotency", [False, True])
def test_oversize_chunked_body_is_413(client, admin, emergency_category, unchanged, method, path, idempotency):
    """No Content-Length (chunked upload): the same 413, not a parse error."""
    from broadcaster.settings import get_settings

    limit = get_settings().max_body_bytes

    def chunks():
        yield b'{"category": "emergency", "message": "'
        for _ in range(limit // 1024 + 2):
            yield b"x" * 1024
        yield b'"}'

    headers = admin | {"Content-Type": "application/json"} | ({"Idempotency-Key": "big"} if idempotency else {})
    with unchanged():
        resp = client.request(method, path, headers=headers, content=chunks())
    assert_error(resp, 413, "payload_too_large", "body")


def test_unknown_route_and_method_use_the_shape(client, admin):
    assert_error(client.get("/v1/nothing-here", headers=admin), 404, "not_found")
    assert_error(client.put("/v1/alerts", headers=admin, json=ALERT), 405, "method_not_allowed")


BAD_INPUTS = [
    ("POST", "/v1/alerts", ALERT | {"category": "nope"}),
    ("POST", "/v1/alerts", ALERT | {"severity": "urgent"}),
    ("POST", "/v1/alerts", ALERT | {"locale": "english!"}),
    ("POST", "/v1/alerts", ALERT | {"channels": ["pigeon"]}),
    ("POST", "/v1/alerts", ALERT | {"message": "\x00"}),
    ("POST", "/v1/alerts", ALERT | {"translations": {"xx-YYYY-ZZ-1": {"body": "x"}}}),
    ("POST", "/v1/alerts", ALERT | {"links": [{"title": "x" * 201, "url": "https://example.org/"}]}),
    ("POST", "/v1/alerts", ALERT | {"links": [{"title": "x", "url": "ftp://example.org/"}]}),
    ("POST", "/v1/alerts", {"category": {"nested": 1}, "message": 5}),
    ("POST", "/v1/incidents", {"title": "x", "category": "emergency", "severity": "major", "sites": [""]}),
    ("POST", "/v1/incidents/99999999999999999999/updates", {"body": "x"}),
    ("GET", "/v1/incidents?cursor=9223372036854775808", None),
    ("GET", "/v1/incidents?since=99999-01-01", None),
    ("GET", "/v1/updates/-1", None),
    ("POST", "/v1/categories", {"slug": "a", "name": "A", "position": -1}),
    ("POST", "/v1/categories", {"slug": "a", "name": "A", "contact": {"phone": "+1" + "5" * 40}}),
    ("PUT", "/v1/routing-map", {"categories": [{"slug": "a", "name": "A", "channels": {"critical": "sms"}}]}),
    ("PUT", "/v1/routing-map", {"categories": "none"}),
    ("DELETE", "/v1/keys/99999999999999999999", None),
]


@pytest.mark.parametrize(("method", "path", "body"), BAD_INPUTS)
def test_documented_bad_inputs_never_500(safe_client, admin, emergency_category, unchanged, method, path, body):
    with unchanged():
        resp = safe_client.request(method, path, headers=admin, json=body)
    assert 400 <= resp.status_code < 500, resp.text
    assert_error(resp, resp.status_code)


DEEP = b"[" * 50_000 + b"]" * 50_000

RAW_BAD_INPUTS = [
    ("PUT", "/v1/routing-map", "application/json", DEEP),
    ("PUT", "/v1/routing-map", "application/yaml", DEEP),
    ("PUT", "/v1/routing-map", "application/yaml", b"categories: !!python/object:os.system ls"),
    ("PUT", "/v1/routing-map", "application/yaml", b"{? [a]: b}"),
    ("PUT", "/v1/routing-map", "application/yaml", b"categories:\n  - {slug: 2020-01-01, name: A}\n"),
    ("POST", "/v1/alerts", "application/json", DEEP),
    ("POST", "/v1/alerts", "application/json", b'{"category": "emergency", "message": "\\ud800"}'),
    ("PATCH", "/v1/incidents/1", "application/json", b"null"),
]


@pytest.mark.parametrize(("method", "path", "ctype", "content"), RAW_BAD_INPUTS)
def test_hostile_bodies_never_500(safe_client, admin, emergency_category, unchanged, method, path, ctype, content):
    safe_client.post("/v1/incidents", headers=admin, json={"title": "x", "category": "emergency", "severity": "minor"})
    with unchanged():
        resp = safe_client.request(method, path, headers=admin | {"Content-Type": ctype}, content=content)
    assert 400 <= resp.status_code < 500, resp.text
    assert_error(resp, resp.status_code)


@pytest.mark.parametrize("path", ["/v1/categories/%00", "/v1/incidents?category=%00", "/v1/incidents?category=a%00b"])
def test_nul_in_path_or_query_is_4xx(safe_client, admin, path):
    resp = safe_client.get(path, headers=admin)
    assert resp.status_code in (404, 422), resp.text
    assert_error(resp, resp.status_code)


def test_first_update_errors_name_the_nested_field(client, admin, emergency_category, unchanged):
    body = {"title": "t", "category": "emergency", "severity": "major"}
    body["update"] = {"body": "x", "kind": "correction", "corrects": 1}
    with unchanged():
        assert_error(client.post("/v1/incidents", headers=admin, json=body), 422, field="update.corrects")


def test_unexpected_errors_answer_the_shape_without_leaking(app, admin):
    from fastapi.testclient import TestClient

    @app.get("/v1/boom-for-test")
    def boom() -> None:
        raise RuntimeError("secret-internal-detail")

    with TestClient(app, raise_server_exceptions=False) as c:
        resp = c.get("/v1/boom-for-test")
    body = assert_error(resp, 500, "internal_error")
    assert "secret-internal-detail" not in resp.text and body["field"] is None


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/v1/incidents/1", "DELETE, GET, PATCH"),
        ("DELETE", "/v1/categories", "GET, POST"),
        ("TRACE", "/v1/routing-map", "GET, PUT"),
        ("PATCH", "/v1/alerts", "POST"),
    ],
)
def test_405_names_every_method_of_the_path(client, admin, method, path, allow):
    """RFC 9110: a 405 carries `Allow` with all the resource's methods (it had none, then only one route's)."""
    resp = client.request(method, path, headers=admin)
    assert_error(resp, 405, "method_not_allowed")
    assert resp.headers["allow"] == allow


def test_openapi_documents_the_one_error_shape(client):
    """Every operation documents its 4xx as `{error, detail, field}` in JSON, HTML routes too (the document
    used to promise FastAPI's own 422 model, which the API never sends)."""
    schema = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in json.dumps(schema)
    assert schema["components"]["schemas"]["ErrorOut"]["required"] == ["error", "detail", "field"]
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            assert operation["responses"]["4XX"]["content"] == error, (method, path)


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/v1/incidents", None, "body"),  # missing
        ("POST", "/v1/incidents", [1], "body"),  # not an object
        ("POST", "/v1/incidents", {"": 1, "title": "t", "category": "emergency", "severity": "minor"}, '""'),
        ("PATCH", "/v1/categories/emergency", {"": "x"}, '""'),
        ("PUT", "/v1/routing-map", {"categories": [], "": 1}, '""'),
    ],
)
def test_every_422_names_a_field(client, admin, emergency_category, unchanged, method, path, body, field):
    """The body as a whole is `body` and an empty key is `""`: both used to be a 422 with `field: null`."""
    with unchanged():
        assert_error(client.request(method, path, headers=admin, json=body), 422, "invalid", field)


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/categories/a%00", "slug"),
        ("/v1/incidents?category=a%00b", "category"),
        ("/v1/subscribers?q=%00", "q"),
        ("/v1/subscribe/confirm?token=a.%00", "token"),
        ("/status/incidents/1?x%00=1", "x"),
    ],
)
def test_nul_in_a_parameter_is_422_naming_it(client, admin, path, field):
    """Refused before any query: on PostgreSQL it used to fail in the database, as a field-less 422."""
    assert_error(client.get(path, headers=admin), 422, "invalid", field)


def test_database_outage_is_a_503_and_the_pool_reconnects(app, client, auth, db_url):
    """A dropped database connection is a retryable 503 (nothing changed), never a 500; after the server
    killed every connection of ours (PostgreSQL restart, failover), the next request simply works."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    @app.get("/_test/db-down")
    def db_down() -> None:
        raise OperationalError("SELECT 1", {}, ConnectionError("server closed the connection unexpectedly"))

    resp = client.get("/_test/db-down")
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "2"
    assert resp.json()["error"] == "database_unavailable"
    headers = auth("read")
    assert client.get("/v1/incidents", headers=headers).status_code == 200
    if db_url.startswith("postgresql"):
        killer = create_engine(db_url, isolation_level="AUTOCOMMIT")
        with killer.connect() as conn:
            killed = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar()
        killer.dispose()
        assert killed >= 1
    assert client.get("/v1/incidents", headers=headers).status_code == 200
