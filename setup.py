"""Build hook: the wheel carries the data folders kept at the top of the checkout.

templates/ (the default message templates and labels), migrations/ (the Alembic revisions) and
examples/crisis-plan.yaml live at the top of the repository, where operators and `make migration` expect them.
A built wheel copies them into the package as `broadcaster/bundled/...`, so an installed Broadcaster runs
without a checkout (broadcaster.settings.bundled finds either layout). Everything else is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
#: top-level path -> where it goes inside the package
BUNDLED = {
    "templates": "bundled/templates",
    "migrations": "bundled/migrations",
    "examples/crisis-plan.yaml": "bundled/examples/crisis-plan.yaml",
}


class BuildWithBundled(build_py):
    """build_py, then copy the top-level data folders into the built package (not in editable installs)."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout's own folders
        package = Path(self.build_lib) / "broadcaster"
        for source, target in BUNDLED.items():
            src, dst = ROOT / source, package / target
            if not src.exists():
                raise FileNotFoundError(f"{src} is missing: the sdist must include it (MANIFEST.in)")
            if dst.exists():
                shutil.rmtree(dst) if dst.is_dir() else dst.unlink()
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(src, dst)


setup(cmdclass={"build_py": BuildWithBundled})
