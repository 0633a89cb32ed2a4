"""The delivery engine under contention (issue 9), proven at the provider: real worker processes on
PostgreSQL (and the in-process worker on SQLite for the rate case) send through the real Twilio adapter to
the fake provider server in its own process, which counts what arrived. Each test is bounded (< 60 s):
waits have deadlines and every process is stopped in a `finally`.

The numbers each test measured are printed (`pytest -s` shows them) and are in every failure message.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.delivery.contention import (
    BURST_SECONDS,
    Reach,
    body_sends,
    broadcast_state,
    cluster,
    create_category,
    delivery_rows,
    engine_for,
    publish,
    reach,
    seed_subscribers,
    settings_of,
    settle,
    suspected_duplicates,
    terminate_backends,
    wait_for,
    worker_env,
)

from broadcaster.channels.twilio import TwilioSms
from broadcaster.fakes.counting import accepted, max_in_window, per_recipient, rate_profile, sms_segments
from broadcaster.fakes.testing import FakeProcess, free_port, running_fake_process

pytestmark = pytest.mark.slow

#: 3 UCS-2 segments once rendered (German, an emoji; the template adds the org name and the phone contact)
GERMAN_3_SEGMENTS = (
    "Achtung 🚨 Hochwasser im Nordviertel: Verlassen Sie sofort die Erdgeschosse, "
    "meiden Sie Unterführungen und folgen Sie den Einsatzkräften."
)


@pytest.fixture
def pg_url(db_url: str) -> str:
    if not db_url.startswith("postgresql"):
        pytest.skip("several worker processes share the queue on PostgreSQL")
    return db_url


@pytest.fixture
def fake() -> Iterator[FakeProcess]:
    """The fake provider server in its own process: its receive timestamps never wait for this process."""
    with running_fake_process() as running:
        yield running


@pytest.fixture
def approvals_off(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Critical and large updates publish without a second key (approval is tested elsewhere)."""
    from broadcaster.settings import get_settings

    monkeypatch.setenv("APPROVAL_SEVERITY", "none")
    monkeypatch.setenv("APPROVAL_AUDIENCE_THRESHOLD", "0")
    get_settings.cache_clear()


@pytest.fixture
def api(approvals_off: None, client: Any, admin: dict[str, str]) -> tuple[Any, dict[str, str]]:
    create_category(client, admin)
    return client, admin


def _summary(name: str, **figures: Any) -> str:
    line = f"[{name}] " + "; ".join(f"{k}: {v}" for k, v in figures.items())
    print(line)
    return line


# --- a. two workers, rate-limited, leases shorter than the rate needs -------------------------------------


def test_two_workers_rate_limited_short_lease_send_each_recipient_once(
    pg_url: str, fake: FakeProcess, api: Any, tmp_path: Path
) -> None:
    client, admin = api
    n = 1000
    engine = engine_for(pg_url)
    phones = seed_subscribers(engine, n)
    env = worker_env(pg_url, fake, twilio_sms_rate_per_second=100, worker_lease_seconds=3)
    with cluster(env, tmp_path) as workers:
        workers.start("w1")
        workers.start("w2")
        time.sleep(1.5)  # both idle and listening before the publish
        bid, published = publish(client, admin, GERMAN_3_SEGMENTS)
        settled, states = settle(fake, engine, [bid], deadline=time.monotonic() + 45)
        logs = workers.log_tail()
    reqs = body_sends(fake, GERMAN_3_SEGMENTS)
    got = reach(reqs, phones)
    state = states[bid]
    last_at = max((r.at for r in reqs), default=published)
    done_at = state.finished_at.timestamp() if state.finished_at else None
    figures = _summary(
        "a",
        recipients=n,
        reach=got,
        segments=sms_segments(reqs[0]) if reqs else None,
        state=state.state,
        rows=state.statuses,
        last_request_s=round(last_at - published, 1),
        done_s=round(done_at - published, 1) if done_at else None,
        settled=settled,
    )
    assert reqs and sms_segments(reqs[0]) == 3, f"precondition: a 3-segment text; {figures}"
    assert got.duplicates == 0, figures
    assert not got.missing and got.received == n, figures
    assert settled and state.state == "done", f"{figures}\n{logs}"
    assert done_at is not None and done_at >= last_at, f"broadcast done before its last request arrived; {figures}"


# --- b. rate at the provider: 2 workers on PostgreSQL, the in-process worker on SQLite ------------------


