"""A million subscribers on PostgreSQL, seeded in SQL, and the plan of an audience query: shared by
tests/delivery/test_audience_plan.py (a 1% audience is index lookups, never a scan) and bench/audience_plan.py.

The seeded population (`n` subscribers, ids 1..n, all with a confirmed email and phone):
- `all_categories` (chose nothing): id % 1000 == 999 (0.1%);
- category `target`: id % 100 == 0 (1%); every other subscriber is in category `other`;
- follows service `target-svc`: id % 100 == 1 (1%); follows `other-svc`: id % 10 in (1, 2) otherwise (~19%);
- tag `north`: id % 100 == 3 (1%).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

#: relations a 1% audience must never read with a sequential scan
AUDIENCE_TABLES = ("subscribers", "subscriber_categories", "subscriber_services", "subscriber_tags")


@dataclass
class Seeded:
    n: int
    target_category: int
    other_category: int
    target_service: int
    other_service: int

    def expected(self, *, categories: bool, services: bool, tag: bool = False) -> int:
        """Subscribers a query of the seeded population should count (computed in Python from the rules)."""
        total = 0
        for i in range(1, self.n + 1):
            everything = i % 1000 == 999
            in_cat = categories and i % 100 == 0
            in_svc = services and i % 100 == 1
            if (everything or in_cat or in_svc) and (not tag or i % 100 == 3):
                total += 1
        return total


def _drop_indexes(conn: Connection, table: str, *, primary_key: bool = False) -> list[str]:
    """Drop `table`'s unique constraints and indexes (and its primary key when `primary_key`: only for a
    table no foreign key references); the statements that put them back."""
    back: list[str] = []
    for name, definition in conn.execute(
        text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = CAST(:t AS regclass) AND contype = ANY(:kinds)"
        ),
        {"t": table, "kinds": ["u", "p"] if primary_key else ["u"]},
    ).all():
        conn.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
        back.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    for name, definition in conn.execute(
        text(
            "SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = CAST(:t AS regclass) AND NOT x.indisprimary AND NOT x.indisunique"
        ),
        {"t": table},
    ).all():
        conn.execute(text(f'DROP INDEX "{name}"'))
        back.append(definition)
    return back


def seed(conn: Connection, n: int) -> Seeded:
    """Insert the population (a few INSERT ... SELECT over generate_series) and ANALYZE the tables."""

    from sqlalchemy.orm import Session

    from broadcaster.models import Category
    from broadcaster.models.services import Service

    # bulk-load speed: no foreign-key trigger per inserted join row (the seed is consistent by construction);
    # this transaction only (needs a superuser, as the test and bench databases are)
    conn.execute(text("SET LOCAL session_replication_role = replica"))
    conn.execute(text("SET LOCAL synchronous_commit = off"))
    with Session(bind=conn) as session:  # ORM rows: every column gets its default
        cat_rows = [Category(slug=s, name=s.title(), contact={}, channels={}) for s in ("target", "other")]
        svc_rows = [Service(slug=s, name=s.title()) for s in ("target-svc", "other-svc")]
        session.add_all([*cat_rows, *svc_rows])
        session.flush()
        cats, svcs = [c.id for c in cat_rows], [s.id for s in svc_rows]
    # and the indexes built once after the load rather than row by row (three times faster); the subscribers'
    # primary key stays (the join tables reference it)
    rebuild = _drop_indexes(conn, "subscribers")
    for table in AUDIENCE_TABLES[1:]:
        rebuild += _drop_indexes(conn, table, primary_key=True)
    conn.execute(
        text(
            "INSERT INTO subscribers (id, phone, email, name, locale, all_categories, email_confirmed, "
            "email_opted_out, sms_opted_out, phone_confirmed, test_group, source, created_at, updated_at) "
            "SELECT g, '+1' || (2000000000 + g)::text, 'u' || g || '@example.org', '', 'en', g % 1000 = 999, "
            "true, false, false, true, false, 'bench', now(), now() FROM generate_series(1, :n) g"
        ),
        {"n": n},
    )
    conn.execute(text("SELECT setval(pg_get_serial_sequence('subscribers', 'id'), :n)"), {"n": n})
    conn.execute(
        text(
            "INSERT INTO subscriber_categories (subscriber_id, category_id) "
            "SELECT g, CASE WHEN g % 100 = 0 THEN :t ELSE :o END FROM generate_series(1, :n) g WHERE g % 1000 <> 999"
        ),
        {"n": n, "t": cats[0], "o": cats[1]},
    )
    conn.execute(
        text(
            "INSERT INTO subscriber_services (subscriber_id, service_id) "
            "SELECT g, CASE WHEN g % 100 = 1 THEN :t ELSE :o END FROM generate_series(1, :n) g WHERE g % 10 IN (1, 2)"
        ),
        {"n": n, "t": svcs[0], "o": svcs[1]},
    )
    conn.execute(
        text(
            "INSERT INTO subscriber_tags (subscriber_id, tag) "
            "SELECT g, 'north' FROM generate_series(1, :n) g WHERE g % 100 = 3"
        ),
        {"n": n},
    )
    for statement in rebuild:
        conn.execute(text(statement))
    for table in ("categories", "services", *AUDIENCE_TABLES):
        conn.execute(text(f"ANALYZE {table}"))
    return Seeded(n, cats[0], cats[1], svcs[0], svcs[1])


def literal_sql(conn: Connection, stmt: Any) -> str:
    """`stmt` as PostgreSQL SQL with its values inlined (what EXPLAIN needs; the planner sees the values, as
    it does for the driver's parameters)."""
    return str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))


def plan(conn: Connection, stmt: Any) -> dict[str, Any]:
    """EXPLAIN (FORMAT JSON) of `stmt`: the root plan node."""
    raw = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + literal_sql(conn, stmt)).scalar_one()
    return dict(raw[0]["Plan"])


def nodes(node: dict[str, Any]) -> list[tuple[str, str | None, str | None]]:
    """(node type, relation, index) of every node of a plan, depth first."""
    out = [(str(node["Node Type"]), node.get("Relation Name"), node.get("Index Name"))]
    for child in node.get("Plans", []):
        out += nodes(child)
    return out


def seq_scans(node: dict[str, Any]) -> list[str]:
    """Relations of AUDIENCE_TABLES the plan reads with a sequential scan."""
    return [rel for kind, rel, _ in nodes(node) if kind == "Seq Scan" and rel in AUDIENCE_TABLES]
