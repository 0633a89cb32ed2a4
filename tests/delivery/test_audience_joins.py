"""Audiences from join tables (issue 13): subscribers' categories, tags and followed services, the routing
map's `reach` (category / services / either), "chose nothing" subscribers, update overrides, and every way a
subscriber's choices are written (API, CSV import, the public subscribe form)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from tests.core.helpers import assert_error


@pytest.fixture
def services(db_url: str) -> Any:
    """`services("water", "power", hidden=("internal",))`: create services (public unless hidden)."""
    from broadcaster.db import session_scope
    from broadcaster.invalidation import content_changed
    from broadcaster.models.services import Service

    def make(*public: str, hidden: tuple[str, ...] = ()) -> None:
        with session_scope() as session:
            for i, slug in enumerate(public + hidden):
                session.add(Service(slug=slug, name=slug.title(), position=i, public=slug in public))
            content_changed(session)  # the status page lists them

    return make


def _publish(client: Any, admin: dict[str, str], *, affected: list[str] | None = None, **update: Any) -> int:
    """An emergency incident (naming `affected` services) with one published update; the broadcast id."""
    inc = client.post(
        "/v1/incidents",
        headers=admin,
        json={
            "title": "Outage",
            "category": "emergency",
            "severity": "major",
            "affected_services": affected or [],
        },
    )
    assert inc.status_code == 201, inc.text
    body = {"body": "Service is down.", "channels": ["memory"]} | update
    upd = client.post(f"/v1/incidents/{inc.json()['id']}/updates", headers=admin, json=body)
    assert upd.status_code == 201, upd.text
    pub = client.post(f"/v1/updates/{upd.json()['id']}/publish", headers=admin)
    assert pub.status_code == 200, pub.text
    return int(pub.json()["broadcast_id"])


def _reached(broadcast_id: int) -> set[str]:
    """Phones the broadcast was planned for (planning only: what the audience query selected)."""
    from broadcaster.db import session_scope
    from broadcaster.delivery.planner import plan_next
    from broadcaster.models.delivery import Delivery

    with session_scope() as session:
        plan_next(session)
    with session_scope() as session:
        return set(session.scalars(select(Delivery.address).where(Delivery.broadcast_id == broadcast_id)))


def _set_reach(client: Any, admin: dict[str, str], reach: str) -> None:
    resp = client.patch("/v1/categories/emergency", headers=admin, json={"reach": reach})
    assert resp.status_code == 200, resp.text
    assert resp.json()["reach"] == reach


def test_category_subscribers_and_those_who_chose_nothing(
    memory, drain, client, admin, add_subscribers, emergency_category
):
    add_subscribers(2, categories=["emergency"])  # +15550000001-2
    add_subscribers(1, categories=["roads"])  # 3
    add_subscribers(1)  # 4: chose nothing -> everything
    add_subscribers(1, services=["water"])  # 5: follows a service only: not "everything"
    add_subscribers(1, categories=["roads", "emergency"])  # 6
    bid = _publish(client, admin)
    drain()
    assert sorted(a for _, a, _, _ in memory.sent) == ["+15550000001", "+15550000002", "+15550000004", "+15550000006"]
    assert _reached(bid) == {"+15550000001", "+15550000002", "+15550000004", "+15550000006"}


@pytest.mark.parametrize(
    ("reach", "expected"),
    [
        ("category", {"1-cat", "4-all", "5-both"}),
        ("services", {"2-water", "4-all", "5-both"}),
        ("either", {"1-cat", "2-water", "4-all", "5-both"}),
    ],
)
def test_followers_of_affected_services_per_reach(
    memory, client, admin, add_subscribers, emergency_category, services, reach, expected
):
    services("water", "power")
    names = {}
    for name, fields in {
        "1-cat": {"categories": ["emergency"]},
        "2-water": {"services": ["water"]},
        "3-power": {"services": ["power"]},
        "4-all": {},
        "5-both": {"categories": ["emergency"], "services": ["water"]},
        "6-roads-water": {"categories": ["roads"], "services": ["power"]},
    }.items():
        [sid] = add_subscribers(1, **fields)
        names[f"+1555000{sid:04d}"] = name
    _set_reach(client, admin, reach)
    bid = _publish(client, admin, affected=["water"])
    assert {names[a] for a in _reached(bid)} == expected
    # the preview counts the same audience (COUNT in the database)
    inc = client.post(
        "/v1/incidents",
        headers=admin,
        json={"title": "Again", "category": "emergency", "severity": "major", "affected_services": ["water"]},
    ).json()
    upd = client.post(
        f"/v1/incidents/{inc['id']}/updates", headers=admin, json={"body": "x", "channels": ["memory"]}
    ).json()
    preview = client.post(f"/v1/updates/{upd['id']}/preview", headers=admin)
    assert preview.status_code == 200, preview.text
    assert {c["channel"]: c["recipients"] for c in preview.json()["channels"]} == {"memory": len(expected)}


def test_services_reach_without_affected_services_falls_back_to_the_category(
    memory, client, admin, add_subscribers, emergency_category, services
):
    services("water")
    add_subscribers(1, categories=["emergency"])  # 1
    add_subscribers(1, services=["water"])  # 2
    _set_reach(client, admin, "services")
    assert _reached(_publish(client, admin)) == {"+15550000001"}
    assert _reached(_publish(client, admin, affected=["water"])) == {"+15550000002"}


def test_update_audience_overrides_categories_tags_and_locales(
    memory, client, admin, add_subscribers, emergency_category, services
):
    services("water")
    add_subscribers(1, categories=["emergency"], tags=["north"])  # 1
    add_subscribers(1, categories=["roads"], tags=["north"])  # 2
    add_subscribers(1, categories=["roads"], tags=["south"])  # 3
    add_subscribers(1, categories=["roads"], tags=["north"], locale="fr")  # 4
    add_subscribers(1, tags=["north"])  # 5: everything
    add_subscribers(1, services=["water"], tags=["north", "south"])  # 6
    assert _reached(_publish(client, admin, audience={"categories": ["roads"]})) == {
        "+15550000002",
        "+15550000003",
        "+15550000004",
        "+15550000005",
    }
    assert _reached(_publish(client, admin, audience={"categories": ["roads"], "tags": ["north"]})) == {
        "+15550000002",
        "+15550000004",
        "+15550000005",
    }
    assert _reached(_publish(client, admin, audience={"tags": ["south", "nowhere"]})) == set()
    assert _reached(_publish(client, admin, affected=["water"], audience={"tags": ["south"]})) == {"+15550000006"}
    assert _reached(
        _publish(client, admin, audience={"categories": ["roads"], "tags": ["north"], "locales": ["fr"]})
    ) == {"+15550000004"}


def test_subscribers_api_round_trip_and_filters(client, auth, emergency_category, services):
    services("water", "power", hidden=("internal",))
    w, r = auth("write"), auth("read")
    created = client.post(
        "/v1/subscribers",
        headers=w,
        json={
            "email": "a@example.org",
            "categories": ["emergency"],
            "tags": ["North", "south"],
            "services": ["water", "internal"],
        },
    )
    assert created.status_code == 201, created.text
    a = created.json()
    assert (a["categories"], a["tags"], a["services"], a["all_categories"]) == (
        ["emergency"],
        ["north", "south"],
        ["internal", "water"],
        False,
    )
    b = client.post("/v1/subscribers", headers=w, json={"phone": "+15550000009"}).json()
    assert (b["categories"], b["tags"], b["services"], b["all_categories"]) == ([], [], [], True)
    assert client.get(f"/v1/subscribers/{a['id']}", headers=r).json()["services"] == ["internal", "water"]
    # a patch replaces only the lists it names
    patched = client.patch(f"/v1/subscribers/{a['id']}", headers=w, json={"services": ["power"]}).json()
    assert (patched["categories"], patched["tags"], patched["services"]) == (
        ["emergency"],
        ["north", "south"],
        ["power"],
    )
    cleared = client.patch(f"/v1/subscribers/{a['id']}", headers=w, json={"categories": [], "services": []}).json()
    assert (cleared["categories"], cleared["services"], cleared["all_categories"]) == ([], [], True)
    followed = client.patch(f"/v1/subscribers/{b['id']}", headers=w, json={"services": ["water"]}).json()
    assert (followed["services"], followed["all_categories"]) == (["water"], False)

    def ids(query: str) -> list[int]:
        resp = client.get(f"/v1/subscribers?{query}", headers=r)
        assert resp.status_code == 200, resp.text
        return [s["id"] for s in resp.json()["items"]]

    assert ids("service=water") == [b["id"]]
    assert ids("tag=south") == [a["id"]]
    assert ids("category=emergency") == []
    client.patch(f"/v1/subscribers/{b['id']}", headers=w, json={"categories": ["emergency"]})
    assert ids("category=emergency") == [b["id"]]
    # unknown slugs: 422 naming the field, nothing written
    assert_error(
        client.post("/v1/subscribers", headers=w, json={"email": "c@example.org", "services": ["gas"]}),
        422,
        field="services",
    )
    assert_error(
        client.patch(f"/v1/subscribers/{b['id']}", headers=w, json={"services": ["water", "gas"]}),
        422,
        field="services",
    )
    assert_error(
        client.post("/v1/subscribers", headers=w, json={"email": "c@example.org", "services": ["Bad slug"]}),
        422,
        field="services",
    )
    assert client.get(f"/v1/subscribers/{b['id']}", headers=r).json()["services"] == ["water"]
    assert ids("q=c%40example") == []
    # deleting a subscriber deletes its join rows (ON DELETE CASCADE)
    assert client.delete(f"/v1/subscribers/{a['id']}", headers=w).status_code == 204
    from broadcaster.db import session_scope
    from broadcaster.models.audience import SubscriberTag

    with session_scope() as session:
        assert session.scalars(select(SubscriberTag.subscriber_id)).all() == []


def test_csv_import_writes_categories_tags_and_services(client, auth, emergency_category, services):
    services("water", "power")
    w, r = auth("write"), auth("read")
    csv_text = (
        "phone,email,categories,tags,services\n"
        "+15550000001,a@example.org,emergency,north;south,water\n"
        "+15550000002,b@example.org,,,\n"
        "+15550000003,,emergency,,gas\n"  # unknown service: refused
        "+15550000001,,,east,\n"  # same phone: tags replaced, categories and services kept
        "+15550000004,d@example.org,,,power|water\n"
    )
    resp = client.post("/v1/subscribers/import?wait=true", content=csv_text, headers=w)
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert (report["created"], report["updated"], report["rejected"]) == (3, 1, 1)
    assert [(e["row"], e["field"]) for e in report["errors"]] == [(4, "services")]
    subs = {s["phone"]: s for s in client.get("/v1/subscribers", headers=r).json()["items"]}
    got = {p: (s["categories"], s["tags"], s["services"], s["all_categories"]) for p, s in subs.items()}
    assert got == {
        "+15550000001": (["emergency"], ["east"], ["water"], False),
        "+15550000002": ([], [], [], True),
        "+15550000004": ([], [], ["power", "water"], False),
    }
    # a second import updates existing subscribers' lists in bulk
    again = "phone,categories,services\n+15550000002,emergency,\n+15550000004,,water\n"
    assert client.post("/v1/subscribers/import?wait=true", content=again, headers=w).json()["updated"] == 2
    subs = {s["phone"]: s for s in client.get("/v1/subscribers", headers=r).json()["items"]}
    assert (subs["+15550000002"]["categories"], subs["+15550000002"]["all_categories"]) == (["emergency"], False)
    assert (subs["+15550000004"]["services"], subs["+15550000004"]["all_categories"]) == (["water"], False)


def test_public_subscribe_form_chooses_services(client, emergency_category, services):
    from broadcaster.db import session_scope
    from broadcaster.models.delivery import Subscriber
    from broadcaster.subscribers import memberships

    page = client.get("/status")
    assert page.status_code == 200
    assert 'name="services"' not in page.text  # no services yet: no fieldset
    services("water", "power", hidden=("internal",))
    page = client.get("/status").text
    assert "Services to follow" in page
    assert 'value="water"' in page and 'value="power"' in page and 'value="internal"' not in page
    resp = client.post(
        "/v1/subscribe", json={"email": "reader@example.org", "categories": [], "services": ["water", "power"]}
    )
    assert resp.status_code == 202, resp.text
    form = client.post(
        "/v1/subscribe",
        data={"email": "form@example.org", "categories": ["emergency"], "services": ["water"]},
    )
    assert form.status_code == 202, form.text
    assert_error(
        client.post("/v1/subscribe", json={"email": "x@example.org", "services": ["internal"]}), 422, field="services"
    )
    assert_error(
        client.post("/v1/subscribe", json={"email": "x@example.org", "services": ["gas"]}), 422, field="services"
    )
    with session_scope() as session:
        rows = {s.email or s.phone: s for s in session.scalars(select(Subscriber))}
        assert set(rows) == {"reader@example.org", "form@example.org"}
        choices = memberships.read(session, [s.id for s in rows.values()])
        reader, phone = rows["reader@example.org"], rows["form@example.org"]
        assert (choices[reader.id].categories, choices[reader.id].services, reader.all_categories) == (
            [],
            ["power", "water"],
            False,
        )
        assert (choices[phone.id].categories, choices[phone.id].services) == (["emergency"], ["water"])


def test_routing_map_reach_is_exported_and_validated(client, admin, emergency_category):
    current = client.get("/v1/routing-map", headers=admin).json()
    assert [c["reach"] for c in current["categories"]] == ["either"]
    current["categories"][0]["reach"] = "services"
    assert client.put("/v1/routing-map", headers=admin, json=current).status_code == 200
    assert client.get("/v1/categories/emergency", headers=admin).json()["reach"] == "services"
    assert "reach: services" in client.get("/v1/routing-map?format=yaml", headers=admin).text
    current["categories"][0]["reach"] = "everyone"
    assert_error(client.put("/v1/routing-map", headers=admin, json=current), 422, field="categories.0.reach")
    assert_error(client.patch("/v1/categories/emergency", headers=admin, json={"reach": "all"}), 422, field="reach")
    assert client.get("/v1/categories/emergency", headers=admin).json()["reach"] == "services"
