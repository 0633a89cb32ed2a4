"""Migration 0004_content_binding: questions published before it get the escalation snapshot the runner now reads
(their own rules, else their category's at upgrade time; {} for none); drafts get theirs when published."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

REVISION = "0004_content_binding"
CATEGORY_RULES = {"steps": [{"after_minutes": 10, "channel": "voice"}], "respect_quiet_hours": True}
OWN_RULES = {"steps": [{"after_minutes": 5, "channel": "sms"}], "respect_quiet_hours": True}

_t = sa.table
_c = sa.column


def _seed(conn: sa.Connection) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC).replace(tzinfo=None)
    categories = _t(
        "categories",
        *(_c(n) for n in ("id", "slug", "name", "description", "position", "created_at", "updated_at")),
        _c("contact", sa.JSON()),
        _c("channels", sa.JSON()),
        _c("escalation", sa.JSON()),
    )
    for cid, slug, rules in ((1, "ruled", CATEGORY_RULES), (2, "plain", None)):
        conn.execute(
            sa.insert(categories).values(
                id=cid,
                slug=slug,
                name=slug,
                description="",
                position=0,
                created_at=now,
                updated_at=now,
                contact={},
                channels={},
                escalation=rules if rules is not None else sa.null(),
            )
        )
    incidents = _t(
        "incidents",
        *(_c(n) for n in ("id", "title", "category_id", "severity", "status", "public", "started_at")),
        *(_c(n) for n in ("created_at", "updated_at")),
        *(_c(n, sa.JSON()) for n in ("affected_services", "sites", "severity_lowered_at")),
    )
    updates = _t(
        "updates",
        *(_c(n) for n in ("id", "incident_id", "kind", "state", "body", "summary", "locale", "test", "created_by")),
        _c("created_at"),
        *(_c(n, sa.JSON()) for n in ("translations", "links")),
    )
    questions = _t(
        "questions",
        *(_c(n) for n in ("id", "update_id", "text", "state", "recipients", "created_at")),
        *(_c(n, sa.JSON()) for n in ("options", "escalation")),
    )
    #: question id -> (category, state, own rules)
    cases = {1: (1, "open", None), 2: (1, "closed", OWN_RULES), 3: (2, "open", None), 4: (1, "draft", None)}
    for qid, (category_id, state, own) in cases.items():
        conn.execute(
            sa.insert(incidents).values(
                id=qid,
                title="t",
                category_id=category_id,
                severity="major",
                status="investigating",
                public=True,
                started_at=now,
                created_at=now,
                updated_at=now,
                affected_services=[],
                sites=[],
                severity_lowered_at={},
            )
        )
        conn.execute(
            sa.insert(updates).values(
                id=qid,
                incident_id=qid,
                kind="normal",
                state="draft" if state == "draft" else "published",
                body="b",
                summary="",
                locale="en",
                test=False,
                created_by="t",
                created_at=now,
                translations={},
                links=[],
            )
        )
        conn.execute(
            sa.insert(questions).values(
                id=qid,
                update_id=qid,
                text="Are you safe?",
                state=state,
                recipients=0,
                created_at=now,
                options=[{"key": "1", "label": "Yes"}, {"key": "2", "label": "No"}],
                escalation=own if own is not None else sa.null(),
            )
        )


def test_published_questions_get_the_rules_in_force_at_upgrade(db_url):
    from alembic import command

    from broadcaster.migrate import alembic_config

    cfg = alembic_config(db_url)
    engine = sa.create_engine(db_url)
    try:
        command.downgrade(cfg, f"{REVISION}-1")
        with engine.begin() as conn:
            assert "escalation_applied" not in {c["name"] for c in sa.inspect(conn).get_columns("questions")}
            _seed(conn)
        command.upgrade(cfg, "head")
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(_c("id"), _c("escalation_applied", sa.JSON())).select_from(_t("questions")).order_by("id")
            ).all()
        assert dict(rows) == {1: CATEGORY_RULES, 2: OWN_RULES, 3: {}, 4: None}
    finally:
        command.upgrade(cfg, "head")
        with engine.begin() as conn:  # leave the database as empty as it came
            for table in ("questions", "updates", "incidents", "categories"):
                conn.execute(sa.delete(_t(table)))
        engine.dispose()
