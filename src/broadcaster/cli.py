"""The `broadcaster` command line (typer)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from broadcaster.settings import get_settings

app = typer.Typer(help="Broadcaster: multi-channel crisis broadcast service.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
routing_app = typer.Typer(help="Routing map (crisis plan) as YAML.", no_args_is_help=True)
users_app = typer.Typer(help="People who sign in to the console.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(routing_app, name="routing")
app.add_typer(users_app, name="users")

#: each command's door (broadcaster/doors.py), or why it is none; tests/core/test_doors.py checks every command
COMMAND_DOORS: dict[str, str] = {
    "serve": "none: runs the service",
    "worker": "none: runs a delivery worker (it sends what a door decided)",
    "fake-providers": "none: a local fake of the providers, for demos",
    "db upgrade": "none: applies migrations",
    "db check": "none: compares the models and the migrations",
    "keys create": "none: a key with the publish scope is a role grant: it waits APPROVER_GRANT_DELAY",
    "keys list": "none: only reads",
    "keys revoke": "none: revokes a key",
    "users create": "none: a new approver is a role grant: they wait APPROVER_GRANT_DELAY",
    "users list": "none: only reads",
    "users set-password": "none: an approver's password set by someone else is a role grant",
    "routing import": "routing.map",
    "routing export": "none: only reads",
    "alert": "alerts.api",
    "doctor": "none: only reads (its provider checks are harmless authenticated reads)",
    "backup": "none: only reads (copies the database to a file)",
    "restore": "none: an operator's recovery of the whole database from a backup (the service is stopped)",
}


def _print_version(value: bool) -> None:
    if value:
        from broadcaster import __version__

        typer.echo(f"broadcaster {__version__}")
        raise typer.Exit()


@app.callback()
def _check_configuration(
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", callback=_print_version, is_eager=True),
    ] = False,
) -> None:
    # A bad setting is a short message naming it (never the value: it may be a secret), not a traceback.
    from pydantic import ValidationError

    try:
        get_settings()
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()]
        typer.echo("Invalid configuration (environment or .env):\n" + "\n".join(lines), err=True)
        raise typer.Exit(2) from None


def _setup_logging() -> None:
    from broadcaster.logs import setup_logging

    setup_logging(get_settings())


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default: API_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: API_PORT).")] = None,
    workers: Annotated[int, typer.Option(help="API processes (PostgreSQL only for > 1).")] = 1,
    migrate: Annotated[bool, typer.Option(help="Apply migrations before starting.")] = True,
) -> None:
    """Start the API (and the in-process delivery worker) with docs at /docs."""
    import uvicorn

    from broadcaster import migrate as migrations
    from broadcaster.logs import uvicorn_log_config

    _setup_logging()
    settings = get_settings()
    if workers > 1 and settings.is_sqlite:
        raise typer.BadParameter("several API processes need PostgreSQL (set DATABASE_URL)", param_hint="--workers")
    if migrate:
        migrations.upgrade()
    plan = settings.routing_map_file
    if plan is not None and _import_map(
        plan, actor="serve:ROUTING_MAP_FILE", source="startup", admin=False, exit_on_refusal=False
    ):
        typer.echo(f"  Routing map loaded from {plan}")
    host = host or settings.api_host
    port = port or settings.api_port
    base = f"http://{host}:{port}"
    typer.echo(f"Broadcaster on {base}  (database: {_safe_url(settings.database_url)})")
    typer.echo(f"  API docs:    {base}/docs")
    typer.echo(f"  Status page: {base}/status    Banner: {base}/v1/banner.js")
    typer.echo(f"  Get an API key:  {_self_command()} keys create --name me --scopes admin")
    typer.echo(f"  Console:     {base}/console/  (first admin: {_self_command()} users create --email E --role admin)")
    if settings.worker_in_process:
        typer.echo(
            "  Delivery worker: in-process (set WORKER_IN_PROCESS=false and run `broadcaster worker` to scale out)"
        )
    uvicorn.run(
        "broadcaster.asgi:app",
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
        log_config=uvicorn_log_config(settings),
        access_log=False,
        proxy_headers=True,
    )


def _self_command() -> str:
    """How to call this CLI from the current directory (`.venv/bin/broadcaster` after `make run`)."""
    exe = Path(sys.argv[0])
    if exe.name != "broadcaster":
        return "broadcaster"
    if shutil.which("broadcaster") == str(exe.resolve()) or str(exe) == "broadcaster":
        return "broadcaster"
    try:
        return str(exe.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(exe)


def _safe_url(url: str) -> str:
    """Hide a password in a database URL."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:****@{host}" if ":" in creds else f"{scheme}://{user}@{host}"
    return url


