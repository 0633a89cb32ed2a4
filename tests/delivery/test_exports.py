"""The delivery log (JSON and CSV) as a read key sees it: webhook URLs masked, spreadsheet formulas neutralised."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select, update

SLACK = "https://hooks.slack.com/services/T000/B000/XXXXSECRETTOKEN9876"
CUSTOM = "https://ops:hunter2@hooks.example.org/in/abcdefsecret1234?token=querysecret"
FORMULA = "=1+cmd|' /C calc'!A0@example.com"


@pytest.fixture
def webhook_broadcast(monkeypatch, client, admin, emergency_category) -> int:
    """A broadcast planned to two secret webhook URLs (no worker: the rows stay pending)."""
    from broadcaster.db import session_scope
    from broadcaster.delivery.planner import plan_next
    from broadcaster.models.delivery import Delivery
    from broadcaster.settings import get_settings

    monkeypatch.setenv("WEBHOOK_URLS", f"{SLACK},{CUSTOM}")
    get_settings.cache_clear()
    inc = client.post(
        "/v1/incidents", headers=admin, json={"title": "Water outage", "category": "emergency", "severity": "major"}
    ).json()
    upd = client.post(
        f"/v1/incidents/{inc['id']}/updates", headers=admin, json={"body": "Water is off.", "channels": ["webhook"]}
    ).json()
    pub = client.post(f"/v1/updates/{upd['id']}/publish", headers=admin)
    assert pub.status_code == 200, pub.text
    bid = pub.json()["broadcast_id"]
    with session_scope() as session:
        plan_next(session)
    with session_scope() as session:  # a connection error that quotes the URL it failed on
        session.execute(
            update(Delivery)
            .where(Delivery.broadcast_id == bid, Delivery.address == CUSTOM)
            .values(status="failed", error_code="network", error_reason=f"InvalidURL: {CUSTOM}")
        )
        assert sorted(session.scalars(select(Delivery.address).where(Delivery.broadcast_id == bid))) == sorted(
            [SLACK, CUSTOM]
        )
    return bid


SECRETS = ("XXXXSECRETTOKEN", "hunter2", "abcdefsecret", "querysecret", "/T000/B000/")


def test_delivery_log_masks_webhook_urls_for_a_read_key(client, auth, webhook_broadcast):
    reader = auth("read")
    log = client.get(f"/v1/broadcasts/{webhook_broadcast}/deliveries", headers=reader)
    assert log.status_code == 200
    for secret in SECRETS:
        assert secret not in log.text, secret
    shown = sorted(d["address"] for d in log.json()["items"])
    assert shown == ["https://hooks.example.org/in/****1234", "https://hooks.slack.com/ser****9876"]
    failed = next(d for d in log.json()["items"] if d["status"] == "failed")
    assert failed["error_reason"] == "InvalidURL: https://hooks.example.org/in/****1234"
    exported = client.get(f"/v1/broadcasts/{webhook_broadcast}/deliveries.csv", headers=reader)
    assert exported.status_code == 200
    for secret in SECRETS:
        assert secret not in exported.text, secret
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert sorted(r["address"] for r in rows) == shown
    # /v1/channels shows the same masks
    channels = client.get("/v1/channels", headers=auth("admin")).json()
    webhook = next(c for c in channels if c["name"] == "webhook")
    assert sorted(webhook["config"]["urls"]) == shown


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        (FORMULA, "'" + FORMULA),
        ("=HYPERLINK(bad)", "'=HYPERLINK(bad)"),
        ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("+15550000001", "+15550000001"),  # a plain E.164 number stays copyable
        ("+", "'+"),
        ("+1 555", "'+1 555"),
        ("+١٢٣", "'+١٢٣"),  # non-ASCII digits are not a phone number
        ("a@example.org", "a@example.org"),
        ("", ""),
        (None, ""),
        (3, 3),
    ],
)
def test_csv_cells_never_start_a_formula(cell, expected):
    from broadcaster.csvsafe import safe_cell

    assert safe_cell(cell) == expected


def test_delivery_csv_export_neutralises_formulas(client, auth, webhook_broadcast):
    from broadcaster.db import session_scope
    from broadcaster.models.delivery import Delivery

    with session_scope() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.broadcast_id == webhook_broadcast, Delivery.address == SLACK)
            .values(error_code="-1+2", error_reason=FORMULA, provider_message_id="@id")
        )
    exported = client.get(f"/v1/broadcasts/{webhook_broadcast}/deliveries.csv", headers=auth("read"))
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    row = next(r for r in rows if "slack" in r["address"])
    assert (row["error_code"], row["error_reason"], row["provider_message_id"]) == ("'-1+2", "'" + FORMULA, "'@id")
