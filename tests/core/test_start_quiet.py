"""Starting the service prints no warning a newcomer would have to wonder about (issue 23: every start printed
Authlib's deprecation warning about its httpx integration)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_creating_the_app_prints_no_warning(tmp_path: Path) -> None:
    code = "from broadcaster.app import create_app; create_app()"
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'quiet.db'}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr, done.stderr