@app.command()
def worker(
    concurrency: Annotated[int | None, typer.Option(help="Sends in flight (default: WORKER_CONCURRENCY).")] = None,
) -> None:
    """Run a delivery worker process (any number of them, on any number of machines, on PostgreSQL)."""
    from broadcaster.delivery.lifecycle import run_worker_process

    _setup_logging()
    run_worker_process(concurrency=concurrency)


@app.command("fake-providers")
def fake_providers(
    host: str = "127.0.0.1",
    port: int = 8025,
) -> None:
    """Run the local fake provider server (Twilio, SendGrid, X, Mastodon, Bluesky wire formats) for demos."""
    from broadcaster.fakes.server import serve as serve_fakes

    _setup_logging()
    serve_fakes(host=host, port=port)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations up to REVISION (default head)."""
    from broadcaster import migrate as migrations

    migrations.upgrade(revision=revision)
    typer.echo(f"database at {revision}: {_safe_url(get_settings().database_url)}")


@db_app.command("check")
def db_check() -> None:
    """Exit 1 when the models and the applied migrations disagree."""
    from broadcaster import migrate as migrations

    diff = migrations.pending_diff()
    if diff:
        typer.echo("models and migrations differ:\n" + "\n".join(map(str, diff)), err=True)
        raise typer.Exit(1)
    typer.echo("models and migrations agree")


@keys_app.command("create")
def keys_create(
    scopes: Annotated[str, typer.Option(help="Comma-separated: read,write,publish,alerts,admin")],
    name: Annotated[str, typer.Option(help="Who or what uses this key.")] = "default",
    owner: Annotated[
        str | None, typer.Option(help="Email of the person the key acts as (approvals count it as them).")
    ] = None,
) -> None:
    """Create an API key. It is printed once; only a hash is stored."""
    from broadcaster import audit
    from broadcaster import migrate as migrations
    from broadcaster.db import session_scope
    from broadcaster.security import create_key, parse_scopes

    try:
        scope_list = parse_scopes(scopes)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--scopes") from exc
    name = name.strip()
    if not name or len(name) > 120 or "\x00" in name:
        raise typer.BadParameter("give 1 to 120 characters (no NUL)", param_hint="--name")
    migrations.upgrade()
    with session_scope() as session:
        owner_id = None
        if owner is not None:
            from broadcaster.users.service import by_email

            person = by_email(session, owner)
            if person is None or not person.active:
                raise typer.BadParameter(f"no active user {owner.strip().lower()}", param_hint="--owner")
            owner_id = person.id
        row, plaintext = create_key(session, name, scope_list, owner_user_id=owner_id)
        from broadcaster.keys.router import key_out

        audit.record(
            session,
            _cli_actor(),
            "key.create",
            "api_key",
            row.id,
            after=key_out(row).model_dump(mode="json"),  # the masked key, never the secret or its hash
            name=name,
            scopes=scope_list,
            owner_user_id=owner_id,
        )
        from broadcaster.users import grants

        grant = grants.key_created(session, row, by=_cli_actor(), via="cli")
        wait = grants.approve_from(grant) if grant is not None else None
    typer.echo(plaintext)
    typer.echo(f"# key {row.id} '{name}' scopes={','.join(scope_list)} -- shown once, store it now", err=True)
    if grant is not None:
        typer.echo(f"# every admin is told of this key{_may_approve(wait)}", err=True)


def _read_password(from_stdin: bool) -> str:
    """The password from stdin (first line; for scripts and CI) or asked twice at the terminal."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    from broadcaster.errors import AppError
    from broadcaster.users.service import check_password

    try:
        check_password(password)
    except AppError as exc:
        raise typer.BadParameter(exc.detail, param_hint="password") from None
    return password


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Option(help="The person's email (their sign-in name).")],
    name: Annotated[str, typer.Option(help="Full name shown in the console and the audit log.")] = "",
    role: Annotated[list[str] | None, typer.Option(help="editor, approver or admin; repeat for several.")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    sso_only: Annotated[
        bool,
        typer.Option(
            "--sso-only", help="No password: signs in through SSO only (the first time needs OIDC_LINK_BY_EMAIL)."
        ),
    ] = False,
) -> None:
    """Create a person (the first admin: `users create --email you@example.org --role admin`)."""
    from broadcaster import audit
    from broadcaster import migrate as migrations
    from broadcaster.db import session_scope
    from broadcaster.errors import AppError
    from broadcaster.users import grants, service

    try:
        roles = service.parse_roles(role or [], field="--role")
    except AppError as exc:
        raise typer.BadParameter(exc.detail, param_hint="--role") from None
    if "@" not in email or len(email) > 254 or "\x00" in email:
        raise typer.BadParameter("give an email address", param_hint="--email")
    password = None if sso_only else _read_password(password_stdin)
    migrations.upgrade()
    try:
        with session_scope() as session:
            user = service.create_user(session, email, name, roles, password)
            audit.record(session, _cli_actor(), "user.create", "user", user.id, email=user.email, roles=roles)
            grant = grants.roles_granted(session, user, [], by=_cli_actor(), via="cli")
            wait = grants.approve_from(grant) if grant is not None else None
    except AppError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"created user {user.id} {user.email} roles={','.join(roles) or '-'}")
    if grant is not None:
        typer.echo(f"# every admin is told of this grant{_may_approve(wait)}", err=True)


