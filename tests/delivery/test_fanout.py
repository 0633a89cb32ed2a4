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
