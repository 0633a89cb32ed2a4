"""`audience.large_reach` runs its capped count once per transaction and reach (PostgreSQL): a preview asks
for every channel's count and ETA with the same reach, which used to count it again each time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def reach_counts(db_url: str, is_postgres: bool) -> Iterator[list[str]]:
    """The statements that read the table size for `large_reach` (one per capped count), as they run."""
    if not is_postgres:
        pytest.skip("large_reach counts on PostgreSQL only")
    from sqlalchemy import event

    from broadcaster.db import get_engine

    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "reltuples" in statement:
            seen.append(statement)

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def test_a_preview_counts_the_reach_once(client, admin, add_subscribers, emergency_category, reach_counts):
    add_subscribers(5, categories=["emergency"])
    inc = client.post(
        "/v1/incidents",
        headers=admin,
        json={
            "title": "Flooding",
            "category": "emergency",
            "severity": "major",
            "update": {"body": "Flooding in the north district.", "channels": ["sms", "email", "voice"]},
        },
    )
    assert inc.status_code == 201, inc.text
    update_id = inc.json()["updates"][0]["id"]
    reach_counts.clear()
    resp = client.post(f"/v1/updates/{update_id}/preview", headers=admin)
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["channels"]) == 3
    assert len(reach_counts) == 1  # was one per channel for the counts, and again for each ETA


def test_another_reach_in_the_same_transaction_is_counted_again(
    db_url, add_subscribers, emergency_category, reach_counts
):
    from sqlalchemy import select

    from broadcaster.db import session_scope
    from broadcaster.delivery.audience import large_reach
    from broadcaster.models import Category, Incident, Update

    add_subscribers(3, categories=["emergency", "water"])
    with session_scope() as session:
        category = session.scalar(select(Category).where(Category.slug == "emergency"))
        assert category is not None
        incident = Incident(title="t", category_id=category.id, severity="major")
        session.add(incident)
        session.flush()
        upd = Update(incident_id=incident.id, body="b", state="draft")
        session.add(upd)
        session.flush()
        assert large_reach(session, upd) is False and large_reach(session, upd) is False
        assert len(reach_counts) == 1
        upd.audience = {"categories": ["water"]}  # another reach: counted
        large_reach(session, upd)
        large_reach(session, upd)
        assert len(reach_counts) == 2
        update_id = upd.id
    with session_scope() as session:  # a new transaction counts afresh
        again = session.get(Update, update_id)
        assert again is not None
        large_reach(session, again)
        assert len(reach_counts) == 3
