"""`broadcaster doctor`: checks a deployment and says, in plain words, what to fix.

Each check returns one `Finding` (OK, WARN or FAIL, and what to do). `run_checks` runs them all; a check that
crashes is itself a FAIL naming the error, never a traceback. The CLI (cli.py) prints one line per finding and
exits 1 when any FAILs. See docs/operations.md ("Doctor").
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import Engine, func, select, text

from broadcaster.db import make_engine, normalize_url
from broadcaster.settings import Settings

#: hosts that mean "not a production deployment" (a developer's machine, a test)
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "testserver"}
#: shortest SECRET_KEY accepted (a `secrets.token_urlsafe(32)` is 43 characters)
MIN_SECRET_LENGTH = 32
#: values people paste from examples; never a real secret
PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "dev", "development", "test", "password", "xxx"}
#: a message due this long ago and not picked up means no worker is running
WORKER_STALL = timedelta(minutes=2)
#: clock skew from which the doctor warns, and fails (leases and send holds are computed from host clocks)
SKEW_WARN_SECONDS = 2.0
SKEW_FAIL_SECONDS = 30.0
#: free disk space under the SQLite file below which the doctor warns, and fails
DISK_WARN_BYTES = 1 << 30
DISK_FAIL_BYTES = 100 << 20

#: each provider's credential settings: all or none should be set (an adapter is silently off otherwise)
PROVIDER_SETTINGS: dict[str, tuple[str, ...]] = {
    "Twilio": ("twilio_account_sid", "twilio_auth_token"),
    "SendGrid": ("sendgrid_api_key", "sendgrid_from_email"),
    "X": ("x_consumer_key", "x_consumer_secret", "x_access_token", "x_access_token_secret"),
    "Mastodon": ("mastodon_base_url", "mastodon_access_token"),
    "Bluesky": ("bluesky_handle", "bluesky_app_password"),
}
#: which provider an adapter name belongs to (for the "what to fix" hint)
ADAPTER_PROVIDER = {
    "twilio-sms": "Twilio",
    "twilio-voice": "Twilio",
    "sendgrid": "SendGrid",
    "x": "X",
    "mastodon": "Mastodon",
    "bluesky": "Bluesky",
}


class Status(StrEnum):
    """How a check went: OK, WARN (works, but fix it soon) or FAIL (broken, or unsafe)."""

    ok = "OK"
    warn = "WARN"
    fail = "FAIL"


@dataclass(frozen=True)
class Finding:
    """One check's result: `check` names it, `message` says what was found and what to do."""

    check: str
    status: Status
    message: str

    def as_dict(self) -> dict[str, str]:
        """JSON-ready form (`broadcaster doctor --json`)."""
        return {**asdict(self), "status": self.status.value}


def is_production(settings: Settings) -> bool:
    """PUBLIC_URL points somewhere other than this machine."""
    host = (urlsplit(settings.public_url).hostname or "").lower()
    return host not in LOCAL_HOSTS


def _env_name(field: str) -> str:
    return field.upper()


