"""Publishing creates a broadcast at once; the worker fans it out and sends through the adapters."""

from __future__ import annotations

from sqlalchemy import func, select


def _deliveries(broadcast_id: int) -> list:
    from broadcaster.db import session_scope
    from broadcaster.models.delivery import Delivery

    with session_scope() as session:
        return list(
            session.scalars(select(Delivery).where(Delivery.broadcast_id == broadcast_id).order_by(Delivery.id))
        )


def test_publish_returns_planning_broadcast_then_worker_sends(
    memory, drain, add_subscribers, publish, emergency_category
):
    from broadcaster.db import session_scope
    from broadcaster.models.delivery import Broadcast, Delivery

    add_subscribers(5, categories=["emergency"])
    add_subscribers(2, categories=["other"])
    add_subscribers(1)  # no categories: everything
    out = publish(channels=["memory"])
    bid = out["broadcast_id"]
    assert isinstance(bid, int)
    with session_scope() as session:
        assert session.get(Broadcast, bid).state == "planning"
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0
    drain()
    rows = _deliveries(bid)
    assert len(rows) == 6
    assert {r.status for r in rows} == {"sent"}
    assert sorted(a for _, a, _, _ in memory.sent) == sorted(r.address for r in rows)
    keys = [k for _, _, k, _ in memory.sent]
    assert len(set(keys)) == 6 and all(k.startswith(f"bc{bid}-d") for k in keys)
    with session_scope() as session:
        b = session.get(Broadcast, bid)
        assert (b.state, b.total) == ("done", 6)


def _statuses(broadcast_id: int) -> dict[str, str]:
    return {r.address: r.status for r in _deliveries(broadcast_id)}


def test_audience_filters_tags_locales_and_consent(memory, drain, add_subscribers, publish, emergency_category):
    add_subscribers(1, phone="+15550000001", tags=["north"], locale="fr")
    add_subscribers(1, phone="+15550000002", tags=["north"], locale="en")
    add_subscribers(1, phone="+15550000003", tags=["south"], locale="fr")
    add_subscribers(1, phone="+15550000004", tags=["north"], locale="fr", sms_opted_out=True)
    out = publish(channels=["memory"], audience={"tags": ["north"], "locales": ["fr"]})
    drain()
    assert _statuses(out["broadcast_id"]) == {"+15550000001": "sent"}


def test_email_needs_confirmation_and_no_opt_out(memory, drain, add_subscribers, publish, emergency_category):
    add_subscribers(1, phone="+15550000001")
    add_subscribers(1, phone="+15550000002", email_confirmed=False)
    add_subscribers(1, phone="+15550000003", email_opted_out=True)
    out = publish(channels=["memory-email"])
    drain()
    rows = _deliveries(out["broadcast_id"])
    assert [r.address for r in rows] == ["s0001@example.org"]
    assert rows[0].status == "sent"


def test_test_update_reaches_only_test_group(memory, drain, add_subscribers, publish, emergency_category):
    add_subscribers(3)
    add_subscribers(1, phone="+15550009999", test_group=True)
    out = publish(channels=["memory"], test=True)
    drain()
    assert _statuses(out["broadcast_id"]) == {"+15550009999": "sent"}


def test_correction_goes_to_everyone_the_original_reached(
    memory, drain, add_subscribers, publish, client, admin, emergency_category
):
    from broadcaster.delivery.testing import permanent

    add_subscribers(3, categories=["emergency"])
    memory.script["+15550000002"] = [permanent()]
    first = publish(channels=["memory"])
    drain()
    assert _statuses(first["broadcast_id"]) == {
        "+15550000001": "sent",
        "+15550000002": "failed",
        "+15550000003": "sent",
    }
    add_subscribers(2, categories=["emergency"])  # joined later: not reached by the original
    incident_id = first["update"]["incident_id"]
    upd = client.post(
        f"/v1/incidents/{incident_id}/updates",
        headers=admin,
        json={"body": "Correction: it is the south district.", "kind": "correction", "corrects": first["update"]["id"]},
    )
    assert upd.status_code == 201, upd.text
    preview_counts = None
    from broadcaster.db import session_scope
    from broadcaster.delivery.audience import audience_counts
    from broadcaster.models import Update

    with session_scope() as session:
        preview_counts = audience_counts(session, session.get(Update, upd.json()["id"]))
    assert preview_counts == {"memory": 2}
    pub = client.post(f"/v1/updates/{upd.json()['id']}/publish", headers=admin)
    assert pub.status_code == 200, pub.text
    drain()
    assert _statuses(pub.json()["broadcast_id"]) == {"+15550000001": "sent", "+15550000003": "sent"}


def test_cancel_update_stops_original_and_notifies_reached(
    memory, drain, add_subscribers, publish, client, admin, emergency_category
):
    from broadcaster.db import get_engine, session_scope
    from broadcaster.delivery.planner import plan_next
    from broadcaster.delivery.worker import claim
    from broadcaster.models.delivery import Broadcast

    add_subscribers(4, categories=["emergency"])
    first = publish(channels=["memory"])
    with session_scope() as session:
        plan_next(session)
    # one delivery is sent (claimed and finished by hand), the rest still pending
    [claimed] = claim(get_engine(), "w1", 1, 60)
    with session_scope() as session:
        from broadcaster.models.delivery import Delivery

        session.get(Delivery, claimed.id).status = "sent"
    incident_id = first["update"]["incident_id"]
    upd = client.post(
        f"/v1/incidents/{incident_id}/updates",
        headers=admin,
        json={"body": "Cancel: sent in error.", "kind": "cancel", "corrects": first["update"]["id"]},
    ).json()
    pub = client.post(f"/v1/updates/{upd['id']}/publish", headers=admin).json()
    drain()
    original = _statuses(first["broadcast_id"])
    assert sorted(original.values()) == ["cancelled", "cancelled", "cancelled", "sent"]
    assert _statuses(pub["broadcast_id"]) == {claimed.address: "sent"}
    with session_scope() as session:
        assert session.get(Broadcast, first["broadcast_id"]).state == "cancelled"


def test_unconfigured_channel_is_skipped_and_counts(memory, drain, add_subscribers, publish, client, admin):
    from broadcaster.db import session_scope
    from broadcaster.models.delivery import Broadcast

    resp = client.post(
        "/v1/categories",
        headers=admin,
        json={"slug": "emergency", "name": "Emergency", "channels": {"major": ["memory", "social"]}},
    )
    assert resp.status_code == 201, resp.text
    add_subscribers(2)
    out = publish()
    drain()
    with session_scope() as session:
        b = session.get(Broadcast, out["broadcast_id"])
        assert b.channels == ["memory", "social"]
        assert b.skipped == {"social": "no adapter configured"}
        assert (b.state, b.total) == ("done", 2)


def test_no_channels_means_no_broadcast(memory, publish, client, admin):
    resp = client.post("/v1/categories", headers=admin, json={"slug": "emergency", "name": "E", "channels": {}})
    assert resp.status_code == 201
    assert publish()["broadcast_id"] is None
