"""Property-based fuzzing of the whole API from its own OpenAPI document (schemathesis).

Every operation gets the schema's examples, schemathesis's coverage cases (boundaries, wrong types,
missing fields, overlong strings, ids past int64, unsupported methods) and a bounded, derandomized
number of generated cases, positive and negative, on each backend. For every response:

- never a 5xx;
- a 4xx is the one JSON error shape `{"error", "detail", "field"}` (or the HTML page an operation
  documents for that status) and the database has the same rows as before the request (no partial write);
- a 422 names the field;
- status code, content type, headers and body conform to the OpenAPI document, and schema-invalid
  input is refused (less pydantic's documented lax coercions, e.g. `0` for a boolean, and form fields,
  which carry only strings).

The database is seeded so ids 1..3 of incidents, updates, subscribers and a broadcast exist, and the
provider webhooks are signed like Twilio and SendGrid would, so generated cases reach the code behind
the 404s and 403s.
"""

from __future__ import annotations

import base64
import itertools
import os
import urllib.parse
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks as st_checks
from sqlalchemy import func, select

TWILIO_TOKEN = "fuzz-twilio-token"
#: Generated cases per operation on top of the examples and coverage cases (the file stays well under 60 s
#: per backend on a 2-core machine). `BROADCASTER_FUZZ_EXAMPLES=500` runs a longer campaign with random
#: seeds instead (a failure prints the `@reproduce_failure` blob).
CAMPAIGN = int(os.environ.get("BROADCASTER_FUZZ_EXAMPLES", "0"))
MAX_EXAMPLES = CAMPAIGN or 10

CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_headers_conformance,
    st_checks.response_schema_conformance,
    st_checks.missing_required_header,
]


@pytest.fixture
def snapshot(db_url: str) -> Iterator[Callable[[], tuple[Any, ...]]]:
    """`snapshot()`: the row count of every table and the newest `updated_at` where there is one, in one
    query on one autocommit connection (no transaction left open between requests)."""
    from broadcaster.db import get_engine
    from broadcaster.models import Base

    columns = []
    for table in Base.metadata.sorted_tables:
        columns.append(select(func.count()).select_from(table).scalar_subquery())
        if "updated_at" in table.c:
            columns.append(select(func.max(table.c.updated_at)).scalar_subquery())
    query = select(*columns)
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        yield lambda: tuple(conn.execute(query).one())


@pytest.fixture
def fuzz_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Callable[[bytes, str], str]:
    """Webhook credentials (so signed receipts reach the database); returns a SendGrid signer."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TWILIO_TOKEN)
    monkeypatch.setenv("SENDGRID_EVENT_PUBLIC_KEY", base64.b64encode(der).decode())
    monkeypatch.setenv("MEMORY_ADAPTER_ENABLED", "true")

    def sign_sendgrid(body: bytes, timestamp: str) -> str:
        return base64.b64encode(key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()

    return sign_sendgrid


@pytest.fixture
def fuzz_client(fuzz_env, app) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def fuzz_admin(fuzz_client) -> dict[str, Any]:
    """Decoy keys first (DELETE /v1/keys/{id} may revoke them), then the admin key the cases use, and a
    little of everything so ids 1..3 exist (through the services, in one transaction: fast)."""
    from broadcaster.db import session_scope
    from broadcaster.delivery.planner import plan_next
    from broadcaster.incidents.schemas import IncidentIn, UpdateIn
    from broadcaster.incidents.service import add_update, create_incident
    from broadcaster.publishing import gate
    from broadcaster.publishing import service as publishing
    from broadcaster.routing.schemas import CategoryIn, RoutingMap
    from broadcaster.routing.service import replace_map
    from broadcaster.security import create_key
    from broadcaster.subscribers.schemas import SubscriberIn
    from broadcaster.subscribers.service import create as create_subscriber

    with session_scope() as session:
        keys = [create_key(session, f"fuzz-{i}", ["read"] if i < 3 else ["admin"])[1] for i in range(4)]
        # incidents use `technical-issue`, the schema's example slug, so example routing maps can replace the rest
        channels = {"major": ["sms", "email", "banner"], "critical": ["sms", "email"]}
        categories = [
            CategoryIn(slug="emergency", name="Emergency"),
            CategoryIn.model_validate({"slug": "technical-issue", "name": "IT", "channels": channels}),
        ]
        replace_map(session, RoutingMap(categories=categories))
        for i in range(3):
            body = {"phone": f"+1555000{i:04d}", "email": f"s{i}@example.org", "categories": ["technical-issue"]}
            create_subscriber(session, SubscriberIn.model_validate(body))
        for severity in ("major", "minor", "critical"):
            data = {"title": "t", "category": "technical-issue", "severity": severity}
            incident = create_incident(session, IncidentIn.model_validate(data), "fuzz")
            update = add_update(session, incident, UpdateIn(body="Mail is down"), "fuzz")
            if severity == "major":  # published (a broadcast); the others stay drafts
                publishing.publish(session, update.id, gate.Authority("fuzz"))
    with session_scope() as session:  # the broadcast's deliveries (no worker sends them)
        plan_next(session)
    headers = {"Authorization": f"Bearer {keys[-1]}"}
    return {"headers": headers, "admin_key_id": len(keys), "decoy_key_id": 1}


def _load_schema() -> Any:
    """The app's own OpenAPI document (building it touches no database)."""
    from broadcaster.app import create_app
    from broadcaster.settings import get_settings

    try:
        return schemathesis.openapi.from_dict(create_app(run_worker=False).openapi())
    finally:
        get_settings.cache_clear()


