"""`/v1/routing-map`: the whole map as JSON or YAML, replaced in one PUT; the example crisis plan."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from .helpers import assert_error

ROOT = Path(__file__).resolve().parents[2]
PLAN = ROOT / "examples" / "crisis-plan.yaml"

MAP = {
    "version": 1,
    "categories": [
        {
            "slug": "emergency",
            "name": "Emergency",
            "contact": {"phone": "+15551234567"},
            "channels": {"critical": ["sms", "voice", "email", "social", "banner"]},
        },
        {"slug": "billing", "name": "Billing", "contact": {"portal_url": "https://portal.example.org/"}},
    ],
}


def test_get_json_and_yaml(client, auth, emergency_category):
    reader = auth("read")
    as_json = client.get("/v1/routing-map", headers=reader)
    assert as_json.status_code == 200
    assert as_json.headers["content-type"].startswith("application/json")
    (cat,) = as_json.json()["categories"]
    assert cat["slug"] == "emergency"
    assert cat["channels"]["critical"] == ["sms", "voice", "email", "social", "banner"]
    assert cat["contact"]["phone"] == "+15551234567"

    for resp in (
        client.get("/v1/routing-map?format=yaml", headers=reader),
        client.get("/v1/routing-map", headers=reader | {"Accept": "application/yaml"}),
    ):
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("application/yaml")
        assert yaml.safe_load(resp.text)["categories"][0]["contact"] == {
            "phone": "+15551234567",
            "opening_hours": "24/7",
        }


def test_put_json_replaces_the_map(client, auth, emergency_category, technical_category):
    resp = client.put("/v1/routing-map", headers=auth("write"), json=MAP)
    assert resp.status_code == 200, resp.text
    slugs = [c["slug"] for c in resp.json()["categories"]]
    assert slugs == ["billing", "emergency"]  # technical-issue removed, billing added
    listed = client.get("/v1/categories", headers=auth("read")).json()
    assert [c["slug"] for c in listed] == ["billing", "emergency"]
    emergency = next(c for c in listed if c["slug"] == "emergency")
    assert emergency["contact"] == {"phone": "+15551234567"}  # opening_hours dropped: the map is the truth


def test_put_yaml_round_trip(client, auth):
    writer, reader = auth("write"), auth("read")
    resp = client.put(
        "/v1/routing-map", headers=writer | {"Content-Type": "application/yaml"}, content=PLAN.read_bytes()
    )
    assert resp.status_code == 200, resp.text
    exported = client.get("/v1/routing-map?format=yaml", headers=reader).text
    again = client.put("/v1/routing-map", headers=writer | {"Content-Type": "application/yaml"}, content=exported)
    assert again.status_code == 200
    assert again.json() == resp.json()
    assert yaml.safe_load(exported) == yaml.safe_load(client.get("/v1/routing-map?format=yaml", headers=reader).text)


def test_example_crisis_plan(client, auth):
    resp = client.put(
        "/v1/routing-map", headers=auth("write") | {"Content-Type": "application/yaml"}, content=PLAN.read_bytes()
    )
    assert resp.status_code == 200, resp.text
    cats = {c["slug"]: c for c in resp.json()["categories"]}
    assert set(cats) == {"emergency", "technical-issue", "billing", "reschedule"}
    assert cats["emergency"]["channels"]["critical"] == ["sms", "voice", "email", "social", "banner"]
    assert cats["emergency"]["contact"]["phone"] == "+15551234567"
    assert cats["technical-issue"]["channels"]["major"] == ["banner", "social"]
    assert str(cats["technical-issue"]["contact"]["live_chat_url"]).startswith("https://chat.example.org")
    assert cats["billing"]["channels"]["major"] == ["email"]
    assert str(cats["billing"]["contact"]["portal_url"]).startswith("https://portal.example.org/")
    assert str(cats["reschedule"]["contact"]["portal_url"]).startswith("https://portal.example.org/")


def test_put_refuses_to_drop_a_category_in_use(client, admin, make_incident, unchanged):
    make_incident()  # uses emergency
    with unchanged():
        resp = client.put("/v1/routing-map", headers=admin, json={"categories": [MAP["categories"][1]]})
    assert_error(resp, 409, field="categories")
    assert [c["slug"] for c in client.get("/v1/categories", headers=admin).json()] == ["emergency"]


@pytest.mark.parametrize(
    ("content", "ctype", "status", "code", "field"),
    [
        (b"categories: [unclosed", "application/yaml", 422, "malformed_yaml", "body"),
        (b'{"categories": [', "application/json", 400, "malformed_json", "body"),
        (b"- just\n- a list\n", "application/yaml", 422, "invalid", "body"),
        (b"categories:\n  - slug: x\n", "application/yaml", 422, "invalid", "categories.0.name"),
        (
            b"categories:\n  - {slug: a, name: A, channels: {critical: [pigeon]}}\n",
            "application/yaml",
            422,
            "invalid",
            "categories.0.channels",
        ),
        (
            b"categories:\n  - {slug: a, name: A}\n  - {slug: a, name: B}\n",
            "application/yaml",
            422,
            "invalid",
            "categories",
        ),
        (b"categories: []\nextra: 1\n", "application/yaml", 422, "invalid", "extra"),
        (b"categories: \xc3\x28\n", "application/yaml", 422, "malformed_yaml", "body"),
    ],
)
def test_put_bad_map_is_4xx_and_writes_nothing(
    client, admin, emergency_category, unchanged, content, ctype, status, code, field
):
    with unchanged():
        resp = client.put("/v1/routing-map", headers=admin | {"Content-Type": ctype}, content=content)
    assert_error(resp, status, code, field)
    assert client.get("/v1/routing-map", headers=admin).json()["categories"][0]["slug"] == "emergency"


def test_yaml_alias_bomb_is_refused_quickly(client, admin, emergency_category, unchanged):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    bomb = "\n".join(lines) + "\ncategories: *a9\n"
    with unchanged():
        resp = client.put("/v1/routing-map", headers=admin | {"Content-Type": "application/yaml"}, content=bomb)
    assert_error(resp, 422, "invalid", "body")
    assert "aliases" in resp.json()["detail"]


def test_yaml_aliases_within_reason_still_work(client, admin):
    plan = """
categories:
  - {slug: emergency, name: Emergency, channels: {critical: &loud [sms, email, banner], major: *loud}}
  - {slug: outage, name: Outage, channels: {critical: *loud}}
"""
    resp = client.put("/v1/routing-map", headers=admin | {"Content-Type": "application/yaml"}, content=plan)
    assert resp.status_code == 200, resp.text
    cats = {c["slug"]: c for c in resp.json()["categories"]}
    assert cats["outage"]["channels"] == {"critical": ["sms", "email", "banner"]}
    assert cats["emergency"]["channels"]["major"] == ["sms", "email", "banner"]
