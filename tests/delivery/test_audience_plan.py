"""A 1% audience among 1,000,000 subscribers on PostgreSQL is index lookups, never a scan (issue 13): the
EXPLAIN of the preview's COUNT and of the fan-out's SELECT, for a category, a followed service (each `reach`)
and an update's category override."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, func, select
from tests.delivery.audience_plan import nodes, plan, seed, seq_scans

N = 1_000_000


@pytest.mark.postgres
def test_one_percent_audience_is_an_index_lookup_on_postgres(db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("the plan is PostgreSQL's")
    from broadcaster.db import session_scope
    from broadcaster.delivery import audience
    from broadcaster.domain import ChannelKind
    from broadcaster.models import Category, Incident, Update
    from broadcaster.models.delivery import Subscriber

    engine = create_engine(db_url)
    with engine.begin() as conn:
        seeded = seed(conn, N)
    engine.dispose()
    cases = [
        # (reach, incident category, affected services, audience override, categories hit, services hit)
        ("category", "target", ["target-svc"], None, True, False),
        ("services", "target", ["target-svc"], None, False, True),
        ("either", "target", ["target-svc"], None, True, True),
        ("either", "other", [], {"categories": ["target"]}, True, False),
        ("services", "other", ["target-svc"], None, False, True),
    ]
    with session_scope() as session:
        cats = {c.slug: c for c in session.scalars(select(Category))}
        for reach, slug, affected, override, by_cat, by_svc in cases:
            cats[slug].reach = reach
            incident = Incident(title="t", category_id=cats[slug].id, severity="major", affected_services=affected)
            session.add(incident)
            session.flush()
            upd = Update(incident_id=incident.id, body="b", state="draft", audience=override)
            session.add(upd)
            session.flush()
            expected = seeded.expected(categories=by_cat, services=by_svc)
            assert expected <= N * 0.021
            for kind in (ChannelKind.email, ChannelKind.sms):
                where = audience.subscriber_conditions(upd, kind)
                count = select(func.count()).select_from(Subscriber).where(*where)
                assert session.scalar(count) == expected, (reach, slug, kind)
                for stmt in (count, audience.subscriber_select(upd, kind)):
                    root = plan(session.connection(), stmt)
                    assert seq_scans(root) == [], (reach, slug, kind, nodes(root))
                    used = {index for _, _, index in nodes(root) if index}
                    assert used & {"ix_subscriber_categories_category_id", "ix_subscriber_services_service_id"}, used


def _large_expected(n: int, *, services: bool) -> int:
    """Subscribers of category `other` (+ followers of `other-svc` when `services`) or `all_categories`."""
    total = 0
    for i in range(1, n + 1):
        everything = i % 1000 == 999
        in_other = not everything and i % 100 != 0
        follows_other = services and i % 10 in (1, 2) and i % 100 != 1
        total += everything or in_other or follows_other
    return total


@pytest.mark.postgres
def test_large_audience_is_one_scan_not_a_lookup_per_recipient_on_postgres(db_url):
    """A 99% audience is not planned like a 1% one (PostgreSQL's 200-row guess for the union would make it one
    primary-key lookup per recipient): it is one scan of `subscribers`, and the counts are exact."""
    if not db_url.startswith("postgresql"):
        pytest.skip("the plan is PostgreSQL's")
    from broadcaster.db import session_scope
    from broadcaster.delivery import audience
    from broadcaster.domain import ChannelKind
    from broadcaster.models import Category, Incident, Update
    from broadcaster.models.delivery import Subscriber

    engine = create_engine(db_url)
    with engine.begin() as conn:
        seed(conn, N)
    engine.dispose()
    with session_scope() as session:
        cats = {c.slug: c for c in session.scalars(select(Category))}
        for reach, affected in (("category", []), ("either", ["other-svc"])):
            cats["other"].reach = reach
            incident = Incident(title="t", category_id=cats["other"].id, severity="major", affected_services=affected)
            session.add(incident)
            session.flush()
            upd = Update(incident_id=incident.id, body="b", state="draft")
            session.add(upd)
            session.flush()
            expected = _large_expected(N, services=bool(affected))
            assert expected >= N * 0.98
            assert audience.large_reach(session, upd)
            for kind in (ChannelKind.email, ChannelKind.sms):
                where = audience.subscriber_conditions(upd, kind)
                count = select(func.count()).select_from(Subscriber).where(*where)
                assert session.scalar(count) == expected, (reach, kind)
                for stmt in (count, audience.subscriber_select(upd, kind)):
                    root = plan(session.connection(), stmt)
                    found = nodes(root)
                    pk_lookups = [n for n in found if n[1] == "subscribers" and n[2] == "pk_subscribers"]
                    assert pk_lookups == [], (reach, kind, found)
                    assert ("Seq Scan", "subscribers", None) in found, (reach, kind, found)
            if affected:
                continue
            # the 1% category of the same data (no service) stays small
            small = Update(incident_id=incident.id, body="b", state="draft", audience={"categories": ["target"]})
            session.add(small)
            session.flush()
            assert not audience.large_reach(session, small)