#: the live progress stream (server-sent events) runs until its broadcast is finished, and the seeded ones
#: never finish here (no worker); tests/delivery/test_live.py covers it through a real server
schema = _load_schema().exclude(path="/v1/broadcasts/{broadcast_id}/events")

#: Values generated cases are pointed at (what `fuzz_admin` seeds), so they get past the 404s.
_IDS = ("incident_id", "update_id", "subscriber_id", "broadcast_id", "corrects")
_SLUGS = ("emergency", "technical-issue")
_CHANNELS = ("memory", "email", "banner", "webhook", "sms")


def _seeded(value: Any, key: str, n: int) -> Any:
    """`value` swapped for seeded data when `key` names a reference and the value has the right type."""
    if key in _IDS and isinstance(value, int) and not isinstance(value, bool):
        return 1 + n % 3
    if key in ("category", "slug") and isinstance(value, str):
        return _SLUGS[n % 2]
    if key == "categories" and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(_SLUGS[: 1 + n % 2])
    if key == "name" and isinstance(value, str):  # channel name in /v1/channels/{name}/check
        return _CHANNELS[n % len(_CHANNELS)]
    if key == "delivery_id" and isinstance(value, str):
        return str(1 + n % 3)
    if key in ("phone", "sms") and isinstance(value, str):
        return f"+1555{n % 10_000_000:07d}"
    return value


def _point_at(data: Any, n: int, keys: tuple[str, ...]) -> Any:
    if isinstance(data, dict):
        return {k: _point_at(_seeded(v, k, n) if k in keys else v, n, keys) for k, v in data.items()}
    if isinstance(data, list):
        return [_point_at(v, n, keys) for v in data]
    return data


@schema.hook
def map_case(context: Any, case: Any) -> Any:
    """Point two thirds of the schema-valid cases at seeded data (deterministically: a CRC of the case)."""
    if case.meta is None or case.meta.generation.mode.is_negative:
        return case
    n = zlib.crc32(repr((case.path_parameters, case.query, case.body)).encode())
    if n % 3 == 0:
        return case
    body_keys = ("incident_id", "corrects", "category", "categories", "phone", "sms", "delivery_id")
    if case.path_parameters:
        path_keys = ("name",) if case.path.startswith("/v1/channels/") else (*_IDS, "slug")
        case.path_parameters = _point_at(case.path_parameters, n, path_keys)
    if case.query:
        case.query = _point_at(case.query, n, ("category", "delivery_id"))
    if isinstance(case.body, dict | list):
        case.body = _point_at(case.body, n, body_keys)
    return case