def test_rate_at_the_provider_stays_within_rate_and_burst(
    db_url: str, fake: FakeProcess, approvals_off: None, make_key: Any, tmp_path: Path
) -> None:
    rate, n = 50, 800  # single-segment texts: about 16 s at the configured rate
    body = "Rate check: water off in the north district until 18:00, boil tap water."
    engine = engine_for(db_url)
    phones = seed_subscribers(engine, n)
    key = make_key("admin")
    headers = {"Authorization": f"Bearer {key}"}
    postgres = db_url.startswith("postgresql")
    env = worker_env(db_url, fake, twilio_sms_rate_per_second=rate, worker_lease_seconds=10)
    with cluster(env, tmp_path) as procs:
        if postgres:
            from fastapi.testclient import TestClient

            from broadcaster.app import create_app

            procs.start("w1")
            procs.start("w2")
            time.sleep(1.5)
            with TestClient(create_app(run_worker=False)) as client:
                create_category(client, headers)
                bid, published = publish(client, headers, body)
        else:
            port = free_port()
            procs.start("serve", "serve", "--port", str(port), WORKER_IN_PROCESS="true")
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                up = wait_for(lambda: _answers(client), time.monotonic() + 20, 0.2)
                assert up, procs.log_tail()
                create_category(client, headers)
                bid, published = publish(client, headers, body)
        settled, states = settle(fake, engine, [bid], deadline=time.monotonic() + 45)
        logs = procs.log_tail()
    reqs = body_sends(fake, body)
    profile = rate_profile(reqs, sms_segments)
    got = reach(reqs, phones)
    burst = rate * BURST_SECONDS
    figures = _summary(
        "b-" + ("postgres-2-workers" if postgres else "sqlite-in-process"),
        rate=rate,
        burst=burst,
        profile=profile,
        reach=got,
        limit_1s=rate + burst,
        limit_10s=10 * rate + burst,
        state=states[bid].state,
        settled=settled,
    )
    assert not got.missing, f"every recipient must be sent to; {figures}\n{logs}"
    assert profile.max_1s <= rate + burst, figures
    assert profile.max_10s <= 10 * rate + burst, figures


