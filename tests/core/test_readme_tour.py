"""The README's 5-minute tour, run as written against a live `broadcaster serve` (SQLite, in-process worker)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def tour_script() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("<!-- tour:start", 1)[1].split("<!-- tour:end -->", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    assert len(blocks) >= 4, "the tour lost its shell blocks"
    return "\n".join(blocks)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_readme_tour_works_as_written(tmp_path):
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BROADCASTER_", "DATABASE_URL", "WORKER_", "PUBLIC_URL"))
    }
    env |= {"DATABASE_URL": f"sqlite:///{tmp_path}/tour.db", "PUBLIC_URL": f"http://127.0.0.1:{port}"}
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [str(BIN / "broadcaster"), "serve", "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/docs", timeout=2)
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "serve.log").read_text()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        script = tour_script().replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        script = script.replace(".venv/bin/broadcaster", str(BIN / "broadcaster"))
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        # `broadcaster alert` (the CLI for shell scripts) against the same live service
        alert = (
            f"KEY=$({BIN}/broadcaster keys create --name cron --scopes alerts)\n"
            f'run() {{ {BIN}/broadcaster alert --url http://127.0.0.1:{port} --key $KEY "$@"; }}\n'
            "run --category emergency --message 'Boil water notice' --idempotency-key cron-1\n"
            "run --category emergency --message 'Boil water notice' --idempotency-key cron-1\n"
            "run --category nope --message x && exit 9 || echo bad-category-exit=$?\n"
        )
        cli = subprocess.run(
            ["bash", "-eu", "-c", alert], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    out = result.stdout
    banner = (tmp_path / "serve.log").read_text()
    assert f"http://127.0.0.1:{port}/docs" in banner and "broadcaster keys create" in banner  # says where to go
    assert result.returncode == 0, f"tour failed:\n{result.stderr}\n{out}"
    assert "Traceback" not in result.stderr, result.stderr
    assert '"channels":["banner","social"]' in out  # the routing map picked the channels
    assert "idempotent-replayed: true" in out.lower()
    assert '"approval_required":true' in out  # critical -> waits for a second key
    assert '"error":"forbidden"' in out  # Alice cannot approve her own update
    assert out.count('"approved_by":"key:bob"') >= 3  # Bob approved all three, with the preview's ETag in If-Match
    assert out.count('"state":"published"') >= 4  # alert, Bob's approval, the correction, the area update
    # the area-targeted update reaches the two residents inside the blocks (e-mail), not the one uptown
    assert '{"sms": 0, "voice": 0, "email": 2, "social": 0, "banner": 1}' in out
    cap_area = "40.732,-73.995 40.7347,-73.9905 40.738,-73.994 40.7352,-73.9985 40.732,-73.995"
    assert f"<area><areaDesc>5th Ave between 10th and 14th St</areaDesc><polygon>{cap_area}</polygon></area>" in out
    assert "Outline of the affected area: 5th Ave between 10th and 14th St" in out  # the status page's SVG
    assert ' — affected area: 5th Ave between 10th and 14th St"' in out  # the banner's text names it
    assert '"kind":"correction"' in out
    assert '"internal_error"' not in out

    assert cli.returncode == 0, cli.stderr + cli.stdout
    first, second = (chunk for chunk in cli.stdout.split("\n}\n")[:2])
    assert '"channels": [' in first and '"published"' in first
    assert first == second  # the retry with the same Idempotency-Key is replayed
    assert '"unknown_category"' in cli.stdout and "bad-category-exit=1" in cli.stdout