def _request(case: Any, client: Any, fuzz_admin: dict[str, Any], sign_sendgrid: Callable[[bytes, str], str]) -> Any:
    """Send the case through the test client, encoded the way schemathesis encodes it for `requests`; sign
    webhook bodies the way the providers do (only when the case carries the signature header)."""
    import requests

    if case.path == "/v1/keys/{key_id}" and case.path_parameters.get("key_id") == fuzz_admin["admin_key_id"]:
        case.path_parameters["key_id"] = fuzz_admin["decoy_key_id"]  # keep the key the run uses
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=fuzz_admin["headers"])
    fields = ("method", "url", "headers", "params", "cookies", "data", "json", "files")
    prepared = requests.Request(**{k: kwargs[k] for k in fields if k in kwargs}).prepare()
    body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body or b""
    headers = dict(prepared.headers)
    if headers.get("X-Twilio-Signature") or headers.get("x-twilio-signature"):
        from twilio.request_validator import RequestValidator

        params = dict(urllib.parse.parse_qsl(body.decode("latin-1"), keep_blank_values=True))
        headers = {k: v for k, v in headers.items() if k.lower() != "x-twilio-signature"}
        headers["X-Twilio-Signature"] = RequestValidator(TWILIO_TOKEN).compute_signature(prepared.url, params)
    if any(k.lower() == "x-twilio-email-event-webhook-signature" and v for k, v in headers.items()):
        timestamp = next((v for k, v in headers.items() if k.lower() == "x-twilio-email-event-webhook-timestamp"), "")
        headers = {k: v for k, v in headers.items() if k.lower() != "x-twilio-email-event-webhook-signature"}
        headers["X-Twilio-Email-Event-Webhook-Signature"] = sign_sendgrid(body, timestamp)
    return client.request(prepared.method, prepared.url, headers=headers, content=body)


def _error_shape(case: Any, response: Any) -> None:
    """A 4xx is the one JSON error shape, or an HTML page the operation documents for exactly that status."""
    ctype = response.headers.get("content-type", "")
    if ctype.startswith("text/html"):
        documented = case.operation.definition.raw.get("responses", {}).get(str(response.status_code), {})
        assert "text/html" in documented.get("content", {}), f"undocumented HTML {response.status_code}"
        return
    body = response.json()
    assert isinstance(body, dict) and {"error", "detail", "field"} <= body.keys(), response.text
    assert isinstance(body["error"], str) and isinstance(body["detail"], str) and body["detail"], response.text
    assert body["field"] is None or isinstance(body["field"], str), response.text
    if response.status_code == 422:
        assert body["field"], f"a 422 must name the field: {response.text}"


def _lax_scalar_only(case: Any) -> bool:
    """The case's only invalid parts are scalars in place of other scalars (`0` for a boolean, `0.5` for
    a date-time): pydantic's documented lax mode reads those, so accepting them is not a bug."""
    data = case.meta.phase.data if case.meta is not None else None
    mutations = getattr(data, "mutations", ())
    if mutations:
        return all(m.keywords == ("type",) and m.new_value in _SCALARS for m in mutations)
    if getattr(data, "scenario", None) != "incorrect_type":
        return False
    if data.parameter_location == "body":  # location: /properties/<name>[/items]/properties/<name>/...
        values = [case.body]
        for part, name in itertools.pairwise((data.location or "").split("/")):
            if part == "properties":
                values = [v.get(name) for v in values if isinstance(v, dict)]
            elif part == "items":
                values = [item for v in values if isinstance(v, list) for item in v]
    else:
        values = [(case.get_container(data.parameter_location) or {}).get(data.parameter)]
    return any(isinstance(value, bool | int | float | str) for value in values)


_SCALARS = ("boolean", "integer", "number", "string")
_FORM = "application/x-www-form-urlencoded"  # carries only strings: wrong types cannot be sent


def allows_only_its_methods(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis's `unsupported_method`, except where a templated sibling path takes the request:
    `PATCH /v1/subscribers/import` is `PATCH /v1/subscribers/{subscriber_id}` with a bad id (a 422)."""
    if case.path == "/v1/subscribers/import":
        return None
    return st_checks.unsupported_method(ctx, response, case)


def refuses_bad_input(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis's `negative_data_rejection`, less pydantic's lax scalar coercions."""
    if response.status_code == 413 or (
        response.status_code < 300 and (_lax_scalar_only(case) or case.media_type == _FORM)
    ):
        return None
    return st_checks.negative_data_rejection(ctx, response, case)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=not CAMPAIGN,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case, fuzz_client, fuzz_admin, fuzz_env, snapshot):
    # the database as the previous 4xx left it, or as it is now (a success may have written)
    before = fuzz_admin.pop("snapshot", None) or snapshot()
    response = _request(case, fuzz_client, fuzz_admin, fuzz_env)
    if 400 <= response.status_code < 500:
        _error_shape(case, response)
        fuzz_admin["snapshot"] = snapshot()
        assert fuzz_admin["snapshot"] == before, f"a {response.status_code} answer changed the database"
    case.validate_response(response, checks=[*CHECKS, refuses_bad_input, allows_only_its_methods])
