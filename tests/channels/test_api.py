"""Preview and channel endpoints (both database backends)."""

from __future__ import annotations

import shutil

import pytest

from broadcaster.fakes.testing import running_fake
from broadcaster.settings import PROJECT_ROOT, get_settings


@pytest.fixture
def incident(client, auth, emergency_category) -> dict:
    resp = client.post(
        "/v1/incidents",
        headers=auth("write"),
        json={
            "title": "Water outage",
            "category": "emergency",
            "severity": "critical",
            "update": {
                "body": "Water is off in the north district until 18:00.",
                "summary": "Water off north until 18:00",
                "translations": {"fr": {"body": "L'eau est coupée au nord jusqu'à 18h.", "summary": ""}},
            },
        },
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


def _counts(update_id: int) -> dict[str, int]:
    from broadcaster.db import session_scope
    from broadcaster.delivery.audience import audience_counts
    from broadcaster.models import Update

    with session_scope() as session:
        return audience_counts(session, session.get(Update, update_id))


def test_preview_without_providers(client, auth, incident):
    update_id = incident["updates"][0]["id"]
    # missing translations are warned about for the languages the audience reads (fr is translated)
    for i, locale in enumerate(("en", "de", "es", "fr")):
        body = {"phone": f"+1555010000{i}", "categories": ["emergency"], "locale": locale}
        assert client.post("/v1/subscribers", headers=auth("admin"), json=body).status_code == 201
    resp = client.post(f"/v1/updates/{update_id}/preview", headers=auth("read"))
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert (data["update_id"], data["category"], data["severity"], data["test"]) == (
        update_id,
        "emergency",
        "critical",
        False,
    )
    assert [c["channel"] for c in data["channels"]] == ["sms", "voice", "email", "social", "banner"]
    by = {c["channel"]: c for c in data["channels"]}
    for name in ("sms", "voice", "email", "social"):
        assert by[name]["configured"] is False
        assert by[name]["warnings"][0] == f"channel not configured: no {by[name]['kind']} adapter has credentials"
    assert by["banner"]["configured"] is True and by["banner"]["adapter"] == "banner"
    sms = by["sms"]
    assert sms["text"] == "Example Org: Water is off in the north district until 18:00. Help: Call +15551234567"
    assert (sms["encoding"], sms["segments"], sms["max_length"]) == ("GSM-7", 1, 459)
    assert sms["length"] == len(sms["text"])
    assert sms["translations"]["fr"]["text"].startswith("Example Org: L'eau est coupée")
    assert by["email"]["subject"] == "[Critical] Water outage" and "<html" in by["email"]["html"]
    assert by["banner"]["text"] == "Water is off in the north district until 18:00."
    assert sorted(w for w in data["warnings"] if "missing translation" in w) == [
        "missing translation for de: subscribers in de get the en text",
        "missing translation for es: subscribers in es get the en text",
    ]
    counts = _counts(update_id)
    assert {c["channel"]: c["recipients"] for c in data["channels"]} == {n: counts.get(n, 0) for n in by}


def test_preview_with_providers_configured(client, auth, incident, monkeypatch):
    with running_fake() as fake:
        for key, value in fake.env().items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        update_id = incident["updates"][0]["id"]
        data = client.post(f"/v1/updates/{update_id}/preview", headers=auth("read")).json()
        assert fake.requests() == []  # a preview never calls a provider
    by = {c["channel"]: c for c in data["channels"]}
    assert {n: (c["adapter"], c["configured"], c["failover"]) for n, c in by.items()} == {
        "sms": ("twilio-sms", True, []),
        "voice": ("twilio-voice", True, []),
        "email": ("sendgrid", True, []),
        "social": ("x", True, ["mastodon", "bluesky"]),
        "banner": ("banner", True, []),
    }
    assert by["social"]["text"].endswith("http://testserver/status")
    assert not any("not configured" in w for c in data["channels"] for w in c["warnings"])


def test_preview_test_update_is_marked(client, auth, incident):
    resp = client.post(
        f"/v1/incidents/{incident['id']}/updates",
        headers=auth("write"),
        json={"body": "Drill: sirens at noon.", "test": True, "channels": ["sms", "email", "webhook"]},
    )
    assert resp.status_code == 201, resp.text
    data = client.post(f"/v1/updates/{resp.json()['id']}/preview", headers=auth("read")).json()
    assert data["test"] is True
    by = {c["channel"]: c for c in data["channels"]}
    assert list(by) == ["sms", "email", "webhook"]
    assert by["sms"]["text"].startswith("[TEST] ")
    assert by["email"]["subject"].startswith("[TEST] ")
    assert by["webhook"]["text"].startswith("[TEST] ")


def test_preview_over_limit_warning(client, auth, incident, monkeypatch):
    monkeypatch.setenv("SMS_MAX_SEGMENTS", "1")
    get_settings.cache_clear()
    resp = client.post(
        f"/v1/incidents/{incident['id']}/updates",
        headers=auth("write"),
        json={"body": "x" * 400, "channels": ["sms"]},
    )
    [sms] = client.post(f"/v1/updates/{resp.json()['id']}/preview", headers=auth("read")).json()["channels"]
    assert sms["segments"] == 3 and sms["max_length"] == 160
    assert any(w.startswith("over limit") for w in sms["warnings"])


def test_draft_preview_stores_nothing(client, auth, emergency_category):
    body = {
        "category": "emergency",
        "severity": "major",
        "title": "Gas leak",
        "update": {"body": "Avoid Main Street.", "locale": "en"},
    }
    resp = client.post("/v1/preview", headers=auth("read"), json=body)
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["update_id"] is None and data["incident_id"] is None and data["severity"] == "major"
    assert [c["channel"] for c in data["channels"]] == ["sms", "email", "banner"]
    email = next(c for c in data["channels"] if c["channel"] == "email")
    assert email["subject"] == "[Major] Gas leak"
    listed = client.get("/v1/incidents", headers=auth("read")).json()
    assert listed["items"] == []


def test_draft_preview_for_an_existing_incident(client, auth, incident):
    body = {"incident_id": incident["id"], "update": {"body": "Repairs done.", "channels": ["banner"]}}
    data = client.post("/v1/preview", headers=auth("read"), json=body).json()
    assert data["incident_id"] == incident["id"]
    assert [c["text"] for c in data["channels"]] == ["Repairs done."]
    updates = client.get(f"/v1/incidents/{incident['id']}/updates", headers=auth("read")).json()
    assert len(updates) == 1


def test_draft_preview_validation(client, auth, emergency_category):
    resp = client.post("/v1/preview", headers=auth("read"), json={"update": {"body": "x"}})
    assert resp.status_code == 422 and "incident_id" in resp.json()["detail"]
    resp = client.post(
        "/v1/preview", headers=auth("read"), json={"category": "nope", "severity": "major", "update": {"body": "x"}}
    )
    assert resp.status_code == 422 and resp.json()["field"] == "category"
    resp = client.post("/v1/preview", headers=auth("read"), json={"incident_id": 999, "update": {"body": "x"}})
    assert resp.status_code == 422 and resp.json()["field"] == "incident_id"


def test_preview_template_error_is_a_422(client, auth, incident, monkeypatch, tmp_path):
    target = tmp_path / "tpl"
    shutil.copytree(PROJECT_ROOT / "templates", target)
    (target / "sms.txt.j2").write_text("{{ marker }}{{ text }} {{ hotline }}")
    monkeypatch.setenv("TEMPLATES_DIR", str(target))
    get_settings.cache_clear()
    resp = client.post(f"/v1/updates/{incident['updates'][0]['id']}/preview", headers=auth("read"))
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["error"] == "template_error" and body["field"] == "templates/sms.txt.j2"
    assert body["variable"] == "hotline" and "hotline" in body["detail"]


def test_preview_needs_read_scope_and_an_existing_update(client, auth, incident):
    update_id = incident["updates"][0]["id"]
    assert client.post(f"/v1/updates/{update_id}/preview").status_code == 401
    resp = client.post("/v1/updates/99999/preview", headers=auth("read"))
    assert resp.status_code == 404 and resp.json()["field"] == "update_id"


def test_list_channels_and_check(client, auth, admin, monkeypatch):
    resp = client.get("/v1/channels", headers=auth("read"))
    assert resp.status_code == 200
    by = {c["name"]: c for c in resp.json()}
    assert {"twilio-sms", "twilio-voice", "sendgrid", "x", "mastodon", "bluesky", "webhook", "banner"} <= set(by)
    assert by["twilio-sms"]["configured"] is False and by["banner"]["configured"] is True
    assert client.post("/v1/channels/twilio-sms/check", headers=admin).status_code == 404
    with running_fake() as fake:
        for key, value in fake.env().items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        listed = {c["name"]: c for c in client.get("/v1/channels", headers=auth("read")).json()}
        assert listed["twilio-sms"]["configured"] is True
        assert listed["twilio-sms"]["config"]["auth_token"] == "****oken"
        assert "fake-twilio-token" not in str(listed) and "fake-webhook-secret" not in str(listed)
        assert listed["sendgrid"]["limits"]["batch_size"] == 1000
        assert client.post("/v1/channels/twilio-sms/check", headers=auth("read")).status_code == 403
        resp = client.post("/v1/channels/twilio-sms/check", headers=admin)
        assert resp.status_code == 200 and resp.json()["ok"] is True, resp.text
        fake.inject("sendgrid", 401)
        resp = client.post("/v1/channels/sendgrid/check", headers=admin)
        assert resp.json() == {"name": "sendgrid", "ok": False, "detail": "SendGrid answered 401"}
    assert client.post("/v1/channels/nope/check", headers=admin).status_code == 404


@pytest.mark.parametrize(
    ("kind", "marker", "notice"), [("correction", "CORRECTION: ", "corrects"), ("cancel", "CANCELLED: ", "cancels")]
)
def test_preview_of_a_correction_names_the_original(client, auth, emergency_category, kind, marker, notice):
    resp = client.post(
        "/v1/incidents",
        headers=auth("write"),
        json={
            "title": "Boil water notice",
            "category": "emergency",
            "severity": "major",
            "update": {"body": "Boil water before drinking.", "channels": ["banner"]},
        },
    )
    incident = resp.json()
    original = incident["updates"][0]
    published = client.post(f"/v1/updates/{original['id']}/publish", headers=auth("publish"))
    assert published.status_code == 200, published.text
    when = published.json()["update"]["published_at"]  # ISO, UTC
    resp = client.post(
        f"/v1/incidents/{incident['id']}/updates",
        headers=auth("write"),
        json={
            "body": "Only the east district.",
            "kind": kind,
            "corrects": original["id"],
            "channels": ["sms", "email", "webhook"],
        },
    )
    assert resp.status_code == 201, resp.text
    data = client.post(f"/v1/updates/{resp.json()['id']}/preview", headers=auth("read")).json()
    by = {c["channel"]: c for c in data["channels"]}
    assert by["sms"]["text"].startswith(marker)
    assert by["email"]["subject"].startswith(marker)
    stamp = f"{when[:10]} {when[11:16]} UTC"
    assert f"This {notice} our message of {stamp}." in by["email"]["text"]
    assert f"This {notice} our message of {stamp}." in by["webhook"]["text"]


def test_draft_preview_incident_id_past_int64_is_422(client, auth, emergency_category):
    """It was a 500 on SQLite (OverflowError binding it) and a field-less 422 on PostgreSQL (bigint range)."""
    body = {"incident_id": 2**63, "update": {"body": "x"}}
    resp = client.post("/v1/preview", headers=auth("read"), json=body)
    assert resp.status_code == 422 and resp.json()["field"] == "incident_id", resp.text


def test_no_translation_warning_when_everyone_reads_the_update_language(client, auth, incident):
    """Issue 21: three "missing translation" warnings used to show on every message."""
    body = {"phone": "+15550100009", "categories": ["emergency"], "locale": "en"}
    assert client.post("/v1/subscribers", headers=auth("admin"), json=body).status_code == 201
    update_id = incident["updates"][0]["id"]
    data = client.post(f"/v1/updates/{update_id}/preview", headers=auth("read")).json()
    assert [w for w in data["warnings"] if "translation" in w] == []
    body = {"phone": "+15550100008", "categories": ["emergency"], "locale": "de"}
    assert client.post("/v1/subscribers", headers=auth("admin"), json=body).status_code == 201
    data = client.post(f"/v1/updates/{update_id}/preview", headers=auth("read")).json()
    assert [w for w in data["warnings"] if "translation" in w] == [
        "missing translation for de: subscribers in de get the en text"
    ]
