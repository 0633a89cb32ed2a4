"""The architecture of src/broadcaster holds (docs/architecture.md): the import-linter contracts pass and catch a
back-edge, no module imports another module's private name, and every feature's hooks module is wired."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
PACKAGE = SRC / "broadcaster"


def lint_imports(src: Path, config: Path = ROOT / ".importlinter") -> subprocess.CompletedProcess[str]:
    """`lint-imports` over the package found in `src` (its own process, so the package is imported from there)."""
    lint = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(lint), "--no-cache", str(config)],
        cwd=src,
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_contracts_are_kept():
    result = lint_imports(SRC)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "back_edge", "contract"),
    [
        # the engine learning about a feature by an import instead of a hook
        ("delivery/planner.py", "import broadcaster.responses.service", "Layers"),
        # the foundation importing a feature
        ("settings.py", "import broadcaster.routing.schemas", "Layers"),
        # two sibling features that must not know each other
        ("alerts/router.py", "import broadcaster.maintenance.service", "Layers"),
        # a circle inside one package
        ("rendering/templates.py", "import broadcaster.rendering.compose", "No import cycles"),
    ],
)
def test_a_back_edge_breaks_the_contracts(tmp_path, module, back_edge, contract):
    """The contracts are not vacuous: one added import of the wrong direction fails them."""
    copy = tmp_path / "src"
    shutil.copytree(PACKAGE, copy / "broadcaster", ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / "broadcaster" / module
    target.write_text(target.read_text() + f"\n{back_edge}  # noqa\n")
    result = lint_imports(copy)
    assert result.returncode != 0, result.stdout
    assert f"{contract}" in result.stdout.split("Broken contracts")[-1]


def test_every_module_has_a_layer():
    """A top-level module or package missing from the layers contract would be free to import anything."""
    import configparser

    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    layered = {
        name.strip()
        for line in config["importlinter:contract:layers"]["layers"].split("\n")
        for name in line.replace("|", ":").split(":")
        if name.strip()
    }
    present = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    present |= {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert present - layered == set()
    assert layered - present == set()


def _private_imports(path: Path) -> list[str]:
    """`from broadcaster.x import _name` where `_name` is private to another module."""
    module = ".".join(path.relative_to(SRC).with_suffix("").parts)
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("broadcaster"):
            for alias in node.names:
                private = alias.name.startswith("_") and not alias.name.startswith("__")
                if private and node.module != module:
                    found.append(f"{module}:{node.lineno} imports {node.module}.{alias.name}")
    return found


def test_no_module_imports_another_modules_private_name():
    found = [hit for path in sorted(PACKAGE.rglob("*.py")) for hit in _private_imports(path)]
    assert found == []


def test_every_hooks_module_is_an_entry_point():
    """A feature's `hooks.py` that is not listed in pyproject's `broadcaster.hooks` group would never load."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["broadcaster.hooks"]
    present = {
        path.parent.name: ".".join(path.relative_to(SRC).with_suffix("").parts) for path in PACKAGE.glob("*/hooks.py")
    }
    assert declared == present


def test_the_hooks_load_in_this_process():
    """The installed metadata lists the same modules (a stale install would silently lose the features)."""
    from broadcaster import hooks

    hooks.load()
    assert hooks.message_question.functions(), "responses registers the question in messages"
    assert hooks.audience_filters.functions(), "areas narrow an update's audience"
    assert len(hooks.runners.functions()) >= 5