@users_app.command("list")
def users_list() -> None:
    """List people: id, email, name, roles, state, sign-in methods."""
    from broadcaster import migrate as migrations
    from broadcaster.db import session_scope
    from broadcaster.users import service

    migrations.upgrade()
    with session_scope() as session:
        for u in service.list_users(session):
            methods = ",".join(m for m, on in (("password", u.password_hash), ("sso", u.oidc_subject)) if on) or "-"
            state = "active" if u.active else "deactivated"
            typer.echo(f"{u.id}\t{u.email}\t{u.name}\t{','.join(u.roles or []) or '-'}\t{state}\t{methods}")


@users_app.command("set-password")
def users_set_password(
    email: Annotated[str, typer.Option(help="The person's email.")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
) -> None:
    """Set a person's password (their console sessions end; an approver's is announced and delays approving)."""
    from broadcaster import audit
    from broadcaster import migrate as migrations
    from broadcaster.db import session_scope
    from broadcaster.users import grants, service

    password = _read_password(password_stdin)
    migrations.upgrade()
    with session_scope() as session:
        user = service.by_email(session, email)
        if user is None:
            typer.echo(f"error: no user {service.normalize_email(email)}", err=True)
            raise typer.Exit(1)
        service.set_password(session, user, password)
        audit.record(session, _cli_actor(), "user.set_password", "user", user.id)
        grant = grants.password_set(session, user, by=_cli_actor(), via="cli")
        wait = grants.approve_from(grant) if grant is not None else None
    typer.echo(f"password set for {user.email}")
    if grant is not None:
        typer.echo(f"# every admin is told of this new password{_may_approve(wait)}", err=True)


def _cli_actor() -> str:
    return f"cli:{os.environ.get('USER', 'unknown')}"


def _may_approve(when: datetime | None) -> str:
    """The tail of the CLI's note on a role grant: when the new approver may approve."""
    return f"; approving is possible from {when:%Y-%m-%d %H:%M:%S} UTC (APPROVER_GRANT_DELAY)" if when else ""


@keys_app.command("list")
def keys_list() -> None:
    """List keys (masked)."""
    from sqlalchemy import select

    from broadcaster import migrate as migrations
    from broadcaster.db import session_scope
    from broadcaster.models import ApiKey
    from broadcaster.security import mask_key

    migrations.upgrade()
    with session_scope() as session:
        for row in session.scalars(select(ApiKey).order_by(ApiKey.id)):
            state = "revoked" if row.revoked_at else "active"
            typer.echo(f"{row.id}\t{mask_key(row.prefix)}\t{row.name}\t{','.join(row.scopes)}\t{state}")


@keys_app.command("revoke")
def keys_revoke(key_id: int) -> None:
    """Revoke a key by id (audited as `key.revoke`, like `DELETE /v1/keys/{id}`)."""
    from broadcaster.db import session_scope
    from broadcaster.errors import NotFound
    from broadcaster.keys import service

    try:
        with session_scope() as session:
            service.revoke(session, key_id, _cli_actor())
    except NotFound as exc:
        typer.echo(f"no key {key_id}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"revoked key {key_id}")


@routing_app.command("import")
def routing_import(
    path: Path,
    proposer: Annotated[
        str | None,
        typer.Option(
            help="E-mail of the active admin who proposes a map that loosens safety. The proposal is theirs: they "
            "cannot approve it with their key or console session; a second person must."
        ),
    ] = None,
) -> None:
    """Replace the routing map with the YAML file PATH (the crisis plan in version control). A map that loosens
    safety needs --proposer: it is stored as that admin's proposal, which a second person must approve (nothing
    changes until then). Without --proposer such a map is refused: the server's shell names nobody, so nobody
    could be kept from approving it themselves."""
    from broadcaster import migrate as migrations

    migrations.upgrade()
    actor, admin = (_proposer(proposer), True) if proposer else (_cli_actor(), False)
    count = _import_map(path, actor=actor, source="cli", admin=admin)
    if count is not None:
        typer.echo(f"imported {count} categories from {path}")


def _proposer(email: str) -> str:
    """`user:<id>` of the active admin `email` (the CLI proposes in their name), else exit 1 saying why."""
    from broadcaster.db import session_scope
    from broadcaster.users.service import by_email

    with session_scope() as session:
        user = by_email(session, email)
        if user is None or not user.active or "admin" not in (user.roles or []):
            typer.echo(f"error: --proposer {email!r} is not an active admin account", err=True)
            raise typer.Exit(1)
        return f"user:{user.id}"


def _import_map(path: Path, *, actor: str, source: str, admin: bool, exit_on_refusal: bool = True) -> int | None:
    """Replace the routing map with a YAML file: the number of categories, or None when the map loosens safety
    and was stored as `actor`'s proposal (`admin`: an admin person proposes it; printed, with what the second
    person does). A loosening map without an admin proposer is refused: exit 1 saying how to propose it
    (`exit_on_refusal=False`: only reported, as at start-up, where the service keeps serving the stored map).
    Prints the problem and exits 1 on bad input."""
    from broadcaster import audit
    from broadcaster.db import session_scope
    from broadcaster.errors import AppError
    from broadcaster.publishing import gate
    from broadcaster.routing import service, versions

    try:
        routing_map = service.parse_map(path.read_bytes(), source=str(path))
        service.check_map(routing_map)
        with session_scope() as session:
            before = versions.stored_map(session)
            outcome = versions.submit(
                session,
                before,
                routing_map.model_dump(mode="json"),
                actor=actor,
                admin=admin,
                source=source,
                apply=lambda: service.replace_map(session, routing_map, actor=actor, check=False),
            )
            if not outcome.proposed:
                after = service.export_map(session).model_dump(mode="json")
                audit.record(
                    session,
                    actor,
                    "routing_map.replace",
                    "routing_map",
                    "-",
                    before=before,
                    after=after,
                    source=str(path),
                )
            version = outcome.version if outcome.proposed else None
            proposal = (version.number, versions.etag(version)) if version is not None else None
    except OSError as exc:
        typer.echo(f"error: cannot read {path}: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from exc
    except AppError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    if outcome.verdict.decision is gate.Decision.refused:
        typer.echo(f"error: {path} loosens safety and was not applied; nothing changed:", err=True)
        for reason in outcome.reasons:
            typer.echo(f"  - {reason}", err=True)
        typer.echo(
            "An admin proposes such a map: `broadcaster routing import FILE --proposer ADMIN_EMAIL`, or PUT "
            "/v1/routing-map with their key; a second person approves it.",
            err=True,
        )
        if exit_on_refusal:
            raise typer.Exit(1)
        return None
    if proposal is not None:
        number, tag = proposal
        typer.echo(f"{path} loosens safety, so it was stored as routing-map version {number}, a proposal: nothing")
        typer.echo("changed yet. A second person (an approver or admin, not you) must approve its diff first:")
        for reason in outcome.reasons:
            typer.echo(f"  - {reason}")
        typer.echo(
            f"Review: GET /v1/routing-map/versions/{number} (or the console's Routing map page); approve: "
            f"POST /v1/routing-map/versions/{number}/approve with If-Match: {tag}"
        )
        return None
    return len(routing_map.categories)


@routing_app.command("export")
def routing_export(
    path: Annotated[Path | None, typer.Argument(help="File to write (default: stdout).")] = None,
) -> None:
    """Write the routing map as YAML."""
    from broadcaster import migrate as migrations
    from broadcaster.db import session_scope
    from broadcaster.routing import service

    migrations.upgrade()
    with session_scope() as session:
        text = service.to_yaml(service.export_map(session))
    if path is None:
        sys.stdout.write(text)
    else:
        path.write_text(text, encoding="utf-8")


@app.command()
def alert(
    category: Annotated[str, typer.Option(help="Category slug from the routing map.")],
    message: Annotated[str, typer.Option(help="The alert text.")],
    severity: Annotated[str, typer.Option(help="info, minor, major or critical.")] = "major",
    url: Annotated[str, typer.Option(envvar="BROADCASTER_URL", help="Service URL.")] = "http://127.0.0.1:8000",
    key: Annotated[str, typer.Option(envvar="BROADCASTER_API_KEY", help="API key with the alerts scope.")] = "",
    idempotency_key: Annotated[str | None, typer.Option(help="Idempotency-Key (safe retries).")] = None,
) -> None:
    """Trigger an alert through the API (POST /v1/alerts), as an ops script would."""
    import urllib.error
    import urllib.request

    if not key:
        raise typer.BadParameter("an API key is required (--key or BROADCASTER_API_KEY)", param_hint="--key")
    if not url.startswith(("http://", "https://")):
        raise typer.BadParameter("the service URL must start with http:// or https://", param_hint="--url")
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    body = json.dumps({"category": category, "message": message, "severity": severity}).encode()
    endpoint = url.rstrip("/") + "/v1/alerts"
    request = urllib.request.Request(endpoint, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 (scheme checked above)
            status, payload = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    except (urllib.error.URLError, TimeoutError) as exc:
        typer.echo(f"error: cannot reach {url}: {getattr(exc, 'reason', exc)}", err=True)
        raise typer.Exit(1) from exc
    try:
        typer.echo(json.dumps(json.loads(payload), indent=2, ensure_ascii=False))
    except ValueError:
        typer.echo(payload.decode("utf-8", "replace"))
    if status == 202:  # the one gate: a high-impact alert waits for a person (docs/doors.md)
        typer.echo(
            "Not sent yet: this alert reaches APPROVAL_SEVERITY or the audience threshold, so a second person must "
            "approve it (console Approvals page, or POST /v1/updates/{id}/approve).",
            err=True,
        )
    if status >= 400:
        raise typer.Exit(1)


@app.command()
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object: the findings and the exit code.")] = False,
) -> None:
    """Check this deployment (settings, provider credentials, database, worker, clock, disk, static target)
    and say what to fix, one line per check. Exit code 1 when any check FAILs."""
    from broadcaster import doctor as checks

    findings = checks.run_checks(get_settings())
    code = checks.exit_code(findings)
    if as_json:
        typer.echo(json.dumps({"ok": code == 0, "findings": [f.as_dict() for f in findings]}, indent=2))
    else:
        for finding in findings:
            typer.echo(checks.format_line(finding))
        failed = sum(f.status is checks.Status.fail for f in findings)
        typer.echo("Nothing to fix." if code == 0 else f"{failed} problem(s) to fix (FAIL lines above).")
    raise typer.Exit(code)


ForceOption = Annotated[bool, typer.Option("--force", help="Replace an existing file.")]


@app.command()
def backup(path: Path, force: ForceOption = False) -> None:
    """Back up the SQLite database to PATH while the service runs (sqlite3's online backup: a consistent
    copy). For PostgreSQL it prints the pg_dump command to use instead."""
    from broadcaster import backup as backups
    from broadcaster.doctor import sqlite_path

    url = get_settings().database_url
    database = sqlite_path(url)
    if database is None:
        _postgres_instead(url, str(path))
    try:
        snap = backups.backup_sqlite(database, path, force=force)
    except backups.BackupError as exc:
        typer.echo(f"Not backed up: {exc}", err=True)
        raise typer.Exit(1) from None
    total = sum(n for t, n in snap.rows.items() if t != "alembic_version")
    typer.echo(f"Backed up {database} to {path} (migration {snap.revision}, {total} rows, checked).")


@app.command()
def restore(path: Path, force: ForceOption = False) -> None:
    """Restore the SQLite database (DATABASE_URL) from the backup file PATH, after checking it is a Broadcaster
    database at a known migration. Stop the service first; an existing database is replaced only with --force.
    For PostgreSQL it prints the pg_restore command to use instead."""
    from broadcaster import backup as backups
    from broadcaster.doctor import sqlite_path

    url = get_settings().database_url
    database = sqlite_path(url)
    if database is None:
        _postgres_instead(url, str(path))
    try:
        snap = backups.restore_sqlite(path, database, force=force)
    except backups.BackupError as exc:
        typer.echo(f"Not restored: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Restored {database} from {path} (migration {snap.revision}).")
    if not backups.is_latest(snap):
        typer.echo("The backup is from an older version: run `broadcaster db upgrade` before starting the service.")


def _postgres_instead(url: str, path: str) -> NoReturn:
    """PostgreSQL is backed up with its own tools: print the commands, exit 2 (this command did nothing)."""
    from broadcaster.backup import postgres_commands

    dump, restore_cmd = postgres_commands(url, path)
    typer.echo(
        "This database is PostgreSQL: back it up and restore it with PostgreSQL's own tools "
        "(give the password as PGPASSWORD or in ~/.pgpass; see docs/operations.md):\n"
        f"  back up:  {dump}\n"
        f"  restore:  {restore_cmd}   (stop the service first)"
    )
    raise typer.Exit(2)


def main() -> None:
    app()
