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