def _answers(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.HTTPError:
        return False


# --- c. kill -9 of a worker while the provider fails 30% of calls -----------------------------------------


def test_kill_9_with_a_faulty_provider_loses_nothing_and_bounds_duplicates(
    pg_url: str, fake: FakeProcess, api: Any, tmp_path: Path
) -> None:
    client, admin = api
    n = 1000
    body = "Kill test: gas leak reported on Mill Street, keep windows closed until further notice."
    engine = engine_for(pg_url)
    phones = seed_subscribers(engine, n)
    env = worker_env(
        pg_url,
        fake,
        twilio_sms_rate_per_second=200,
        worker_lease_seconds=5,
        worker_concurrency=2,
        worker_batch_size=50,
        provider_timeout_seconds=1,
        retry_base_seconds=0.2,
        retry_max_seconds=1,
        retry_max_attempts=8,
    )
    settings = settings_of(env)
    adapter = TwilioSms.from_settings(settings)
    assert adapter is not None
    chunk = min(settings.worker_batch_size, adapter.limits.batch_size)
    bound = settings.worker_concurrency * chunk  # what one worker can have in flight at the provider
    fake.inject_random(
        "twilio", 0.3, [429, 500, 503], timeout_fraction=0.3, accept_fraction=0.5, hang_seconds=2.5, seed=9
    )
    with cluster(env, tmp_path) as workers:
        workers.start("victim")
        workers.start("survivor")
        time.sleep(1.5)
        bid, published = publish(client, admin, body)
        mid = wait_for(lambda: len(accepted(body_sends(fake, body))) >= n // 4, time.monotonic() + 20, 0.2)
        killed_at = time.time()
        workers.kill("victim")
        settled, states = settle(fake, engine, [bid], deadline=time.monotonic() + 40)
        logs = workers.log_tail()
    report = client.get(f"/v1/broadcasts/{bid}", headers=admin).json()
    suspected = suspected_duplicates(report)
    reqs = body_sends(fake, body)
    got = reach(reqs, phones)
    rows = delivery_rows(engine, bid)
    unfinished = [r for r in rows if r.status not in ("sent", "failed")]
    failed_without_reason = [r for r in rows if r.status == "failed" and not r.error_reason]
    failed = {r.address for r in rows if r.status == "failed"}
    lost = [p for p in got.missing if p not in failed]
    counts = per_recipient(accepted(reqs))
    hung_then_resent = sum(
        1 for r in accepted(reqs) if r.hang == "after_accept" and counts[r.form_value("To") or ""] > 1
    )
    figures = _summary(
        "c",
        recipients=n,
        reach=got,
        bound=f"{settings.worker_concurrency} x {chunk} = {bound} + {suspected} suspected in the report",
        accepted_then_hung_and_resent=hung_then_resent,
        killed_after_s=round(killed_at - published, 1),
        killed_mid_broadcast=mid,
        requests=len(reqs),
        rows=states[bid].statuses,
        state=states[bid].state,
        lost=len(lost),
        settled=settled,
    )
    assert settled, f"{figures}\n{logs}"
    assert not unfinished, f"{len(unfinished)} deliveries neither sent nor failed; {figures}"
    assert not failed_without_reason, figures
    assert not lost, f"recipients with no message and no failed row: {lost[:5]}; {figures}"
    assert got.duplicates <= bound + suspected, figures


# --- d. a critical update overtakes a queued, rate-limited info broadcast ----------------------------------


def test_critical_update_overtakes_a_queued_info_broadcast(
    pg_url: str, fake: FakeProcess, api: Any, tmp_path: Path
) -> None:
    client, admin = api
    info_n, critical_n, rate = 2000, 100, 50  # the info broadcast alone needs 40 s at this rate
    info_body = "Info: the recycling centre on Elm Road opens one hour later on Saturday."
    critical_body = "CRITICAL: evacuate the riverside area now, go to the sports hall on Hill Road."
    engine = engine_for(pg_url)
    seed_subscribers(engine, info_n - critical_n)
    critical_phones = seed_subscribers(engine, critical_n, start=info_n, tags=["riverside"])
    env = worker_env(pg_url, fake, twilio_sms_rate_per_second=rate, worker_lease_seconds=30)
    with cluster(env, tmp_path) as workers:
        workers.start("w1")
        workers.start("w2")
        time.sleep(1.5)
        info_bid, _ = publish(client, admin, info_body, severity="minor")
        started = wait_for(lambda: len(body_sends(fake, info_body)) >= 2 * rate, time.monotonic() + 15, 0.2)
        critical_bid, published = publish(
            client, admin, critical_body, severity="critical", audience={"tags": ["riverside"]}
        )
        reached = wait_for(
            lambda: not reach(body_sends(fake, critical_body), critical_phones).missing,
            time.monotonic() + 40,
            0.2,
        )
        time.sleep(1.0)  # what arrives right after the critical's last request counts too
        logs = workers.log_tail()
    critical = accepted(body_sends(fake, critical_body))
    info = body_sends(fake, info_body)
    got = reach(critical, critical_phones)
    first = min((r.at for r in critical), default=None)
    last = max((r.at for r in critical), default=None)
    interleaved = [r for r in info if first is not None and last is not None and first < r.at < last]
    info_before = [r for r in info if first is None or r.at <= first]
    figures = _summary(
        "d",
        info_started=started,
        critical_reach=got,
        first_critical_after_publish_s=round(first - published, 2) if first else None,
        critical_spread_s=round(last - first, 2) if first and last else None,
        info_sent_before_first_critical=len(info_before),
        info_between_first_and_last_critical=len(interleaved),
        info_total=len(info),
        info_state=broadcast_state(engine, info_bid).state,
        critical_state=broadcast_state(engine, critical_bid).state,
    )
    assert started, f"precondition: the info broadcast was going out; {figures}\n{logs}"
    assert reached and not got.missing, figures
    assert first is not None and first - published < 10, f"generous bound (target p50 < 1 s); {figures}"
    assert not interleaved, figures


# --- e. PostgreSQL terminates every backend mid-broadcast ----------------------------------------------------


def test_backend_termination_mid_broadcast_reconnects_and_completes(
    pg_url: str, fake: FakeProcess, api: Any, tmp_path: Path
) -> None:
    client, admin = api
    n = 1000
    body = "Termination test: the north bridge is closed, use the ring road."
    engine = engine_for(pg_url)
    phones = seed_subscribers(engine, n)
    # leases long enough that the rate alone never outlasts them (that is case a): only the terminations count
    env = worker_env(pg_url, fake, twilio_sms_rate_per_second=100, worker_lease_seconds=15, worker_batch_size=100)
    terminated: list[int] = []
    api_after: list[int] = []
    with cluster(env, tmp_path) as workers:
        workers.start("w1")
        workers.start("w2")
        time.sleep(1.5)
        bid, published = publish(client, admin, body)
        wait_for(lambda: len(body_sends(fake, body)) >= 50, time.monotonic() + 15, 0.2)
        for _ in range(4):  # about 10 s of sending at 100/s: terminate every 1.5 s while it goes out
            terminated.append(terminate_backends(pg_url))
            time.sleep(1.5)
            api_after.append(client.get(f"/v1/broadcasts/{bid}", headers=admin).status_code)
        settled, states = settle(fake, engine, [bid], deadline=time.monotonic() + 40)
        alive = workers.alive()
        logs = workers.log_tail()
    reqs = body_sends(fake, body)
    got: Reach = reach(reqs, phones)
    figures = _summary(
        "e",
        recipients=n,
        reach=got,
        backends_terminated=terminated,
        api_status_after_each=api_after,
        workers_alive=alive,
        rows=states[bid].statuses,
        state=states[bid].state,
        settled=settled,
        busiest_second=max_in_window([r.at for r in reqs], 1.0),
    )
    assert all(s == 200 for s in api_after), f"the API must reconnect by itself; {figures}"
    assert all(alive.values()), f"workers must survive a lost connection; {figures}\n{logs}"
    assert settled and states[bid].state == "done", f"{figures}\n{logs}"
    assert not got.missing, figures
    assert got.duplicates == 0, figures
