"""Run Debian's nginx on a free port serving a folder (a temp config; stopped by PID)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from tests.public.servers import free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

CONFIG = """
{user}
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    types {{ application/atom+xml atom; application/rss+xml rss; }}
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{
            add_header Access-Control-Allow-Origin * always;
            add_header Cache-Control "public, max-age=10, stale-while-revalidate=30" always;
            try_files $uri $uri/index.html $uri/ =404;
        }}
    }}
}}
"""


def nginx_available() -> bool:
    return Path(NGINX).exists()


@contextmanager
def run_nginx(root: Path, tmp: Path) -> Iterator[str]:
    if not nginx_available():
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is missing: apt-get install nginx-light")
        pytest.skip("nginx is missing")
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    conf = tmp / "nginx.conf"
    user = "user root;" if os.geteuid() == 0 else ""  # workers must read the pytest temp folder
    conf.write_text(CONFIG.format(user=user, tmp=tmp, port=port, root=root))
    proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(tmp)], stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            try:
                httpx.get(base + "/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield base
    finally:
        proc.terminate()
        proc.wait(10)
