"""Anonymous callers cannot freeze the process: database work never runs on the event loop (issue 10).

Four concurrent anonymous POST /v1/subscribe on SQLite froze the server, banner included, for ~10 s and
answered `database is locked` 500s: the async endpoint waited for SQLite's write lock on the event loop
while the request holding the lock needed that same loop to commit. A real uvicorn server, no timing
asserts: the failure is detected by 5xx answers and by generous client deadlines only.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from tests.public.servers import run_service

SUBSCRIBERS = 8  # concurrent anonymous clients
EACH = 6  # subscribes per client
#: failure detection only (a frozen event loop held requests for ~10 s): never a measured figure
DEADLINE = 8.0
#: this test is about the event loop, not the anonymous-abuse limits: those are opened wide here
OPEN_LIMITS = {
    "SUBSCRIBE_RATE_LIMIT": "100000/minute",
    "SUBSCRIBE_PHONE_PREFIX_RATE_LIMIT": "100000/minute",
    "SUBSCRIBE_PHONE_COUNTRIES": "*",
    "SUBSCRIBE_CONFIRM_INTERVAL_SECONDS": "0",
}


def test_concurrent_subscribes_neither_fail_nor_freeze_the_banner(db_url: str, tmp_path: Path):
    with run_service(db_url, tmp_path, **OPEN_LIMITS) as base:
        done = threading.Event()
        statuses: list[int] = []
        banner_answers = 0
        banner_errors: list[str] = []

        def subscriber(n: int) -> None:
            with httpx.Client(base_url=base, timeout=DEADLINE * 2, headers={"Origin": base}) as c:
                for i in range(EACH):
                    body = {"email": f"s{n}-{i}@example.org"} if i % 2 else {"phone": f"+1555{n:03d}{i:04d}"}
                    form = {"email": f"f{n}-{i}@example.org"}  # the status page's form, same endpoint
                    for kwargs in ({"json": body}, {"data": form}):
                        try:
                            statuses.append(c.post("/v1/subscribe", **kwargs).status_code)  # type: ignore[arg-type]
                        except httpx.HTTPError as exc:
                            statuses.append(599)
                            banner_errors.append(f"subscribe: {exc!r}")

        def banner() -> None:
            nonlocal banner_answers
            with httpx.Client(base_url=base, timeout=DEADLINE) as c:
                while not done.is_set():
                    for path in ("/v1/banner", "/healthz"):
                        try:
                            resp = c.get(path)
                        except httpx.TimeoutException:
                            banner_errors.append(f"{path} gave no answer within {DEADLINE} s")
                            continue
                        if resp.status_code != 200:
                            banner_errors.append(f"{path}: {resp.status_code}")
                        banner_answers += 1

        watcher = threading.Thread(target=banner)
        watcher.start()
        try:
            with ThreadPoolExecutor(SUBSCRIBERS) as pool:
                list(pool.map(subscriber, range(SUBSCRIBERS)))
        finally:
            done.set()
            watcher.join()
        assert len(statuses) == SUBSCRIBERS * EACH * 2
        assert not [s for s in statuses if s >= 500], sorted(set(statuses))
        assert 202 in statuses  # the requests were served, not refused
        assert not banner_errors, banner_errors[:5]
        assert banner_answers > 0
