"""`broadcaster users create/list/set-password` and `keys create --owner`."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from tests.users.conftest import sign_in
from typer.testing import CliRunner

from broadcaster.cli import app as cli


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_first_admin_from_stdin_then_list_and_sign_in(runner, db_url, client) -> None:
    result = runner.invoke(
        cli,
        ["users", "create", "--email", "Root@Example.org", "--name", "Root", "--role", "admin", "--role", "editor"]
        + ["--password-stdin"],
        input="a long admin password\n",
    )
    assert result.exit_code == 0, result.output
    assert "created user 1 root@example.org roles=editor,admin" in result.stdout
    listed = runner.invoke(cli, ["users", "list"])
    assert listed.exit_code == 0
    assert listed.stdout.split("\t")[:4] == ["1", "root@example.org", "Root", "editor,admin"]
    assert "active\tpassword" in listed.stdout
    assert sign_in(client, "root@example.org", "a long admin password").status_code == 303
    assert client.get("/v1/users").status_code == 200

    from broadcaster.db import session_scope
    from broadcaster.models import AuditEntry, User

    with session_scope() as session:
        stored = session.scalars(select(User)).one().password_hash
        assert stored.startswith("$argon2id$") and "a long admin password" not in stored
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "user.create")).one()
        assert entry.actor.startswith("cli:") and "password" not in str(entry.detail)


def test_prompted_password_is_asked_twice(runner, db_url) -> None:
    result = runner.invoke(
        cli, ["users", "create", "--email", "a@example.org", "--role", "editor"], input="pass word 123\npass word 123\n"
    )
    assert result.exit_code == 0, result.output
    mismatch = runner.invoke(
        cli, ["users", "create", "--email", "b@example.org", "--role", "editor"], input="pass word 123\nother one\n"
    )
    assert mismatch.exit_code != 0


@pytest.mark.parametrize(
    ("args", "stdin", "hint"),
    [
        (["--email", "x@example.org", "--role", "boss"], "a long password 1\n", "--role"),
        (["--email", "not-an-email", "--role", "editor"], "a long password 1\n", "--email"),
        (["--email", "x@example.org", "--role", "editor"], "short\n", "password"),
    ],
)
def test_bad_input_names_the_option(runner, db_url, args, stdin, hint) -> None:
    result = runner.invoke(cli, ["users", "create", *args, "--password-stdin"], input=stdin)
    assert result.exit_code == 2
    assert hint in result.output


def test_duplicate_email_and_set_password(runner, db_url, client) -> None:
    args = ["users", "create", "--email", "a@example.org", "--role", "editor", "--password-stdin"]
    assert runner.invoke(cli, args, input="first password 1\n").exit_code == 0
    dup = runner.invoke(cli, [*args[:3], "A@EXAMPLE.ORG", *args[4:]], input="first password 1\n")
    assert dup.exit_code == 1 and "already exists" in dup.output
    assert sign_in(client, "a@example.org", "first password 1").status_code == 303
    changed = runner.invoke(
        cli, ["users", "set-password", "--email", "a@example.org", "--password-stdin"], input="second password 2\n"
    )
    assert changed.exit_code == 0, changed.output
    assert client.get("/v1/me").status_code == 401  # the new password ended her sessions
    assert sign_in(client, "a@example.org", "first password 1").status_code == 401
    assert sign_in(client, "a@example.org", "second password 2").status_code == 303
    missing = runner.invoke(
        cli, ["users", "set-password", "--email", "no@example.org", "--password-stdin"], input="second password 2\n"
    )
    assert missing.exit_code == 1


def test_keys_create_owner_acts_as_the_person(runner, db_url, client, admin) -> None:
    runner.invoke(cli, ["users", "create", "--email", "ops@example.org", "--role", "editor", "--sso-only"])
    made = runner.invoke(
        cli, ["keys", "create", "--scopes", "read", "--name", "ops-laptop", "--owner", "OPS@example.org"]
    )
    assert made.exit_code == 0, made.output
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {made.stdout.strip()}"}).json()
    assert me["actor"] == "user:1" and me["via"] == "api_key" and me["user"]["email"] == "ops@example.org"
    listed = {k["name"]: k["owner_user_id"] for k in client.get("/v1/keys", headers=admin).json()}
    assert listed["ops-laptop"] == 1
    unknown = runner.invoke(cli, ["keys", "create", "--scopes", "read", "--owner", "nobody@example.org"])
    assert unknown.exit_code == 2 and "--owner" in unknown.output
