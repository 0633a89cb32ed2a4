"""The Statuspage-compatible public API (`/api/v2/*.json`) checked field by field against Atlassian Statuspage's
own documentation examples (tests/public/fixtures/statuspage, see its README): the same keys, JSON types, nesting
and enum values, for a page with services in every state, an active incident with updates, a resolved and a
retracted incident, and scheduled, running and completed maintenance. Also: a Statuspage client's reading of it,
public content only, caching, and the old /v1/public paths."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr

FIXTURES = Path(__file__).parent / "fixtures" / "statuspage"

#: endpoint under /api/v2 -> the documentation example of the same endpoint
ENDPOINTS = {
    "summary.json": "summary.json",
    "status.json": "status.json",
    "components.json": "components.json",
    "incidents.json": "incidents.json",
    "incidents/unresolved.json": "incidents-unresolved.json",
    "scheduled-maintenances.json": "scheduled-maintenances.json",
    "scheduled-maintenances/upcoming.json": "scheduled-maintenances-upcoming.json",
    "scheduled-maintenances/active.json": "scheduled-maintenances-active.json",
}

#: the enums as Statuspage documents them (its API page and the statuspage.io client's enums)
INDICATORS = {"none", "minor", "major", "critical"}
COMPONENT_STATUSES = {"operational", "degraded_performance", "partial_outage", "major_outage", "under_maintenance"}
INCIDENT_STATUSES = {"investigating", "identified", "monitoring", "resolved", "postmortem"}
MAINTENANCE_STATUSES = {"scheduled", "in_progress", "verifying", "completed"}
IMPACTS = {"none", "minor", "major", "critical"}


def _example(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / name).read_text()))


# --- the documented shapes -------------------------------------------------------------------------------------


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _documented_shapes() -> dict[str, dict[str, set[str]]]:
    """{object kind: {key: allowed JSON types}} from every documentation example, plus the live-only fields.

    A key the examples only show as null (`description`, `monitoring_at`, `group_id`, `start_date`) is a string
    when set; every nullable field of these objects is."""
    shapes: dict[str, dict[str, set[str]]] = {}

    def note(kind: str, obj: dict[str, Any]) -> None:
        shape = shapes.setdefault(kind, {})
        for key, value in obj.items():
            shape.setdefault(key, set()).add(_kind_of(value))
        if kind in ("incident", "scheduled_maintenance"):
            for update in obj["incident_updates"]:
                note("incident_update", update)

    for name in ENDPOINTS.values():
        doc = _example(name)
        note("page", doc["page"])
        if "status" in doc:
            note("status", doc["status"])
        for c in doc.get("components", []):
            note("component", c)
        for i in doc.get("incidents", []):
            note("incident", i)
        for m in doc.get("scheduled_maintenances", []):
            note("scheduled_maintenance", m)
    for shape in shapes.values():
        for types in shape.values():
            if "null" in types:
                types.add("string")
    live = json.loads((FIXTURES / "live-fields.json").read_text())
    for kind, fields in live.items():
        for key, types in fields.items():
            shapes.setdefault(kind, {})[key] = set(types)
    return shapes


SHAPES = _documented_shapes()


def _timestamp(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, f"{value!r} has no UTC offset"
    return parsed


def check_object(kind: str, obj: Any, where: str) -> None:
    """Assert `obj` has exactly the keys of `kind`, each of an allowed type, nested objects checked likewise."""
    assert isinstance(obj, dict), f"{where}: not an object"
    shape = dict(SHAPES[kind])
    if kind == "component" and obj.get("group") is True:
        shape |= SHAPES["group_component"]
    assert set(obj) == set(shape), (
        f"{where}: keys differ: extra {set(obj) - set(shape)}, missing {set(shape) - set(obj)}"
    )
    for key, allowed in shape.items():
        value, at = obj[key], f"{where}.{key}"
        if value is None:
            assert "null" in allowed, f"{at}: null not allowed"
            continue
        if "timestamp" in allowed or (
            isinstance(value, str) and (key.endswith("_at") or key in ("scheduled_for", "scheduled_until"))
        ):
            assert isinstance(value, str), f"{at}: not a string"
            _timestamp(value)
            continue
        if key == "start_date":
            date.fromisoformat(value)
            continue
        array_of = next((a[:-2] for a in allowed if a.endswith("[]")), None)
        if array_of is not None:
            assert isinstance(value, list), f"{at}: not an array"
            for n, item in enumerate(value):
                if array_of == "string":
                    assert isinstance(item, str), f"{at}[{n}]: not a string"
                else:
                    check_object(array_of, item, f"{at}[{n}]")
            continue
        assert _kind_of(value) in allowed, f"{at}: {_kind_of(value)} where Statuspage has {allowed}"
        if key == "incident_updates":
            child = "incident_update"
            for n, item in enumerate(value):
                check_object(child, item, f"{at}[{n}]")
                assert item["incident_id"] == obj["id"], f"{at}[{n}].incident_id"
                statuses = MAINTENANCE_STATUSES if kind == "scheduled_maintenance" else INCIDENT_STATUSES
                assert item["status"] in statuses, f"{at}[{n}].status {item['status']!r}"
    # enums
    if kind == "status":
        assert obj["indicator"] in INDICATORS, where
    if kind == "component":
        assert obj["status"] in COMPONENT_STATUSES, where
    if kind == "affected_component":
        assert {obj["old_status"], obj["new_status"]} <= COMPONENT_STATUSES, where
    if kind == "incident":
        assert obj["status"] in INCIDENT_STATUSES and obj["impact"] in IMPACTS, where
    if kind == "scheduled_maintenance":
        assert obj["status"] in MAINTENANCE_STATUSES and obj["impact"] in IMPACTS, where


def check_document(endpoint: str, doc: Any) -> None:
    """Same top-level keys as the documentation example of `endpoint`, every object checked."""
    example = _example(ENDPOINTS[endpoint])
    assert isinstance(doc, dict) and set(doc) == set(example), (endpoint, set(doc) ^ set(example))
    check_object("page", doc["page"], f"{endpoint}:page")
    if "status" in doc:
        check_object("status", doc["status"], f"{endpoint}:status")
    for key, kind in (("components", "component"), ("incidents", "incident")):
        for n, item in enumerate(doc.get(key, [])):
            check_object(kind, item, f"{endpoint}:{key}[{n}]")
    for n, item in enumerate(doc.get("scheduled_maintenances", [])):
        check_object("scheduled_maintenance", item, f"{endpoint}:scheduled_maintenances[{n}]")


def test_the_checker_accepts_statuspages_examples_and_rejects_drift() -> None:
    """The checker itself: every documentation example passes once the live-only fields are added, and a
    missing key, an extra key, a wrong type, an id list instead of component objects or an unknown enum fail."""
    component = _example("components.json")["components"][0]
    update = {
        **_example("incidents.json")["incidents"][0]["incident_updates"][0],
        "affected_components": [
            {"code": "b13yz5g2cw10", "name": "API", "old_status": "operational", "new_status": "partial_outage"}
        ],
        "deliver_notifications": True,
        "custom_tweet": None,
        "tweet_id": None,
    }
    incident = {
        **_example("incidents.json")["incidents"][0],
        "started_at": "2014-05-14T14:22:39.441-06:00",
        "components": [component],
        "incident_updates": [update],
    }
    page = {**_example("status.json")["page"], "time_zone": "Etc/UTC"}
    good = {"page": page, "incidents": [incident]}
    check_document("incidents.json", good)
    for broken in (
        {**incident, "impact": "maintenance"},
        {**incident, "components": ["b13yz5g2cw10"]},
        {k: v for k, v in incident.items() if k != "monitoring_at"},
        {**incident, "group_name": "x"},
        {**incident, "incident_updates": [{**update, "display_at": 5}]},
        {**incident, "incident_updates": [{**update, "incident_id": "other"}]},
        {**incident, "created_at": "yesterday"},
    ):
        with pytest.raises((AssertionError, ValueError)):
            check_document("incidents.json", {"page": page, "incidents": [broken]})
    with pytest.raises(AssertionError):
        check_document("status.json", {"page": page, "status": {"indicator": "maintenance", "description": "x"}})


# --- a small Statuspage client ---------------------------------------------------------------------------------
# Typed like the `statuspage.io` npm client's Result.d.ts (strict types, its enums), and the colours Statuspage's
# API page gives: impact None (black), Minor (yellow), Major (orange), Critical (red).


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class Page(_Strict):
    id: StrictStr
    name: StrictStr
    url: StrictStr
    time_zone: StrictStr
    updated_at: StrictStr


class Impact(StrEnum):
    none = "none"
    minor = "minor"
    major = "major"
    critical = "critical"


class MaintenanceStatus(StrEnum):
    scheduled = "scheduled"
    in_progress = "in_progress"
    verifying = "verifying"
    completed = "completed"


class Component(_Strict):
    created_at: StrictStr
    description: StrictStr | None
    group: StrictBool
    group_id: StrictStr | None
    id: StrictStr
    name: StrictStr
    only_show_if_degraded: StrictBool
    page_id: StrictStr
    position: StrictInt
    showcase: StrictBool
    start_date: StrictStr | None
    status: StrictStr
    updated_at: StrictStr


class IncidentUpdate(_Strict):
    body: StrictStr
    created_at: StrictStr
    display_at: StrictStr
    id: StrictStr
    incident_id: StrictStr
    status: StrictStr
    updated_at: StrictStr


class Incident(_Strict):
    created_at: StrictStr
    id: StrictStr
    impact: Impact
    incident_updates: list[IncidentUpdate]
    monitoring_at: StrictStr | None
    name: StrictStr
    page_id: StrictStr
    resolved_at: StrictStr | None
    shortlink: StrictStr
    status: StrictStr
    updated_at: StrictStr
    components: list[Component]


class ScheduledMaintenance(Incident):
    scheduled_for: StrictStr
    scheduled_until: StrictStr
    status: MaintenanceStatus  # type: ignore[assignment]


class Status(_Strict):
    indicator: Impact
    description: StrictStr


class Summary(_Strict):
    page: Page
    status: Status
    components: list[Component]
    incidents: list[Incident]
    scheduled_maintenances: list[ScheduledMaintenance]


COLOUR = {Impact.none: "green", Impact.minor: "yellow", Impact.major: "orange", Impact.critical: "red"}
IMPACT_COLOUR = {Impact.none: "black", Impact.minor: "yellow", Impact.major: "orange", Impact.critical: "red"}


def client_reads(summary: dict[str, Any]) -> dict[str, Any]:
    """What a status widget shows from summary.json: the banner colour, each component, each open incident."""
    s = Summary.model_validate_json(json.dumps(summary))  # as a client parses the body
    return {
        "colour": COLOUR[s.status.indicator],
        "text": s.status.description,
        "components": {c.name: c.status for c in s.components if not c.group},
        "incidents": [(i.name, IMPACT_COLOUR[i.impact], [c.name for c in i.components]) for i in s.incidents],
        "maintenance": [(m.name, m.status.value) for m in s.scheduled_maintenances],
    }


# --- the page under test ---------------------------------------------------------------------------------------

T0 = datetime(2026, 12, 10, 8, 0, tzinfo=UTC)
SERVICES = [  # slug, name, group, position, state, public
    ("water", "Water supply", "Utilities", 1, "operational", True),  # major_outage through the incident
    ("power", "Electricity", "Utilities", 2, "degraded", True),
    ("portal", "Customer portal", "", 0, "operational", True),
    ("phones", "Phone lines", "", 1, "partial_outage", True),
    ("roads", "Road works", "Transport", 0, "operational", True),  # under maintenance while its window runs
    ("internal", "Internal billing", "", 5, "major_outage", False),
]
SECRETS = ("Draft nobody approved", "Awaiting a second person", "Test send to the test group", "Internal only")


def _window(title: str, start: timedelta, end: timedelta, services: list[str]) -> dict[str, Any]:
    return {
        "title": title,
        "message": f"{title}: expect short interruptions.",
        "services": services,
        "category": "works",
        "starts_at": (T0 + start).isoformat(),
        "ends_at": (T0 + end).isoformat(),
        "notify": {"at_creation": True, "hours_before": [], "at_start": True, "at_end": True},
    }


@pytest.fixture
def page(client, admin, auth, publish, db_url) -> dict[str, Any]:
    """Services in every state, an active critical incident (three published updates, plus a draft, one pending
    approval and a test send), a resolved and a retracted incident, a non-public one, and three maintenance
    windows: one planned, one running, one completed."""
    from broadcaster import clock
    from broadcaster.db import make_engine
    from broadcaster.maintenance.runner import MaintenanceRunner

    clock.set_now(T0)
    try:
        resp = client.post("/v1/categories", headers=admin, json={"slug": "works", "name": "Planned works"})
        assert resp.status_code == 201, resp.text
        for slug, name, group, position, state, public in SERVICES:
            body = {"slug": slug, "name": name, "group": group, "position": position, "public": public}
            resp = client.post("/v1/services", headers=admin, json=body | {"description": f"About {name}"})
            assert resp.status_code == 201, resp.text
            if state != "operational":
                resp = client.post(f"/v1/services/{slug}/state", headers=admin, json={"state": state, "reason": "t"})
                assert resp.status_code == 200, resp.text

        # the active incident
        incident = {
            "title": "Mains burst",
            "category": "emergency",
            "severity": "critical",
            "affected_services": ["water", "internal"],
        }
        resp = client.post("/v1/incidents", headers=admin, json=incident)
        assert resp.status_code == 201, resp.text
        iid = resp.json()["id"]
        first = publish(
            body="A mains pipe burst; we are investigating.", incident_id=iid, service_states={"water": "major_outage"}
        )
        second = publish(body="Crews found the break.", incident_id=iid, status="identified")
        third = publish(body="Repaired; watching the pressure.", incident_id=iid, status="monitoring")
        writer = auth("write", "publish")
        draft = client.post(f"/v1/incidents/{iid}/updates", headers=writer, json={"body": SECRETS[0]})
        assert draft.status_code == 201, draft.text
        pending = client.post(f"/v1/incidents/{iid}/updates", headers=writer, json={"body": SECRETS[1]}).json()
        assert client.post(f"/v1/updates/{pending['id']}/publish", headers=writer).status_code == 202
        publish(body=SECRETS[2], incident_id=iid, test=True)

        # resolved, retracted, not public
        resolved = publish("Phone lines down", "Calls fail.", severity="minor")
        publish(body="Calls work again.", incident_id=resolved["incident_id"], status="resolved")
        mistaken = publish("False alarm", "A fire at the depot.", severity="major")
        publish(body="Sent by mistake.", incident_id=mistaken["incident_id"], kind="cancel", corrects=mistaken["id"])
        publish("Billing hiccup", SECRETS[3], severity="minor", public=False)

        # maintenance: completed (1-2 h), running (from 1.5 h), planned (tomorrow)
        windows = {}
        for title, start, end, services in (
            ("Pipe flushing", timedelta(hours=1), timedelta(hours=2), ["portal"]),
            ("Resurfacing", timedelta(hours=1, minutes=30), timedelta(hours=6), ["roads"]),
            ("Server move", timedelta(days=1), timedelta(days=1, hours=1), ["portal", "internal"]),
        ):
            resp = client.post("/v1/maintenance", headers=admin, json=_window(title, start, end, services))
            assert resp.status_code == 201, resp.text
            windows[title] = resp.json()
        runner = MaintenanceRunner(engine=make_engine(db_url), poll=0.05)
        runner.run_once()
        for at in (timedelta(hours=1, minutes=5), timedelta(hours=2, minutes=10)):
            clock.set_now(T0 + at)
            while sum(runner.run_once().values()):
                pass
        states = {w["title"]: client.get(f"/v1/maintenance/{w['id']}", headers=admin).json() for w in windows.values()}
        assert {t: w["state"] for t, w in states.items()} == {
            "Pipe flushing": "completed",
            "Resurfacing": "in_progress",
            "Server move": "scheduled",
        }
        return {
            "iid": iid,
            "updates": [first, second, third],
            "resolved": resolved["incident_id"],
            "retracted": mistaken["incident_id"],
            "windows": states,
        }
    finally:
        clock.set_now(None)


def _get(client, endpoint: str) -> Any:
    resp = client.get("/api/v2/" + endpoint)
    assert resp.status_code == 200, (endpoint, resp.text)
    assert resp.headers["content-type"].startswith("application/json")
    return resp.json()


def test_every_endpoint_has_statuspages_shape(client, page) -> None:
    for endpoint in ENDPOINTS:
        check_document(endpoint, _get(client, endpoint))


def test_every_endpoint_has_statuspages_shape_when_empty(client) -> None:
    for endpoint in ENDPOINTS:
        doc = _get(client, endpoint)
        check_document(endpoint, doc)
    assert _get(client, "status.json")["status"] == {"indicator": "none", "description": "All Systems Operational"}


def test_page_components_and_status(client, page) -> None:
    summary = _get(client, "summary.json")
    pages = {json.dumps(_get(client, e)["page"], sort_keys=True) for e in ENDPOINTS}
    assert len(pages) == 1  # one page object everywhere
    assert summary["page"]["id"] == "broadcaster" and summary["page"]["url"] == "http://testserver/status"
    assert summary["page"]["time_zone"] == "UTC"
    by_id = {c["id"]: c for c in summary["components"]}
    assert {k: c["status"] for k, c in by_id.items()} == {
        "water": "major_outage",
        "power": "degraded_performance",
        "portal": "operational",
        "phones": "partial_outage",
        "roads": "under_maintenance",
        "group:Utilities": "major_outage",
        "group:Transport": "under_maintenance",
    }
    assert by_id["group:Utilities"]["components"] == ["water", "power"]
    assert by_id["water"]["group_id"] == "group:Utilities" and by_id["portal"]["group_id"] is None
    assert summary["components"] == _get(client, "components.json")["components"]
    # a major outage and a critical incident: critical
    assert summary["status"] == {"indicator": "critical", "description": "Major Service Outage"}
    assert _get(client, "status.json")["status"] == summary["status"]


def test_incidents(client, page) -> None:
    unresolved = _get(client, "incidents/unresolved.json")["incidents"]
    assert [i["id"] for i in unresolved] == [str(page["iid"])]
    assert _get(client, "summary.json")["incidents"] == unresolved
    [active] = unresolved
    first, second, third = page["updates"]
    assert {k: active[k] for k in ("name", "status", "impact", "resolved_at", "page_id")} == {
        "name": "Mains burst",
        "status": "monitoring",
        "impact": "critical",
        "resolved_at": None,
        "page_id": "broadcaster",
    }
    assert active["shortlink"] == f"http://testserver/status/incidents/{page['iid']}"
    # the hidden service is left out of the incident's components; the public one is a full component object
    assert [(c["id"], c["name"], c["status"]) for c in active["components"]] == [
        ("water", "Water supply", "major_outage")
    ]
    updates = active["incident_updates"]  # newest first, each with the status it set
    assert [(u["id"], u["status"], u["body"]) for u in updates] == [
        (str(third["id"]), "monitoring", "Repaired; watching the pressure."),
        (str(second["id"]), "identified", "Crews found the break."),
        (str(first["id"]), "investigating", "A mains pipe burst; we are investigating."),
    ]
    assert active["monitoring_at"] == updates[0]["display_at"]
    assert active["updated_at"] == updates[0]["display_at"]
    assert updates[2]["affected_components"] == [
        {"code": "water", "name": "Water supply", "old_status": "operational", "new_status": "major_outage"}
    ]
    assert updates[0]["affected_components"] is None and updates[0]["deliver_notifications"] is True

    everything = {i["id"]: i for i in _get(client, "incidents.json")["incidents"]}
    assert set(everything) == {str(page["iid"]), str(page["resolved"]), str(page["retracted"])}
    resolved = everything[str(page["resolved"])]
    assert resolved["status"] == "resolved" and resolved["resolved_at"] is not None
    assert [u["status"] for u in resolved["incident_updates"]] == ["resolved", "investigating"]
    retracted = everything[str(page["retracted"])]  # a retraction reads as resolved, when it was retracted
    assert retracted["status"] == "resolved"
    assert retracted["resolved_at"] == retracted["incident_updates"][0]["display_at"]
    assert [u["status"] for u in retracted["incident_updates"]] == ["resolved", "investigating"]


def test_scheduled_maintenances(client, page) -> None:
    windows = page["windows"]
    incident_of = {t: str(w["incident_id"]) for t, w in windows.items()}
    every = _get(client, "scheduled-maintenances.json")["scheduled_maintenances"]
    assert [(m["name"], m["status"]) for m in every] == [
        ("Server move", "scheduled"),
        ("Resurfacing", "in_progress"),
        ("Pipe flushing", "completed"),
    ]
    assert [m["id"] for m in every] == [incident_of[m["name"]] for m in every]
    upcoming = _get(client, "scheduled-maintenances/upcoming.json")["scheduled_maintenances"]
    active = _get(client, "scheduled-maintenances/active.json")["scheduled_maintenances"]
    assert [m["name"] for m in upcoming] == ["Server move"]
    assert [m["name"] for m in active] == ["Resurfacing"]
    summary = _get(client, "summary.json")["scheduled_maintenances"]
    assert [m["name"] for m in summary] == ["Resurfacing", "Server move"]  # soonest first
    by_name = {m["name"]: m for m in every}
    assert by_name["Server move"]["scheduled_for"] == "2026-12-11T08:00:00Z"
    assert by_name["Server move"]["scheduled_until"] == "2026-12-11T09:00:00Z"
    assert [c["id"] for c in by_name["Server move"]["components"]] == ["portal"]  # hidden service left out
    assert [u["status"] for u in by_name["Pipe flushing"]["incident_updates"]] == [
        "completed",
        "in_progress",
        "scheduled",
    ]
    assert by_name["Pipe flushing"]["resolved_at"] is not None and by_name["Resurfacing"]["resolved_at"] is None
    assert [u["status"] for u in by_name["Resurfacing"]["incident_updates"]] == ["in_progress", "scheduled"]
    assert by_name["Resurfacing"]["incident_updates"][0]["affected_components"] == [
        {"code": "roads", "name": "Road works", "old_status": "operational", "new_status": "under_maintenance"}
    ]
    # maintenance incidents are not incidents
    names = {i["name"] for i in _get(client, "incidents.json")["incidents"]}
    assert not any(n.startswith("Maintenance:") for n in names)


def test_a_statuspage_client_reads_it(client, page) -> None:
    seen = client_reads(_get(client, "summary.json"))
    assert seen["colour"] == "red" and seen["text"] == "Major Service Outage"
    assert seen["components"]["Road works"] == "under_maintenance"
    assert seen["incidents"] == [("Mains burst", "red", ["Water supply"])]
    assert seen["maintenance"] == [("Resurfacing", "in_progress"), ("Server move", "scheduled")]
    # and reads Statuspage's own example the same way (the client is not tailored to Broadcaster)
    example = _example("summary.json")
    example["page"]["time_zone"] = "Etc/UTC"
    for key in ("incidents", "scheduled_maintenances"):
        for item in example[key]:
            item["components"] = []
    example["components"] = _example("components.json")["components"]
    assert client_reads(example)["colour"] == "orange"


def test_only_public_content(client, page) -> None:
    for endpoint in ENDPOINTS:
        raw = client.get("/api/v2/" + endpoint).text
        # the hidden service (a maintenance notice's own text may name it: that text is public everywhere)
        for secret in (*SECRETS, "Billing hiccup", '"name":"Internal billing"', '"internal"'):
            assert secret not in raw, (endpoint, secret)


def test_cached_with_etag_cors_and_refreshed_on_change(client, admin, page, publish) -> None:
    etags = {}
    for endpoint in ENDPOINTS:
        resp = client.get("/api/v2/" + endpoint)
        etags[endpoint] = resp.headers["etag"]
        assert "public" in resp.headers["cache-control"] and resp.headers["access-control-allow-origin"] == "*"
        again = client.get("/api/v2/" + endpoint, headers={"If-None-Match": etags[endpoint]})
        assert again.status_code == 304 and again.content == b""
    publish(body="Water is back.", incident_id=page["iid"], status="resolved", service_states={"water": "operational"})
    for endpoint in ("summary.json", "status.json", "components.json", "incidents.json", "incidents/unresolved.json"):
        resp = client.get("/api/v2/" + endpoint, headers={"If-None-Match": etags[endpoint]})
        assert resp.status_code == 200, endpoint
    assert _get(client, "incidents/unresolved.json")["incidents"] == []
    assert _get(client, "status.json")["status"] == {"indicator": "major", "description": "Partial System Outage"}


def test_old_paths_serve_the_same_documents(client, page) -> None:
    pairs = [("/v1/public/summary.json", "summary.json"), ("/v1/public/components.json", "components.json")]
    pairs += [("/status/api/v2/" + e, e) for e in ENDPOINTS]  # under the page URL too (`page.url` + /api/v2)
    for old, new in pairs:
        a, b = client.get(old), client.get("/api/v2/" + new)
        assert a.status_code == 200 and a.content == b.content and a.headers["etag"] == b.headers["etag"]
    schema = client.get("/openapi.json").json()["paths"]
    assert {"/api/v2/" + e for e in ENDPOINTS} <= set(schema)
    assert schema["/v1/public/summary.json"]["get"]["deprecated"] is True


def test_internal_changes_leave_the_documents_alone(client, admin, auth, page) -> None:
    """A draft, an update waiting for approval and a hidden service's state change are not public: the
    documents keep their bytes (and ETags), `page.updated_at` included."""
    from broadcaster.public.cache import get_cache

    before = {e: client.get("/api/v2/" + e).content for e in ENDPOINTS}
    writer = auth("write", "publish")
    iid = page["iid"]
    assert (
        client.post(f"/v1/incidents/{iid}/updates", headers=writer, json={"body": "Another draft"}).status_code == 201
    )
    pending = client.post(f"/v1/incidents/{iid}/updates", headers=writer, json={"body": "Wait for me"}).json()
    assert client.post(f"/v1/updates/{pending['id']}/publish", headers=writer).status_code == 202
    resp = client.post("/v1/services/internal/state", headers=admin, json={"state": "operational", "reason": "t"})
    assert resp.status_code == 200, resp.text
    get_cache().invalidate()  # rebuilt from the database, not served from memory
    assert {e: client.get("/api/v2/" + e).content for e in ENDPOINTS} == before
