"""Issue 21: /favicon.ico (and the SVG) are served from files shipped in the package, and linked from the public
pages, the resident pages and the console."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_favicon_is_served(client):
    ico = client.get("/favicon.ico")
    assert ico.status_code == 200 and ico.headers["content-type"] == "image/x-icon"
    assert ico.content[:4] == b"\x00\x00\x01\x00"  # an ICO header
    svg = client.get("/favicon.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.content.startswith(b"<svg")
    assert "max-age" in ico.headers["cache-control"]


def test_pages_link_the_favicon(client):
    for path in ("/status", "/status/history", "/v1/unsubscribe?token=x.y", "/console/login"):
        text = client.get(path).text
        assert 'rel="icon" href="/favicon.svg"' in text and 'href="/favicon.ico"' in text, path


def test_package_data_ships_every_non_python_file():
    """Every file under src/broadcaster that is not Python matches a [tool.setuptools.package-data] pattern,
    so the wheel carries it (the favicon, the stylesheet, templates...)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["broadcaster"]
    pkg = ROOT / "src" / "broadcaster"
    missing = [
        str(p.relative_to(pkg))
        for p in pkg.rglob("*")
        if p.is_file()
        and p.suffix not in (".py", ".pyc")
        and "__pycache__" not in p.parts
        and not any(fnmatch.fnmatch(str(p.relative_to(pkg)), pat) or fnmatch.fnmatch(p.name, pat) for pat in patterns)
    ]
    assert not missing, missing
    assert (pkg / "webpage" / "favicon.ico").exists() and (pkg / "webpage" / "favicon.svg").exists()