# --- settings ---------------------------------------------------------------------------------------------
def check_public_url(settings: Settings) -> Finding:
    """PUBLIC_URL must be https outside a developer's machine (links, callbacks and cookies depend on it)."""
    parts = urlsplit(settings.public_url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return Finding("PUBLIC_URL", Status.fail, "PUBLIC_URL is not a web address: set it to https://your-host")
    if not is_production(settings):
        return Finding("PUBLIC_URL", Status.ok, f"{settings.public_url} (this machine: fine for trying it out)")
    if parts.scheme != "https":
        return Finding(
            "PUBLIC_URL",
            Status.fail,
            f"{settings.public_url} is plain http: set PUBLIC_URL to https://{parts.netloc} and serve it over "
            "TLS (residents' links, provider callbacks and console cookies need it)",
        )
    return Finding("PUBLIC_URL", Status.ok, settings.public_url)


def check_secret_key(settings: Settings) -> Finding:
    """SECRET_KEY set, long, and not a placeholder (it signs unsubscribe links and console sessions)."""
    key = settings.secret_key.get_secret_value() if settings.secret_key is not None else ""
    fix = 'set SECRET_KEY to a long random value (python -c "import secrets; print(secrets.token_urlsafe(32))")'
    if not key:
        status = Status.warn if is_production(settings) else Status.ok
        where = "a key generated in var/secret_key is used"
        if status is Status.ok:
            return Finding("SECRET_KEY", status, f"not set: {where} (fine on one machine)")
        return Finding("SECRET_KEY", status, f"not set: {where}, which other hosts do not share: {fix}")
    if key.strip().lower() in PLACEHOLDER_SECRETS or len(set(key)) < 8:
        return Finding("SECRET_KEY", Status.fail, f"SECRET_KEY is a placeholder anyone could guess: {fix}")
    if len(key) < MIN_SECRET_LENGTH:
        return Finding(
            "SECRET_KEY", Status.fail, f"SECRET_KEY is {len(key)} characters, fewer than {MIN_SECRET_LENGTH}: {fix}"
        )
    return Finding("SECRET_KEY", Status.ok, f"set ({len(key)} characters)")


def check_approval(settings: Settings) -> Finding:
    """Approval settings: a second person approves serious updates in production."""
    if settings.approval_severity == "none":
        status = Status.fail if is_production(settings) else Status.warn
        return Finding(
            "approval",
            status,
            "APPROVAL_SEVERITY is none: any editor can send to every resident alone; set it to critical (or major)",
        )
    if settings.approval_severity in {"info", "minor"}:
        note = f"APPROVAL_SEVERITY={settings.approval_severity}: most updates will wait for a second person"
        return Finding("approval", Status.warn, note + " (critical or major is usual)")
    if settings.memory_adapter_enabled and is_production(settings):
        return Finding("approval", Status.fail, "MEMORY_ADAPTER_ENABLED is on: test channels are offered; turn it off")
    if settings.approver_grant_delay <= timedelta(0) and is_production(settings):
        return Finding(
            "approval",
            Status.warn,
            "APPROVER_GRANT_DELAY is 0: a new approver may approve at once; 1 hour (PT1H) is the default",
        )
    return Finding("approval", Status.ok, f"updates of {settings.approval_severity} incidents need a second person")


# --- providers --------------------------------------------------------------------------------------------
def check_provider_settings(settings: Settings) -> list[Finding]:
    """A provider with some but not all of its credentials set is silently off: say which setting is missing."""
    out = []
    for provider, fields in PROVIDER_SETTINGS.items():
        present = [f for f in fields if getattr(settings, f)]
        if present and len(present) < len(fields):
            missing = ", ".join(_env_name(f) for f in fields if f not in present)
            out.append(Finding(provider, Status.fail, f"{provider} is only partly set up (it is off): set {missing}"))
    return out


async def _check_adapters(settings: Settings) -> list[Finding]:
    from broadcaster.channels.registry import configured_adapters

    out = []
    for adapter in configured_adapters(settings):
        try:
            result = await adapter.check()
        except Exception as exc:  # an adapter's check should not raise; say so rather than crash
            result_ok, detail = False, f"{type(exc).__name__}: {exc}"
        else:
            result_ok, detail = result.ok, result.detail
        finally:
            await adapter.aclose()
        provider = ADAPTER_PROVIDER.get(adapter.name)
        if result_ok:
            out.append(Finding(adapter.name, Status.ok, detail))
            continue
        fix = ""
        if provider is not None:
            fix = f": check {', '.join(_env_name(f) for f in PROVIDER_SETTINGS[provider])} with {provider}"
        out.append(Finding(adapter.name, Status.fail, f"{provider or adapter.name} refused the check ({detail}){fix}"))
    return out


def check_providers(settings: Settings) -> list[Finding]:
    """Each configured adapter's harmless authenticated call (e.g. Twilio fetches the account, SendGrid
    GET /v3/scopes) through its SDK; a refusal is a FAIL naming the provider."""
    findings = check_provider_settings(settings)
    findings += asyncio.run(_check_adapters(settings))
    if not findings:
        findings.append(Finding("channels", Status.warn, "no channel is configured: nothing can be sent"))
    return findings


# --- database ---------------------------------------------------------------------------------------------
def check_database(engine: Engine) -> Finding:
    """The database answers and its schema is at the latest migration (alembic heads vs current)."""
    from alembic.script import ScriptDirectory

    from broadcaster.migrate import alembic_config

    heads = set(ScriptDirectory.from_config(alembic_config(engine.url.render_as_string(False))).get_heads())
    try:
        with engine.connect() as conn:
            current = set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    except Exception as exc:
        name = type(exc).__name__
        return Finding(
            "database",
            Status.fail,
            f"cannot read the database ({name}): check DATABASE_URL, then run `broadcaster db upgrade`",
        )
    if current != heads:
        return Finding(
            "database",
            Status.fail,
            f"the database is at migration {', '.join(sorted(current)) or 'none'}, the code needs "
            f"{', '.join(sorted(heads))}: run `broadcaster db upgrade` (back it up first: `broadcaster backup`)",
        )
    return Finding("database", Status.ok, f"reachable, at the latest migration ({', '.join(sorted(heads))})")


def check_worker(engine: Engine, now: datetime | None = None) -> Finding:
    """A worker is running: workers leave no trace while idle, so this looks for messages that are due but
    untouched (never claimed, or held under a lease that ran out and was not taken back) for WORKER_STALL."""
    from broadcaster.models.delivery import Delivery

    now = now or datetime.now(UTC)
    cutoff = now - WORKER_STALL
    with engine.connect() as conn:
        waiting = conn.execute(
            select(func.count(), func.min(Delivery.next_attempt_at)).where(
                Delivery.status == "pending", Delivery.next_attempt_at < cutoff
            )
        ).one()
        stale = conn.execute(
            select(func.count()).where(Delivery.status == "sending", Delivery.lease_expires_at < cutoff)
        ).scalar_one()
        last = conn.execute(select(func.max(Delivery.sent_at))).scalar_one()
    fix = "start `broadcaster worker` (or run `broadcaster serve` with WORKER_IN_PROCESS=true) and check its log"
    if waiting[0] or stale:
        count = int(waiting[0]) + int(stale)
        return Finding(
            "worker",
            Status.fail,
            f"{count} message(s) have waited more than {int(WORKER_STALL.total_seconds() // 60)} minutes and no "
            f"worker picked them up: {fix}",
        )
    if last is None:
        return Finding("worker", Status.ok, "nothing is waiting to be sent (nothing sent yet)")
    return Finding("worker", Status.ok, f"nothing is waiting to be sent; last message sent {_ago(now, last)}")


def _ago(now: datetime, then: datetime | str) -> str:
    if isinstance(then, str):  # SQLite aggregates return the stored text
        then = datetime.fromisoformat(then)
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    minutes = int((now - then).total_seconds() // 60)
    return f"{minutes} minute(s) ago" if minutes < 120 else f"{minutes // 60} hour(s) ago"


def database_now(engine: Engine) -> datetime:
    """The database server's clock (UTC)."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            raw = conn.execute(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).scalar_one()
            return datetime.fromisoformat(str(raw)).replace(tzinfo=UTC)
        value = conn.execute(text("SELECT now()")).scalar_one()
        return value if value.tzinfo else value.replace(tzinfo=UTC)


def check_clock(engine: Engine, host_now: Callable[[], datetime] | None = None) -> Finding:
    """This host's clock against the database server's (leases, send holds and schedules mix both)."""
    clock = host_now or (lambda: datetime.now(UTC))
    before = clock()
    db_now = database_now(engine)
    after = clock()
    skew = abs((db_now - (before + (after - before) / 2)).total_seconds())
    fix = "synchronise the clocks (NTP: chrony or systemd-timesyncd) on this host and the database server"
    if skew >= SKEW_FAIL_SECONDS:
        return Finding("clock", Status.fail, f"this host's clock is {skew:.0f} s off the database's: {fix}")
    if skew >= SKEW_WARN_SECONDS:
        return Finding("clock", Status.warn, f"this host's clock is {skew:.1f} s off the database's: {fix}")
    return Finding("clock", Status.ok, f"within {SKEW_WARN_SECONDS:.0f} s of the database's clock")


def sqlite_path(database_url: str) -> Path | None:
    """The SQLite file of `database_url`, or None for another database (or an in-memory one)."""
    url = normalize_url(database_url)
    if not url.startswith("sqlite"):
        return None
    path = url.split("///", 1)[-1]
    return None if not path or path == ":memory:" else Path(path)


def check_disk(settings: Settings, warn_bytes: int = DISK_WARN_BYTES, fail_bytes: int = DISK_FAIL_BYTES) -> Finding:
    """Free space beside the SQLite database file (it grows with every delivery)."""
    path = sqlite_path(settings.database_url)
    if path is None:
        return Finding("disk", Status.ok, "not SQLite: watch the database server's disk instead")
    folder = path.parent if path.parent.exists() else Path.cwd()
    free = shutil.disk_usage(folder).free
    gib = free / (1 << 30)
    if free < fail_bytes:
        return Finding("disk", Status.fail, f"only {gib:.2f} GiB free beside {path}: free space now")
    if free < warn_bytes:
        return Finding("disk", Status.warn, f"{gib:.2f} GiB free beside {path}: free space or move the database")
    return Finding("disk", Status.ok, f"{gib:.1f} GiB free beside {path}")


# --- static publishing ------------------------------------------------------------------------------------
def check_static_target(settings: Settings) -> Finding | None:
    """The static publishing target (STATIC_TARGET) takes a file; None when static publishing is off."""
    raw = settings.static_target.strip()
    if not raw:
        return None
    if raw.startswith("s3://"):
        from broadcaster.staticsite.targets import s3_client

        bucket = raw[5:].partition("/")[0]
        try:
            s3_client(settings).head_bucket(Bucket=bucket)
        except Exception as exc:
            return Finding(
                "static",
                Status.fail,
                f"cannot reach bucket {bucket} ({type(exc).__name__}): check STATIC_S3_* settings and its permissions",
            )
        return Finding("static", Status.ok, f"bucket {bucket} answers")
    root = Path(raw)
    probe = root / f".broadcaster-doctor-{secrets.token_hex(4)}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        return Finding(
            "static",
            Status.fail,
            f"cannot write to {root} ({exc.strerror or type(exc).__name__}): give the service's user write "
            "permission there, or change STATIC_TARGET",
        )
    return Finding("static", Status.ok, f"{root} is writable")


# --- all together -----------------------------------------------------------------------------------------
def run_checks(settings: Settings) -> list[Finding]:
    """Every check, in the order a person would fix things; a check that crashes becomes a FAIL."""
    findings: list[Finding] = []

    def guard(name: str, fn: Callable[[], Finding | list[Finding] | None]) -> None:
        _guard(findings, name, fn)

    guard("PUBLIC_URL", lambda: check_public_url(settings))
    guard("SECRET_KEY", lambda: check_secret_key(settings))
    guard("approval", lambda: check_approval(settings))
    db_file = sqlite_path(settings.database_url)
    if db_file is not None and not db_file.exists():
        fix = "check DATABASE_URL (and the working directory), or create it with `broadcaster db upgrade`"
        findings.append(Finding("database", Status.fail, f"no database file at {db_file}: {fix}"))
        return findings + _rest(settings)
    engine = make_engine(settings.database_url)
    try:
        guard("database", lambda: check_database(engine))
        if findings[-1].status is not Status.fail:
            guard("worker", lambda: check_worker(engine))
            guard("clock", lambda: check_clock(engine))
    finally:
        engine.dispose()
    return findings + _rest(settings)


def _rest(settings: Settings) -> list[Finding]:
    """The checks that need no database."""
    findings: list[Finding] = []
    for name, fn in (
        ("disk", lambda: check_disk(settings)),
        ("static", lambda: check_static_target(settings)),
        ("channels", lambda: check_providers(settings)),
    ):
        _guard(findings, name, fn)
    return findings


def _guard(findings: list[Finding], name: str, fn: Callable[[], Finding | list[Finding] | None]) -> None:
    """Run one check into `findings`; a crash is a FAIL naming the error."""
    try:
        result = fn()
    except Exception as exc:
        findings.append(Finding(name, Status.fail, f"the check itself failed: {type(exc).__name__}: {exc}"))
        return
    if isinstance(result, Finding):
        findings.append(result)
    elif result:
        findings.extend(result)


def exit_code(findings: list[Finding]) -> int:
    """0 when nothing FAILs, 1 otherwise."""
    return 1 if any(f.status is Status.fail for f in findings) else 0


def format_line(finding: Finding) -> str:
    """`FAIL  worker: 3 message(s) ...`: one line per check."""
    return f"{finding.status.value:<4}  {finding.check}: {finding.message}"
