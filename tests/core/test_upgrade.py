"""The upgrade test (issue 23): an install created at the baseline revision 0001 and filled with realistic data
(plain SQL against the 0001 schema, never the current models) is upgraded to head. Every row keeps every value
it had (per-table row counts and a checksum of the 0001 columns), the columns and tables added since hold what
old rows should hold, and the service works on the result: the status page, the API, and a new update published
and planned to the in-memory adapter. Every revision also steps down and up again without losing a row.
On SQLite, and on PostgreSQL when BROADCASTER_TEST_POSTGRES_URL is set (see docs/operations.md, "Upgrading")."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from tests.approving import confirm

BASELINE = "0001"
T0 = datetime(2026, 11, 20, 7, 45, tzinfo=UTC)
ACTIVE_TITLE = "Coupure d'eau – quartier Saint-Éloi"
RESOLVED_TITLE = "Störung der Stromversorgung in Köln-Süd"
#: phones of the seeded subscribers who may get texts (confirmed, not opted out): a live update reaches them
#: the escalation rules of the seeded "eau" category
WATER_ESCALATION = {"steps": [{"after_minutes": 30, "channel": "voice"}], "respect_quiet_hours": True}
TEXTABLE = ["+33612345678", "+4915112345678", "+819012345678"]

#: what rows that existed before each column was added hold after the upgrade, per (table, column): a value,
#: or a function of the row (a new revision that adds a column to an existing table adds its line here)
NEW_COLUMNS: dict[tuple[str, str], Any] = {
    ("users", "role_grants_seen_id"): 0,
    ("maintenance_windows", "approval_state"): None,  # the runner has the gate decide (0003)
    ("maintenance_windows", "approval_reason"): "",
    ("maintenance_windows", "approval_etag"): None,
    ("maintenance_windows", "approval_requested_by"): None,
    ("maintenance_windows", "approval_requested_at"): None,
    ("maintenance_windows", "approval_decided_by"): None,
    ("maintenance_windows", "approval_decided_at"): None,
    ("maintenance_windows", "approval_comment"): "",
    ("maintenance_windows", "approval_voided"): "",
    ("maintenance_notices", "approved_digest"): None,
    ("maintenance_notices", "waiting_reason"): "",
    # 0004: a published question's escalation snapshot is its own rules, else its category's; drafts wait
    ("questions", "escalation_applied"): lambda row: (
        None if row["state"] == "draft" else _json(row["escalation"]) or WATER_ESCALATION
    ),
    ("integrations", "hmac_header"): None,
    ("integrations", "hmac_timestamp_header"): None,
    ("incidents", "title_changed_at"): None,
    ("broadcasts", "not_before"): None,
}
#: rows each table added since 0001 holds right after the upgrade of the seeded install
NEW_TABLES = {
    "role_grants": 0,  # accounts and keys from before count as granted long ago
    "change_requests": 0,
    "routing_map_versions": 1,  # the baseline version of the existing map (0006)
    "notification_prefs": 0,
    "approval_notices": 0,
    "approval_escalations": 0,
    "cap_messages": 0,  # made the first time an old alert is served (0009)
}


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


@pytest.fixture
def old_install(fresh_url: str) -> Iterator[str]:
    """A database at the baseline revision with a few realistic rows in every table."""
    from broadcaster.db import normalize_url
    from broadcaster.migrate import upgrade

    upgrade(fresh_url, BASELINE)
    engine = sa.create_engine(normalize_url(fresh_url))
    with engine.begin() as conn:
        _seed(conn)
    engine.dispose()
    yield fresh_url


# --- the data of an install that ran 0001 for a while -------------------------------------------------------


def _insert(conn: sa.Connection, table: str, **row: Any) -> int:
    """`INSERT INTO table (...) VALUES (...) RETURNING id` in plain SQL: the database assigns ids, as it did
    for the install (so its sequences stay right on PostgreSQL). Datetimes and JSON are bound as the columns'
    types; returns the new id (0 for tables keyed otherwise)."""
    from broadcaster.models.base import UTCDateTime

    names = ", ".join(f'"{c}"' for c in row)
    values = ", ".join(f":{c}" for c in row)
    returning = " RETURNING id" if "id" not in row and table not in _NO_ID else ""
    stmt = sa.text(f'INSERT INTO "{table}" ({names}) VALUES ({values}){returning}')
    binds = []
    for name, value in row.items():
        if isinstance(value, datetime):
            binds.append(sa.bindparam(name, type_=UTCDateTime()))
        elif isinstance(value, dict | list):
            binds.append(sa.bindparam(name, type_=sa.JSON()))
        elif isinstance(value, bytes):
            binds.append(sa.bindparam(name, type_=sa.LargeBinary()))
    result = conn.execute(stmt.bindparams(*binds), row)
    return int(result.scalar_one()) if returning else 0


_NO_ID = {
    "area_matches",
    "subscriber_areas",
    "subscriber_categories",
    "subscriber_services",
    "subscriber_tags",
    "import_chunks",
    "question_recipients",
    "response_tallies",
    "rate_buckets",
    "static_publish_state",
    "public_state",
}


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _seed(conn: sa.Connection) -> None:  # noqa: PLR0915  (one long, flat list of rows)
    """Categories, services, areas, subscribers with their choices, users and keys, integrations, two incidents
    with updates, broadcasts and deliveries, a question with answers, maintenance, audit entries..."""
    ins = _insert
    stamps = {"created_at": _at(-60 * 24 * 30), "updated_at": _at(-60 * 24 * 30)}
    water = ins(
        conn,
        "categories",
        slug="eau",
        name="Eau potable",
        description="Coupures et qualité de l'eau",
        contact={"phone": "+33140000000", "opening_hours": "24h/24"},
        channels={"critical": ["sms", "voice", "email", "banner"], "major": ["sms", "email", "banner"]},
        position=0,
        reach="either",
        escalation=WATER_ESCALATION,
        **stamps,
    )
    power = ins(
        conn,
        "categories",
        slug="strom",
        name="Strom",
        description="Stromausfälle",
        contact={"live_chat_url": "https://chat.example.de/", "opening_hours": "Mo–Fr 8–20 Uhr"},
        channels={"major": ["email", "banner"], "minor": ["banner"]},
        position=1,
        reach="either",
        **stamps,
    )
    ins(
        conn,
        "alert_rules",
        section="alert_rules",
        name="pump-station-down",
        position=0,
        spec={"name": "pump-station-down", "category": "eau", "severity": "major", "publish": "draft"},
    )
    ins(
        conn,
        "alert_rules",
        section="webhook_mappings",
        name="grafana",
        position=0,
        spec={"name": "grafana", "category": "strom", "title": "{{ labels.alertname }}"},
    )
    pumps = ins(
        conn,
        "services",
        slug="reseau-eau",
        name="Réseau d'eau",
        description="Distribution d'eau potable",
        group="Eau",
        position=0,
        state="degraded",
        public=True,
        state_changed_at=_at(0),
        **stamps,
    )
    portal = ins(
        conn,
        "services",
        slug="portal",
        name="Kundenportal",
        description="",
        group="Online",
        position=1,
        state="operational",
        public=True,
        state_changed_at=_at(-60 * 24 * 30),
        **stamps,
    )
    ring = [[[2.35, 48.85], [2.37, 48.85], [2.37, 48.87], [2.35, 48.87], [2.35, 48.85]]]
    district = ins(
        conn,
        "areas",
        slug="saint-eloi",
        name="Saint-Éloi",
        kind="district",
        description="Quartier Saint-Éloi",
        geometry={"type": "Polygon", "coordinates": ring},
        min_lon=2.35,
        min_lat=48.85,
        max_lon=2.37,
        max_lat=48.87,
        **stamps,
    )

    def subscriber(phone: str | None, email: str | None, name: str, locale: str, **extra: Any) -> int:
        fields = {
            "all_categories": True,
            "email_confirmed": email is not None,
            "email_opted_out": False,
            "sms_opted_out": False,
            "phone_confirmed": True,
            "test_group": False,
            "source": "api",
        } | extra
        return ins(conn, "subscribers", phone=phone, email=email, name=name, locale=locale, **fields, **stamps)

    zoe = subscriber("+33612345678", "zoe.muller@example.fr", "Zoë Müller", "fr", lat=48.86, lon=2.36)
    jose = subscriber("+4915112345678", "jose.alvarez@example.de", "José Álvarez", "de", all_categories=False)
    hanako = subscriber("+819012345678", None, "田中 花子", "ja", source="import", test_group=True)
    gone = subscriber("+33698765432", "parti@example.fr", "Ancien abonné", "fr", sms_opted_out=True)
    subscriber("+33611112222", None, "Pas encore confirmé", "fr", phone_confirmed=False, source="form")
    ins(conn, "subscriber_categories", subscriber_id=jose, category_id=water)
    ins(conn, "subscriber_categories", subscriber_id=jose, category_id=power)
    ins(conn, "subscriber_services", subscriber_id=jose, service_id=portal)
    ins(conn, "subscriber_tags", subscriber_id=zoe, tag="bâtiment-a")
    ins(conn, "subscriber_tags", subscriber_id=hanako, tag="staff")
    ins(conn, "subscriber_areas", subscriber_id=zoe, area_id=district)
    ins(conn, "area_matches", match_key=7301, subscriber_id=zoe)

    ins(
        conn,
        "users",
        email="it-admin@example.org",
        name="Ingrid Åström",
        password_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        roles=["admin"],
        active=True,
        created_at=_at(-60 * 24 * 30),
        last_login_at=_at(-5),
    )
    editor = ins(
        conn,
        "users",
        email="comms@example.org",
        name="Chloé Dubois",
        roles=["editor", "approver"],
        oidc_issuer="https://sso.example.org/",
        oidc_subject="7f3c2a",
        active=True,
        created_at=_at(-60 * 24 * 20),
    )
    ins(
        conn,
        "console_sessions",
        id_hash=hashlib.sha256(b"session").hexdigest(),
        user_id=editor,
        csrf_token="c" * 43,
        created_at=_at(-10),
        last_seen_at=_at(-1),
    )
    ops_key = ins(
        conn,
        "api_keys",
        name="monitoring",
        prefix="bk_3f9a1c",
        key_hash=hashlib.sha256(b"bk_3f9a1c.secret").hexdigest(),
        scopes=["alerts"],
        created_at=_at(-60 * 24 * 30),
        last_used_at=_at(-2),
    )
    ins(
        conn,
        "api_keys",
        name="Chloé's script",
        prefix="bk_77e0b2",
        key_hash=hashlib.sha256(b"bk_77e0b2.secret").hexdigest(),
        scopes=["read", "write"],
        created_at=_at(-60 * 24 * 10),
        revoked_at=_at(-60),
        owner_user_id=editor,
    )
    ins(
        conn,
        "idempotency_keys",
        api_key_id=ops_key,
        key="alert-42",
        request_hash="a" * 64,
        method="POST",
        path="/v1/alerts",
        status_code=202,
        response_body=b'{"status":"accepted"}',
        content_type="application/json",
        created_at=_at(-2),
    )
    grafana = ins(
        conn,
        "integrations",
        name="grafana",
        kind="grafana",
        auth="hmac",
        hmac_secret="s3cr3t-grafana-hmac",
        disabled=False,
        created_at=_at(-60 * 24 * 30),
        last_used_at=_at(-3),
    )
    ins(
        conn,
        "integrations",
        name="nagios",
        kind="generic",
        auth="token",
        token_hash=hashlib.sha256(b"nagios-token").hexdigest(),
        disabled=True,
        created_at=_at(-60 * 24 * 30),
    )

    active = ins(
        conn,
        "incidents",
        title=ACTIVE_TITLE,
        category_id=water,
        severity="major",
        status="identified",
        affected_services=["reseau-eau"],
        sites=["www"],
        public=True,
        severity_lowered_at={},
        started_at=_at(0),
        created_at=_at(0),
        updated_at=_at(20),
    )
    resolved = ins(
        conn,
        "incidents",
        title=RESOLVED_TITLE,
        category_id=power,
        severity="minor",
        status="resolved",
        affected_services=[],
        sites=[],
        public=True,
        severity_lowered_at={"major": (_at(-60 * 24 * 3)).isoformat()},
        started_at=_at(-60 * 24 * 3),
        resolved_at=_at(-60 * 24 * 2),
        created_at=_at(-60 * 24 * 3),
        updated_at=_at(-60 * 24 * 2),
    )
    ins(
        conn,
        "alert_groups",
        integration_id=grafana,
        key_hash="b" * 64,
        group_key='{alertname="PumpStationDown"}',
        rule="pump-station-down",
        incident_id=active,
        status="firing",
        content_hash="c" * 64,
        published_hash="c" * 64,
        last_payload={"status": "firing", "labels": {"alertname": "PumpStationDown", "site": "Saint-Éloi"}},
        last_public_at=_at(1),
        pending=False,
        changes=3,
        created_at=_at(0),
        updated_at=_at(1),
    )

    def update(incident: int, body: str, summary: str, **extra: Any) -> int:
        fields = {
            "kind": "normal",
            "state": "published",
            "locale": "fr",
            "translations": {},
            "links": [],
            "test": False,
            "created_by": "user:2",
        } | extra
        return ins(conn, "updates", incident_id=incident, body=body, summary=summary, **fields)

    first = update(
        active,
        "Une canalisation a cédé rue de l'Église. L'eau est coupée dans le quartier Saint-Éloi.",
        "Eau coupée à Saint-Éloi",
        status="investigating",
        translations={"de": {"body": "Ein Rohr ist geplatzt.", "summary": "Kein Wasser in Saint-Éloi"}},
        links=[{"title": "Points d'eau", "url": "https://example.fr/points-d-eau"}],
        channels=["sms", "email", "banner"],
        service_states={"reseau-eau": "degraded"},
        created_at=_at(1),
        published_at=_at(2),
        published_by="user:2",
        approved_by="user:1",
        approval_etag="d" * 16,
    )
    update(
        active,
        "Les équipes sont sur place ; retour de l'eau prévu vers 18 h.",
        "Retour prévu vers 18 h",
        status="identified",
        created_at=_at(18),
        published_at=_at(20),
        published_by="user:2",
    )
    update(active, "Brouillon : point à 17 h ⚠️", "Point à 17 h", state="draft", created_at=_at(25))
    update(
        resolved,
        "Die Stromversorgung ist wiederhergestellt.",
        "Strom wieder da",
        status="resolved",
        locale="de",
        created_at=_at(-60 * 24 * 2),
        published_at=_at(-60 * 24 * 2),
        published_by="key:monitoring",
    )

    broadcast = ins(
        conn,
        "broadcasts",
        update_id=first,
        kind="update",
        state="done",
        priority=1,
        channels=["sms", "email", "banner"],
        skipped={"voice": "no adapter configured"},
        test=False,
        total=3,
        created_at=_at(2),
        planned_at=_at(2.1),
        finished_at=_at(3),
    )
    ins(
        conn,
        "broadcasts",
        kind="system",
        message={"subject": "Confirmez votre abonnement", "text": "Répondez OUI pour confirmer."},
        state="done",
        priority=1,
        channels=["sms"],
        skipped={},
        test=False,
        total=1,
        created_at=_at(-60),
        planned_at=_at(-60),
        finished_at=_at(-59),
    )
    for sub, channel, address, status, provider_id in (
        (zoe, "sms", "+33612345678", "delivered", "SM0001"),
        (zoe, "email", "zoe.muller@example.fr", "opened", "sg-0001"),
        (gone, "sms", "+33698765432", "failed", None),
    ):
        delivery = ins(
            conn,
            "deliveries",
            broadcast_id=broadcast,
            channel=channel,
            address=address,
            subscriber_id=sub,
            locale="fr",
            status=status,
            priority=1,
            outcome_unknown=False,
            suspect_duplicate=False,
            attempts=1 if provider_id else 3,
            next_attempt_at=_at(2.1),
            provider="twilio-sms" if channel == "sms" else "sendgrid",
            provider_message_id=provider_id,
            error_code=None if provider_id else "21610",
            error_reason=None if provider_id else "Le destinataire a répondu STOP",
            created_at=_at(2.1),
            updated_at=_at(3),
            sent_at=_at(2.2) if provider_id else None,
        )
        if provider_id:
            ins(
                conn,
                "delivery_events",
                delivery_id=delivery,
                provider="twilio" if channel == "sms" else "sendgrid",
                provider_message_id=provider_id,
                provider_event_id=f"evt-{provider_id}",
                event=status,
                payload={"MessageStatus": status, "To": address},
                at=_at(2.5),
            )

    question = ins(
        conn,
        "questions",
        update_id=first,
        text="Avez-vous encore de l'eau au robinet ?",
        options=[{"key": "1", "label": "Oui"}, {"key": "2", "label": "Non"}],
        state="open",
        opened_at=_at(2),
        recipients=2,
        created_at=_at(1),
    )
    draft_update = update(active, "Question d'essai", "Essai", state="draft", created_at=_at(26))
    ins(
        conn,
        "questions",
        update_id=draft_update,
        text="Faut-il livrer des bouteilles ?",
        options=[{"key": "1", "label": "Oui"}],
        escalation={"steps": [], "respect_quiet_hours": False},
        state="draft",
        recipients=0,
        created_at=_at(26),
    )
    ins(
        conn,
        "question_recipients",
        question_id=question,
        subscriber_id=zoe,
        option_key="2",
        answered_at=_at(5),
        answer_channel="sms",
        escalation_step=0,
    )
    ins(
        conn,
        "question_recipients",
        question_id=question,
        subscriber_id=hanako,
        escalation_step=0,
        next_escalation_at=_at(32),
    )
    ins(
        conn,
        "responses",
        question_id=question,
        subscriber_id=zoe,
        channel="sms",
        address="+33612345678",
        body="2 – toujours rien",
        option_key="2",
        counted=True,
        provider_event_id="SMin0001",
        received_at=_at(5),
    )
    ins(conn, "response_tallies", question_id=question, option_key="2", channel="sms", shard=0, count=1)
    ins(
        conn,
        "escalation_actions",
        question_id=question,
        subscriber_id=hanako,
        step=1,
        kind="resend",
        channel="voice",
        at=_at(33),
    )

    window = ins(
        conn,
        "maintenance_windows",
        title="Maintenance du portail",
        message="Le portail client sera indisponible dimanche de 2 h à 4 h.",
        services=["portal"],
        category_id=power,
        starts_at=_at(60 * 24 * 5),
        ends_at=_at(60 * 24 * 5 + 120),
        state="scheduled",
        notify={"before_minutes": [1440, 60], "at_start": True, "at_end": True},
        revision=1,
        previous_states={},
        created_by="user:1",
        **stamps,
    )
    ins(
        conn,
        "maintenance_notices",
        maintenance_id=window,
        revision=1,
        kind="before",
        minutes_before=1440,
        notify=True,
        due_at=_at(60 * 24 * 4),
        state="pending",
        reason="",
        attempts=0,
        last_error="",
        created_at=_at(-60),
    )
    ins(
        conn,
        "service_state_changes",
        service_id=pumps,
        state="degraded",
        previous="operational",
        at=_at(2),
        incident_id=active,
        update_id=first,
        actor="user:2",
    )
    job = ins(
        conn,
        "import_jobs",
        state="done",
        actor="user:1",
        filename="abonnés-2026.csv",
        size_bytes=128,
        chunks=1,
        total_rows=2,
        rows_done=2,
        created=1,
        updated=0,
        rejected=1,
        attempts=1,
        created_at=_at(-120),
        started_at=_at(-119),
        finished_at=_at(-118),
        updated_at=_at(-118),
    )
    ins(conn, "import_chunks", job_id=job, seq=0, data="phone,name\n+819012345678,田中 花子\n".encode())
    ins(conn, "import_row_errors", job_id=job, row=3, field="phone", reason="« 12 » n'est pas un numéro")
    for action, target_type, target_id, detail, at in (
        ("incident.create", "incident", active, {"title": ACTIVE_TITLE}, _at(0)),
        ("update.publish", "update", first, {"channels": ["sms", "email", "banner"]}, _at(2)),
        ("key.revoke", "api_key", 2, {"name": "Chloé's script"}, _at(-60)),
    ):
        ins(
            conn,
            "audit_log",
            at=at,
            actor="user:2" if action != "key.revoke" else "user:1",
            action=action,
            target_type=target_type,
            target_id=str(target_id),
            detail=detail,
            before=None,
            after={"state": "done"} if action == "update.publish" else None,
        )
    ins(conn, "public_state", id=1, version=7, changed_at=_at(20))
    ins(conn, "rate_buckets", name="twilio-sms", tokens=42.5, updated_at=_at(3))
    ins(
        conn,
        "static_publish_state",
        target="s3://status-bucket/",
        published_version=7,
        published_at=_at(20.5),
        files=12,
        attempts=0,
    )


# --- what is there ------------------------------------------------------------------------------------------


def _norm(value: Any) -> Any:
    """A value as plain JSON, the same for what one driver returns before and after the upgrade."""
    if isinstance(value, memoryview | bytes):
        return bytes(value).hex()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return value


def _schema(conn: sa.Connection) -> dict[str, list[str]]:
    inspector = sa.inspect(conn)
    return {t: sorted(c["name"] for c in inspector.get_columns(t)) for t in inspector.get_table_names()}


def _contents(conn: sa.Connection, schema: dict[str, list[str]]) -> dict[str, tuple[int, str, list[Any]]]:
    """Per table of `schema`: (row count, sha256 of the rows' `schema` columns, the rows) in primary-key order."""
    inspector = sa.inspect(conn)
    out = {}
    for table, columns in schema.items():
        if table == "alembic_version":
            continue
        key = inspector.get_pk_constraint(table)["constrained_columns"]
        stmt = sa.select(*(sa.column(c) for c in columns)).select_from(sa.table(table))
        rows = [[_norm(v) for v in row] for row in conn.execute(stmt.order_by(*(sa.column(c) for c in key)))]
        digest = hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()
        out[table] = (len(rows), digest, rows)
    return out


def _assert_same(before: dict[str, tuple[int, str, list[Any]]], after: dict[str, tuple[int, str, list[Any]]]) -> None:
    assert {t: v[0] for t, v in after.items()} == {t: v[0] for t, v in before.items()}, "row counts changed"
    for table, (_, digest, rows) in before.items():
        if after[table][1] != digest:
            changed = [(old, new) for old, new in zip(rows, after[table][2], strict=True) if old != new]
            pytest.fail(f"{table}: values changed in the upgrade (before, after): {changed[:3]}")


def _engine(url: str) -> sa.Engine:
    from broadcaster.db import normalize_url

    return sa.create_engine(normalize_url(url))


# --- the tests ----------------------------------------------------------------------------------------------


def test_seeded_baseline_fills_every_table(old_install):
    """The seed is realistic enough to mean something: every 0001 table has rows."""
    engine = _engine(old_install)
    with engine.connect() as conn:
        contents = _contents(conn, _schema(conn))
    engine.dispose()
    empty = sorted(t for t, (count, _, _) in contents.items() if count == 0)
    assert empty == [], f"the seed leaves these 0001 tables empty: {empty}"


def test_upgrade_keeps_every_row_and_the_service_works(old_install, tmp_path, monkeypatch):
    from broadcaster.migrate import pending_diff, upgrade

    engine = _engine(old_install)
    with engine.connect() as conn:
        old_schema = _schema(conn)
        before = _contents(conn, old_schema)
    upgrade(old_install)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [_head()]
        _assert_same(before, _contents(conn, old_schema))
        _assert_new_columns(conn, old_schema)
        _assert_new_tables(conn, old_schema)
    engine.dispose()
    assert pending_diff(old_install) == []
    _service_works(old_install, tmp_path, monkeypatch)


def _head() -> str:
    from alembic.script import ScriptDirectory

    from broadcaster.migrate import alembic_config

    [head] = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    return head


def _assert_new_columns(conn: sa.Connection, old_schema: dict[str, list[str]]) -> None:
    """Old rows hold what NEW_COLUMNS says in every column added to a 0001 table."""
    new = _schema(conn)
    added = {(t, c) for t, cols in old_schema.items() for c in new[t] if c not in cols}
    assert added == set(NEW_COLUMNS), (
        "columns added to tables that existed at 0001 differ from NEW_COLUMNS in tests/core/test_upgrade.py "
        f"(say there what old rows hold): {sorted(added ^ set(NEW_COLUMNS))}"
    )
    for (table, column), expected in NEW_COLUMNS.items():
        wanted = [column, *(["state", "escalation"] if callable(expected) else [])]
        rows = conn.execute(sa.select(*(sa.column(c) for c in wanted)).select_from(sa.table(table))).mappings().all()
        assert rows, f"{table} has no rows to check {column} on"
        for row in rows:
            want = expected(row) if callable(expected) else expected
            got = _json(row[column]) if isinstance(want, dict) else row[column]
            assert got == want, f"{table}.{column} of an old row: {row[column]!r}, expected {want!r}"


def _assert_new_tables(conn: sa.Connection, old_schema: dict[str, list[str]]) -> None:
    new = set(_schema(conn)) - set(old_schema)
    assert new == set(NEW_TABLES), f"tables added since 0001 differ from NEW_TABLES: {sorted(new ^ set(NEW_TABLES))}"
    counts = {t: conn.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar() for t in NEW_TABLES}
    assert counts == NEW_TABLES
    document = _json(conn.execute(sa.text("SELECT document FROM routing_map_versions")).scalar_one())
    assert [c["slug"] for c in document["categories"]] == ["eau", "strom"]
    assert [r["name"] for r in document["alert_rules"]] == ["pump-station-down"]


def _service_works(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The upgraded install serves: status page, API, and a new update planned to its subscribers."""
    from fastapi.testclient import TestClient

    from broadcaster.app import create_app
    from broadcaster.db import session_scope
    from broadcaster.delivery.planner import plan_next
    from broadcaster.delivery.testing import MemoryAdapter
    from broadcaster.security import create_key

    for name, value in {
        "DATABASE_URL": url,
        "PUBLIC_URL": "http://testserver",
        "WORKER_IN_PROCESS": "false",
        "SEND_HOLD_SECONDS": "0",
        "MEMORY_ADAPTER_ENABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    _reset()
    MemoryAdapter.reset()
    try:
        with session_scope() as session:
            _, plaintext = create_key(session, "after-upgrade", ["admin"])
        admin = {"Authorization": f"Bearer {plaintext}"}
        with TestClient(create_app(run_worker=False)) as client:
            status = client.get("/status")
            assert status.status_code == 200 and ACTIVE_TITLE.replace("'", "&#39;") in status.text
            listed = client.get("/v1/incidents", headers=admin)
            assert listed.status_code == 200, listed.text
            titles = {i["title"]: i for i in listed.json()["items"]}
            assert {ACTIVE_TITLE, RESOLVED_TITLE} <= set(titles)
            incident = titles[ACTIVE_TITLE]
            assert (incident["status"], incident["category"]) == ("identified", "eau")
            body = {"body": "L'eau revient progressivement. Laissez couler 2 minutes.", "channels": ["memory"]}
            upd = client.post(f"/v1/incidents/{incident['id']}/updates", headers=admin, json=body)
            assert upd.status_code == 201, upd.text
            pub = client.post(f"/v1/updates/{upd.json()['id']}/publish", headers=admin, json=confirm(upd.json()["id"]))
            assert pub.status_code == 200, pub.text
            bid = pub.json()["broadcast_id"]
            with session_scope() as session:
                plan_next(session)
            report = client.get(f"/v1/broadcasts/{bid}", headers=admin).json()
            assert report["state"] == "sending" and report["total"] == len(TEXTABLE), report
            log = client.get(f"/v1/broadcasts/{bid}/deliveries", headers=admin).json()["items"]
            assert sorted(d["address"] for d in log) == sorted(TEXTABLE)
    finally:
        MemoryAdapter.reset()
        _reset()


def _reset() -> None:
    from broadcaster.channels.registry import adapter_classes
    from broadcaster.db import reset_engine
    from broadcaster.settings import get_settings
    from broadcaster.throttle import reset_limits

    get_settings.cache_clear()
    adapter_classes.cache_clear()
    reset_engine()
    reset_limits()


def test_every_revision_steps_down_and_up_without_losing_a_row(old_install):
    """Up one revision at a time, then down one at a time to 0001, then up to head: the 0001 data is the same
    at every step, 0001's schema comes back exactly, and head matches the models again."""
    from alembic import command
    from alembic.script import ScriptDirectory

    from broadcaster.migrate import alembic_config, pending_diff, upgrade

    cfg = alembic_config(old_install)
    chain = [s.revision for s in reversed(list(ScriptDirectory.from_config(cfg).walk_revisions()))]
    assert chain[0] == BASELINE
    engine = _engine(old_install)
    with engine.connect() as conn:
        old_schema = _schema(conn)
        before = _contents(conn, old_schema)

    def check(where: str) -> None:
        with engine.connect() as conn:
            try:
                _assert_same(before, _contents(conn, old_schema))
            except AssertionError as exc:
                raise AssertionError(f"at {where}: {exc}") from exc

    for revision in chain[1:]:
        upgrade(old_install, revision)
        check(f"upgrade to {revision}")
    for revision in reversed(chain[:-1]):
        command.downgrade(cfg, revision)
        check(f"downgrade to {revision}")
    with engine.connect() as conn:
        assert _schema(conn) == old_schema
    upgrade(old_install)
    check("upgrade to head again")
    engine.dispose()
    assert pending_diff(old_install) == []
