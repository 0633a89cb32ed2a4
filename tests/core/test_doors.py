"""The door inventory (issue 19): every route that changes state, every runner beside the worker and every CLI
command names its door (broadcaster/doors.py) or says why it is none, so a new way to send to people or to change
what the public sees cannot appear without a decision of the gate."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.routes import app_routes

from broadcaster.doors import DOORS, EXTENSION

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def _declared(value: object) -> str | None:
    """A door's name, or None for a valid `none: <reason>` declaration; AssertionError for anything else."""
    assert isinstance(value, str), f"no {EXTENSION} declaration"
    if value.startswith("none: "):
        assert len(value) > len("none: ") + 8, f"say why it is not a door: {value!r}"
        return None
    assert value in DOORS, f"unknown door {value!r}"
    return value


def test_every_state_changing_route_names_its_door():
    from broadcaster.app import create_app

    app = create_app(run_worker=False)
    seen: dict[str, list[str]] = {}
    problems = []
    for method, path, ctx in app_routes(app):
        if method not in UNSAFE:
            continue
        extra = getattr(ctx, "openapi_extra", None) or {}
        try:
            name = _declared(extra.get(EXTENSION))
        except AssertionError as exc:
            problems.append(f"{method} {path}: {exc}")
            continue
        if name:
            seen.setdefault(name, []).append(f"{method} {path}")
    assert problems == []
    # the doors of people's actions, each reachable through the API
    assert set(seen) >= {
        "update.publish",
        "update.approve",
        "alerts.api",
        "alerts.rule",
        "maintenance.notice",
        "question.close",
        "incident.edit",
        "service.state",
        "routing.map",
        "area.edit",
    }


def test_safe_methods_change_nothing_a_door_guards():
    """A GET or HEAD route never declares a door (a door behind GET would skip CSRF checks and caches alike)."""
    from broadcaster.app import create_app

    app = create_app(run_worker=False)
    declared = [
        f"{method} {path}"
        for method, path, ctx in app_routes(app)
        if method not in UNSAFE and (getattr(ctx, "openapi_extra", None) or {}).get(EXTENSION)
    ]
    assert declared == []


def test_every_runner_beside_the_worker_names_its_door():
    from broadcaster import hooks
    from broadcaster.settings import Settings

    settings = Settings(static_target="file:///tmp/broadcaster-door-check")
    runners = [r for make in hooks.runners.functions() if (r := make(settings)) is not None]
    names = {type(r).__name__: _declared(type(r).door) for r in runners}
    assert {
        "MaintenanceRunner": "maintenance.notice",
        "EscalationRunner": "question.escalation",
        "AlertFlushRunner": "alerts.rule",
        "StaticPublisher": "static.publish",
    }.items() <= names.items()
    assert len(names) == len(runners)  # one runner of each kind


def _commands(group: Any, prefix: str = "") -> Iterator[str]:
    import typer

    command = typer.main.get_command(group) if not hasattr(group, "commands") else group
    for name, sub in sorted(command.commands.items()):
        path = f"{prefix}{name}"
        if hasattr(sub, "commands"):
            yield from _commands(sub, path + " ")
        else:
            yield path


def test_every_cli_command_names_its_door():
    from broadcaster.cli import COMMAND_DOORS, app

    commands = set(_commands(app))
    assert commands == set(COMMAND_DOORS), "cli.COMMAND_DOORS must list exactly the CLI's commands"
    for name in sorted(commands):
        _declared(COMMAND_DOORS[name])
    assert COMMAND_DOORS["routing import"] == "routing.map" and COMMAND_DOORS["alert"] == "alerts.api"


@pytest.mark.parametrize("name", sorted(DOORS))
def test_every_door_is_described(name):
    door = DOORS[name]
    assert door.name == name and len(door.what) > 20 and len(door.rule) > 20


def test_the_doors_page_shows_the_door_table():
    """docs/doors.md's table is the door table (regenerate it with scripts/gen_doors_doc.py)."""
    from pathlib import Path

    from scripts.gen_doors_doc import END, START, table

    page = (Path(__file__).resolve().parents[2] / "docs" / "doors.md").read_text()
    assert page.split(START)[1].split(END)[0].strip() == table()
