"""The release: `python -m build` makes an sdist and a wheel (the wheel built from the sdist, as `build` does), and
the wheel, installed into a fresh virtual environment outside the checkout, runs on its own: `--version`,
migrations, the example crisis plan, an API key, `serve`, the console and status pages with their static files, and
an update that reaches the fake provider server as a text message through the real Twilio SDK.

The fresh environment gets the wheel's dependencies from this environment's site-packages through a .pth line (a
path on sys.path only: the editable install's own .pth file there is not processed), so no index is needed; the
test checks that `broadcaster` is imported from the new environment, never from the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import time
import tomllib
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from broadcaster.fakes.testing import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
#: what is not copied into the build tree (the build reads tracked sources only; never writes into the checkout)
SKIP = shutil.ignore_patterns(
    ".venv", ".git", "var", "build", "dist", "__pycache__", "*.egg-info", "*_cache", ".env", "*.db", "node_modules"
)


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """An sdist and a wheel of a copy of the checkout, built once per module with `python -m build`."""
    pytest.importorskip("build", reason="the release test needs `build` (pip install -e '.[dev]')")
    base = tmp_path_factory.mktemp("release")
    source, out = base / "source", base / "dist"
    shutil.copytree(ROOT, source, ignore=SKIP)
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def installed(dist, tmp_path_factory) -> Path:
    """A fresh virtual environment outside the checkout with only the wheel installed in it; its bin/ folder."""
    home = tmp_path_factory.mktemp("venv") / "venv"
    venv.create(home, with_pip=False)
    (wheel,) = dist.glob("broadcaster-*.whl")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(home / "bin" / "python"), "install", "-q", "--no-deps"]
        + ["--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    site = subprocess.run(
        [str(home / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # the dependencies: this environment's packages, after the new environment's own (its broadcaster wins)
    (Path(site) / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return home / "bin"


@pytest.fixture
def env(fake, tmp_path) -> dict[str, str]:
    """A clean environment for the installed commands: no PYTHONPATH (the checkout stays out of sight)."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
    return (
        keep
        | fake.env(webhook=False)
        | {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'release.db'}",
            "SEND_HOLD_SECONDS": "0",
            "APPROVER_GRANT_DELAY": "0",
            "LOG_LEVEL": "WARNING",
        }
    )


def _run(bin_dir: Path, cwd: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(bin_dir / args[0]), *args[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
    return done.stdout


@pytest.fixture
def served(installed, env, tmp_path) -> Iterator[tuple[str, dict[str, str]]]:
    """`broadcaster serve` of the installed wheel on a free port, from a folder outside the checkout."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    full = env | {"PUBLIC_URL": base}
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [str(installed / "broadcaster"), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=full,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90  # a generous bound: the box is shared
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "serve did not answer /healthz within 90 s"
            time.sleep(0.2)
        yield base, full
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_the_sdist_and_the_wheel_carry_what_runs(dist):
    """Every package file of src/broadcaster (templates, static files) and the bundled top-level folders."""
    (wheel,) = dist.glob(f"broadcaster-{VERSION}-*.whl")
    (sdist,) = dist.glob(f"broadcaster-{VERSION}.tar.gz")
    names = set(zipfile.ZipFile(wheel).namelist())
    package = {str(p.relative_to(ROOT / "src")) for p in (ROOT / "src" / "broadcaster").rglob("*") if p.is_file()}
    package = {n for n in package if "__pycache__" not in n}
    assert package - names == set()
    bundled = {
        f"broadcaster/bundled/{p.relative_to(ROOT)}"
        for folder in ("templates", "migrations")
        for p in (ROOT / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    } | {"broadcaster/bundled/examples/crisis-plan.yaml"}
    assert bundled - names == set()
    assert not any(n.startswith(("tests/", "migrations/", "templates/")) for n in names)
    with tarfile.open(sdist) as tar:
        members = {m.name.split("/", 1)[1] for m in tar.getmembers() if "/" in m.name}
    for needed in ("setup.py", "pyproject.toml", "MANIFEST.in", "CHANGELOG.md", "alembic.ini", "README.md"):
        assert needed in members
    assert "migrations/versions/0001_initial.py" in members
    assert "templates/sms.txt.j2" in members
    assert "channels/example-pager/pyproject.toml" in members


def test_the_installed_wheel_runs_without_the_checkout(installed, env, tmp_path):
    where = _run(
        installed,
        tmp_path,
        env,
        "python",
        "-c",
        "import broadcaster, broadcaster.migrate as m; from broadcaster.settings import Settings, bundled; "
        "print(broadcaster.__file__); print(Settings().templates_dir); "
        "print(m.alembic_config().get_main_option('script_location')); print(bundled('examples/crisis-plan.yaml'))",
    ).split()
    venv_root = installed.parent.resolve()
    for path in where:
        assert Path(path).resolve().is_relative_to(venv_root), where
        assert Path(path).exists(), where
        assert not Path(path).resolve().is_relative_to(ROOT), where
    assert _run(installed, tmp_path, env, "broadcaster", "--version").strip() == f"broadcaster {VERSION}"
    _run(installed, tmp_path, env, "broadcaster", "db", "upgrade")
    _run(installed, tmp_path, env, "broadcaster", "db", "check")
    assert (tmp_path / "release.db").is_file()
    _run(installed, tmp_path, env, "broadcaster", "routing", "import", where[3])


def test_the_installed_wheel_serves_and_sends_a_text(installed, env, fake, served, tmp_path):
    base, full = served
    key = _run(installed, tmp_path, full, "broadcaster", "keys", "create", "--name", "release", "--scopes", "admin")
    key = key.strip().splitlines()[-1]
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
        # the pages and their static files, from the package
        login = http.get("/console/login")
        assert login.status_code == 200 and "/console/static/console.css" in login.text, login.text[:500]
        css = http.get("/console/static/console.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        status = http.get("/status")
        assert status.status_code == 200 and "<html" in status.text.lower()
        assert http.get("/favicon.ico").status_code == 200
        assert http.get("/docs").status_code == 200
        # a resident, the example plan, and a minor update by text message
        _run(installed, tmp_path, full, "broadcaster", "routing", "import", _plan(installed, tmp_path, full))
        sub = http.post("/v1/subscribers", json={"phone": "+15550001234", "categories": ["emergency"]})
        assert sub.status_code == 201, sub.text
        inc = http.post("/v1/incidents", json={"title": "Water outage", "category": "emergency", "severity": "minor"})
        assert inc.status_code == 201, inc.text
        body = {"body": "Water is off in the north district until 18:00.", "channels": ["twilio-sms"]}
        upd = http.post(f"/v1/incidents/{inc.json()['id']}/updates", json=body)
        assert upd.status_code == 201, upd.text
        pub = http.post(f"/v1/updates/{upd.json()['id']}/publish")
        assert pub.status_code in (200, 202), pub.text
    deadline = time.monotonic() + 60  # the in-process worker sends it
    while True:
        texts = [r for r in fake.requests("twilio") if r.method == "POST" and r.path.endswith("/Messages.json")]
        if texts:
            break
        assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()[-3000:]
        time.sleep(0.2)
    assert [r.form_value("To") for r in texts] == ["+15550001234"]
    assert "Water is off in the north district" in (texts[0].form_value("Body") or "")


def _plan(installed: Path, cwd: Path, env: dict[str, str]) -> str:
    """The example crisis plan inside the installed package."""
    code = "from broadcaster.settings import bundled; print(bundled('examples/crisis-plan.yaml'))"
    return _run(installed, cwd, env, "python", "-c", code).strip()
