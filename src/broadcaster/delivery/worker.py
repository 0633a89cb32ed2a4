"""The delivery worker: plan broadcasts, claim deliveries, send each chunk once, record it at once.

How a delivery is sent once, even with several workers, rate limits and crashes:

- **Claim per channel, rate-aware, most urgent lane first** (delivery/queue.py). For a rate-limited adapter
  a worker holds at most `RATE_HORIZON` seconds of that adapter's rate (never more than it can send well
  within its lease); rows of a more urgent lane are claimed even when that budget is used up.
- **Leases are kept alive** by a heartbeat (`queue.renew`, every quarter lease) while the worker holds rows,
  and **ownership is checked right before each provider call**: a chunk is sent only for rows whose lease
  this worker renewed and that still has at least `LEASE_MARGIN` to run. A row the heartbeat did not get
  back was taken away; it is dropped, never sent.
- **Each chunk's outcome is written as soon as its provider call returns**, and the chunk's send slot is
  freed only after that write. So a crash (kill -9) can resend at most the chunks in flight at the
  provider: `WORKER_CONCURRENCY` x chunk size, where a chunk is at most the adapter's batch size and, for a
  rate-limited adapter, half a second of its rate.
- **Timeouts are not blindly resent**: a timed-out call (the provider may have accepted it) is retried only
  after `Adapter.lookup` says the provider has no such message; `found` records it as sent, `unknown`
  resends and marks the row `suspect_duplicate`, counted in the report.
- **Calls of a dead worker**: rows a killed worker held come back with `outcome_unknown` on voice channels
  (`queue.requeue_expired`), so a call it may have placed is looked up before anyone is called again.
- **Question re-sends** (broadcasts of kind `escalation`) are dropped right before the call for people who
  answered meanwhile, and for everyone once the question is closed.
- **Priority**: send slots and rate tokens go to the most urgent chunk first (delivery/lanes.py), and the
  shared bucket's priority floor keeps other workers' bulk sends out while a critical lane sends
  (delivery/ratelimit.py). Lower lanes wait only while a more urgent lane has due work on that adapter.
- **Database faults**: every database step retries with backoff; nothing is dropped while the database is
  away (rows stay claimed and leased, or go back to the queue when their lease runs out).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError

from broadcaster import hooks
from broadcaster.channels.base import (
    Adapter,
    ErrorClass,
    LookupStatus,
    Message,
    ProviderError,
    Recipient,
    SendResult,
)
from broadcaster.db import get_engine, get_sessionmaker
from broadcaster.delivery import metrics, planner
from broadcaster.delivery.content import message_for, recipient_variables
from broadcaster.delivery.entrypoints import notify_workers
from broadcaster.delivery.lanes import PrioritySlots, TokenGate
from broadcaster.delivery.queue import (
    CLAIM_PG,
    CLAIM_SQLITE,
    Claimed,
    Outcome,
    active_channels,
    claim,
    record,
    release,
    renew,
    requeue_expired,
)
from broadcaster.delivery.retry import RetryStrategy
from broadcaster.models import utcnow
from broadcaster.models.delivery import Broadcast, Delivery, idempotency_key
from broadcaster.settings import Settings, get_settings

__all__ = ["CLAIM_PG", "CLAIM_SQLITE", "Claimed", "Outcome", "Worker", "claim", "requeue_expired"]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: seconds of an adapter's rate a worker claims ahead (rate-limited channels)
RATE_HORIZON = 2.0
#: seconds of an adapter's rate in one chunk (one provider call of a rate-limited channel)
CHUNK_SECONDS = 0.5
#: seconds between looks for busy channels and their most urgent lane (publishing and planning also wake
#: every worker to look at once, through NOTIFY on PostgreSQL)
CHANNELS_REFRESH = 1.0


@dataclass
class _State:
    """Per-broadcast cache: state (re-read at most once a second) and rendered messages."""

    state: str
    checked: float
    messages: dict[tuple[str, str], Message] = field(default_factory=dict)
    #: update | system | escalation (a question's re-send: a send guard drops people who answered meanwhile)
    kind: str = "update"
    update_id: int | None = None


@dataclass(slots=True, eq=False)
class _Lease:
    """One claimed batch: the rows this worker holds share its validity (renewed together)."""

    channel: str
    #: the most urgent lane among its rows
    priority: int
    #: monotonic time until which this worker may start a provider call for its rows
    valid_until: float
    #: rows of it still held
    rows: int


class Worker:
    """One worker: an asyncio loop claiming per channel and sending chunks with bounded concurrency."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        concurrency: int | None = None,
        engine: Engine | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.engine = engine or get_engine()
        self.id = worker_id or f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(2)}"
        self.concurrency = concurrency or self.settings.worker_concurrency
        self.batch_size = self.settings.worker_batch_size
        self.lease = float(self.settings.worker_lease_seconds)
        #: a call starts only while at least this much of the lease is left
        self.margin = min(5.0, self.lease * 0.25)
        self.retry = RetryStrategy.from_settings(self.settings)
        self.failover_after = max(1, self.settings.worker_failover_after)
        self.wake = asyncio.Event()
        self.stopping = asyncio.Event()
        self._slots: PrioritySlots | None = None
        self._gates: dict[str, TokenGate] = {}
        self._adapters: dict[str, list[Adapter]] = {}
        self._broadcasts: dict[int, _State] = {}
        self._inflight: set[asyncio.Task[None]] = set()
        #: held row id -> its batch's lease
        self._held: dict[int, _Lease] = {}
        self._leases: set[_Lease] = set()
        self._row_cost: dict[str, float] = {}
        #: channels with pending rows -> the most urgent lane pending there
        self._channels: dict[str, int] = {}
        self._channels_at = 0.0
        self._last_housekeeping = 0.0
        self._max_held = 4 * self.batch_size
        self.sent = 0
        self.lost = 0

    @property
    def slots(self) -> PrioritySlots:
        if self._slots is None:
            self._slots = PrioritySlots(self.concurrency)
        return self._slots

    # ------------------------------------------------------------------ adapters and content
    def adapters(self, channel: str) -> list[Adapter]:
        if channel not in self._adapters:
            from broadcaster.channels.registry import resolve_channel

            self._adapters[channel] = resolve_channel(channel, self.settings)
        return self._adapters[channel]

    def _adapter_for(self, adapters: list[Adapter], attempts: int) -> Adapter:
        """Primary first; after `failover_after` transient failures move to the next adapter of the kind."""
        return adapters[((attempts - 1) // self.failover_after) % len(adapters)]

    def _gate(self, adapter: Adapter) -> TokenGate | None:
        rate = adapter.limits.rate_per_second
        if not rate:
            return None
        if adapter.name not in self._gates:
            self._gates[adapter.name] = TokenGate(self.engine, adapter.name, rate)
        return self._gates[adapter.name]

    def _load_states(self, ids: set[int]) -> None:
        now = time.monotonic()
        stale = {i for i in ids if i not in self._broadcasts or now - self._broadcasts[i].checked > 1.0}
        if not stale:
            return
        with get_sessionmaker()() as session:
            rows = session.execute(
                select(Broadcast.id, Broadcast.state, Broadcast.kind, Broadcast.update_id).where(
                    Broadcast.id.in_(stale)
                )
            )
            for bid, state, kind, update_id in rows:
                cached = self._broadcasts.get(bid)
                if cached is None:
                    self._broadcasts[bid] = _State(state, now, kind=kind, update_id=update_id)
                else:
                    cached.state, cached.checked = state, now

    def _message(self, broadcast_id: int, adapter: Adapter, locale: str) -> Message:
        cache = self._broadcasts[broadcast_id].messages
        key = (adapter.name, locale)
        if key not in cache:
            with get_sessionmaker()() as session:
                broadcast = session.get(Broadcast, broadcast_id)
                assert broadcast is not None
                cache[key] = message_for(session, broadcast, adapter, locale)
        return cache[key]

    def _stale(self, ids: set[int]) -> bool:
        now = time.monotonic()
        return any(i not in self._broadcasts or now - self._broadcasts[i].checked > 1.0 for i in ids)

    async def _cancelled(self, broadcast_id: int) -> bool:
        if self._stale({broadcast_id}):
            await self._db(self._load_states, {broadcast_id})
        return self._broadcasts[broadcast_id].state == "cancelled"

    async def _db(self, fn: Callable[..., T], *args: object, attempts: int | None = None) -> T:
        """Run a database step in a thread, retrying connection failures with backoff (`attempts` bounds it)."""
        delay = 0.1
        tried = 0
        while True:
            try:
                return await asyncio.to_thread(fn, *args)
            except DBAPIError as exc:
                tried += 1
                if attempts is not None and tried >= attempts:
                    raise
                log.warning("database unavailable (%s); retrying in %.1f s", type(exc.orig).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    # ------------------------------------------------------------------ ownership
    def _hold(self, batch: Sequence[Claimed]) -> None:
        """Hold a claimed batch (a batch already held is left as it is)."""
        held = self._held
        fresh = [d for d in batch if d.id not in held]
        if not fresh:
            return
        until = time.monotonic() + self.lease - self.margin
        lease = _Lease(fresh[0].channel, min(d.priority for d in fresh), until, len(fresh))
        self._leases.add(lease)
        for d in fresh:
            held[d.id] = lease

    def _unhold(self, rid: int) -> None:
        lease = self._held.pop(rid, None)
        if lease is not None:
            lease.rows -= 1
            if lease.rows <= 0:
                self._leases.discard(lease)

    def _owned(self, items: Sequence[Claimed]) -> list[Claimed]:
        """The rows of `items` this worker may still send: held, with enough of their lease left."""
        now = time.monotonic()
        held = self._held
        out = []
        for d in items:
            lease = held.get(d.id)
            if lease is not None and now < lease.valid_until:
                out.append(d)
        return out

    async def heartbeat_once(self) -> None:
        """Renew the lease of every held row; forget (never send) rows the database no longer gives us."""
        if not self._held:
            return
        started = time.monotonic()
        before = dict(self._held)
        try:
            kept = await asyncio.to_thread(renew, self.engine, self.id, self.lease)
        except DBAPIError:
            log.warning("lease heartbeat failed; held rows are sent only while their lease lasts", exc_info=True)
            return
        until = started + self.lease - self.margin
        for rid, lease in before.items():
            if self._held.get(rid) is not lease:
                continue  # recorded (or released) meanwhile
            if rid in kept:
                lease.valid_until = max(lease.valid_until, until)
            else:
                log.warning("delivery %s was taken away from worker %s; dropping it", rid, self.id)
                self._unhold(rid)
                self.lost += 1
                metrics.DELIVERIES.labels(lease.channel, "lost_lease").inc()

    async def _heartbeat(self) -> None:
        interval = max(0.2, self.lease / 4)
        while not self.stopping.is_set():
            await asyncio.sleep(interval)
            await self.heartbeat_once()

    # ------------------------------------------------------------------ one batch
    async def process(self, batch: Sequence[Claimed]) -> list[Outcome]:
        """Send a claimed batch chunk by chunk, recording each chunk as it returns; all outcomes."""
        self._hold(batch)
        try:
            ids = {d.broadcast_id for d in batch}
            if self._stale(ids):
                await self._db(self._load_states, ids)
            outcomes: list[Outcome] = []
            groups: dict[tuple[int, str, str, str, int], list[Claimed]] = defaultdict(list)
            adapters_by_name: dict[str, Adapter] = {}
            early: list[Outcome] = []
            for d in batch:
                if self._broadcasts[d.broadcast_id].state == "cancelled":
                    early.append(Outcome(d.id, d.channel, "cancelled", error_reason="broadcast cancelled"))
                    continue
                adapters = self.adapters(d.channel)
                if not adapters:
                    reason = f"no adapter is configured for channel {d.channel!r}"
                    early.append(Outcome(d.id, d.channel, "failed", error_code="no_adapter", error_reason=reason))
                    continue
                adapter = self._adapter_for(adapters, d.attempts)
                adapters_by_name[adapter.name] = adapter
                groups[(d.broadcast_id, d.channel, d.locale, adapter.name, d.priority)].append(d)
            if early:
                outcomes += await self._save(early)
            tasks = []
            for (bid, channel, locale, name, _priority), items in groups.items():
                adapter = adapters_by_name[name]
                try:
                    cached = self._broadcasts[bid].messages.get((adapter.name, locale))
                    message = cached if cached is not None else await self._db(self._message, bid, adapter, locale)
                except Exception as exc:
                    log.exception("rendering broadcast %s for %s/%s failed", bid, name, locale)
                    err = ProviderError(ErrorClass.permanent, "render_failed", f"rendering failed: {exc}"[:500])
                    failed = [self._outcome(d, adapter, SendResult.failure(str(d.id), err)) for d in items]
                    outcomes += await self._save(failed)
                    continue
                size = self._chunk_size(adapter, message, channel)
                for i in range(0, len(items), size):
                    tasks.append(self._send_chunk(adapter, message, items[i : i + size]))
            for chunk in await asyncio.gather(*tasks):
                outcomes += chunk
            return outcomes
        finally:
            for d in batch:
                self._unhold(d.id)

    def _chunk_size(self, adapter: Adapter, message: Message, channel: str) -> int:
        """Recipients per provider call: the adapter's batch size, and at most half a second of its rate."""
        size = max(1, adapter.limits.batch_size)
        per_row = max(1e-9, adapter.rate_cost(message, 1))
        self._row_cost[channel] = per_row
        rate = adapter.limits.rate_per_second
        if rate:
            size = min(size, max(1, int(rate * CHUNK_SECONDS / per_row)))
        return size

    async def _send_chunk(self, adapter: Adapter, message: Message, items: list[Claimed]) -> list[Outcome]:
        priority = min(d.priority for d in items)
        async with self.slots.slot(priority):
            items = self._owned(items)
            if not items:
                return []
            gate = self._gate(adapter)
            if gate is not None:
                await gate.take(adapter.rate_cost(message, len(items)), priority)
            if await self._cancelled(items[0].broadcast_id):
                cancelled = [Outcome(d.id, d.channel, "cancelled", error_reason="broadcast cancelled") for d in items]
                return await self._save(cancelled)
            guard = hooks.guard_for(self._broadcasts[items[0].broadcast_id].kind)
            if guard is not None:
                items, stopped = await self._db(self._guarded, guard, items)
                if stopped:
                    await self._save(stopped)
                if not items:
                    return stopped
            # the ownership check right before the call: a row whose lease is not ours for long enough is dropped
            if len(self._owned(items)) < len(items):
                await self.heartbeat_once()
                items = self._owned(items)
                if not items:
                    return []
            outcomes: list[Outcome] = []
            send: list[Claimed] = []
            suspect: set[int] = set()
            for d in items:
                if not d.outcome_unknown:
                    send.append(d)
                    continue
                found, unsure = await self._lookup(adapter, message, d)
                if found is not None:
                    outcomes.append(found)
                    continue
                if unsure:
                    suspect.add(d.id)
                send.append(d)
            if send:
                results = await self._call(adapter, message, send)
                by_id = {r.delivery_id: r for r in results}
                for d in send:
                    result = by_id.get(str(d.id))
                    if result is None:
                        err = ProviderError(ErrorClass.transient, "no_result", "the adapter returned no result for it")
                        result = SendResult.failure(str(d.id), err)
                    outcome = self._outcome(d, adapter, result)
                    outcome.suspect_duplicate = d.id in suspect
                    outcomes.append(outcome)
            return await self._save(outcomes)

    async def _call(self, adapter: Adapter, message: Message, items: list[Claimed]) -> list[SendResult]:
        recipients = [self._recipient(adapter, d, message) for d in items]
        timeout = self.settings.provider_timeout_seconds * 3
        started = time.perf_counter()
        try:
            return await asyncio.wait_for(adapter.send(message, recipients), timeout)
        except TimeoutError:
            reason = f"adapter {adapter.name} did not finish in {timeout:g} s"
            err = ProviderError(ErrorClass.transient, "timeout", reason)
            return [SendResult.failure(r.delivery_id, err) for r in recipients]
        except Exception as exc:  # an adapter must not raise; treat it as a transient outage
            log.warning("adapter %s raised %r; chunk will be retried", adapter.name, exc)
            err = ProviderError(ErrorClass.transient, "adapter_error", f"{type(exc).__name__}: {exc}"[:500])
            return [SendResult.failure(r.delivery_id, err) for r in recipients]
        finally:
            metrics.SEND_LATENCY.labels(adapter.name).observe(time.perf_counter() - started)

    def _recipient(self, adapter: Adapter, d: Claimed, message: Message | None = None) -> Recipient:
        return Recipient(
            delivery_id=str(d.id),
            address=d.address,
            locale=d.locale,
            idempotency_key=idempotency_key(d.broadcast_id, d.id),
            variables=recipient_variables(adapter, d.subscriber_id, message),
        )

    def _guarded(self, guard: hooks.SendGuard, items: list[Claimed]) -> tuple[list[Claimed], list[Outcome]]:
        """Right before the call: (rows still to send, cancelled outcomes of the rows `guard` holds back, e.g. the
        people who answered a question meanwhile, or everyone once it was closed)."""
        update_id = self._broadcasts[items[0].broadcast_id].update_id
        if update_id is None:
            return items, []
        hold = guard.hold(self.engine, update_id, [d.subscriber_id for d in items if d.subscriber_id])
        keep, stopped = [], []
        for d in items:
            reason = hold.everyone or (hold.people.get(d.subscriber_id) if d.subscriber_id is not None else None)
            if reason:
                stopped.append(Outcome(d.id, d.channel, "cancelled", error_reason=reason))
            else:
                keep.append(d)
        return keep, stopped

    async def _lookup(self, adapter: Adapter, message: Message, d: Claimed) -> tuple[Outcome | None, bool]:
        """Ask the provider whether a timed-out attempt arrived: (its outcome when it did, else None; whether a
        resend may duplicate because the provider could not tell)."""
        since = (d.created_at or utcnow()) - timedelta(seconds=5)
        try:
            found = await asyncio.wait_for(
                adapter.lookup(message, self._recipient(adapter, d, message), since),
                self.settings.provider_timeout_seconds,
            )
        except Exception as exc:
            log.warning("lookup of delivery %s at %s failed: %r", d.id, adapter.name, exc)
            found = None
        if found is not None and found.status is LookupStatus.found:
            metrics.DELIVERIES.labels(d.channel, "found_after_timeout").inc()
            return Outcome(d.id, d.channel, "sent", adapter.name, found.provider_message_id), False
        if found is None or found.status is LookupStatus.unknown:
            metrics.DELIVERIES.labels(d.channel, "suspect_duplicate").inc()
            return None, True
        return None, False

    def _outcome(self, d: Claimed, adapter: Adapter, result: SendResult) -> Outcome:
        if result.ok:
            return Outcome(d.id, d.channel, "sent", adapter.name, result.provider_message_id)
        err = result.error or ProviderError(ErrorClass.transient, "unknown", "unknown error")
        unknown = result.outcome_unknown
        if not err.transient:
            return Outcome(d.id, d.channel, "failed", adapter.name, None, err.code, err.reason)
        delay = self.retry.delay(d.attempts, err.retry_after)
        if delay is None:
            reason = f"gave up after {d.attempts} attempts: {err.reason}"
            if unknown:
                reason += " (the last attempt timed out: the provider may have sent it)"
            return Outcome(d.id, d.channel, "failed", adapter.name, None, err.code, reason, outcome_unknown=unknown)
        if unknown:  # let the provider finish and list the earlier attempt before we look it up
            delay = max(delay, self.settings.worker_lookup_delay_seconds)
        return Outcome(
            d.id,
            d.channel,
            "pending",
            adapter.name,
            None,
            err.code,
            err.reason,
            utcnow() + timedelta(seconds=delay),
            outcome_unknown=unknown,
        )

    async def _save(self, outcomes: list[Outcome]) -> list[Outcome]:
        """Write outcomes now (retrying while the database is away); frees the rows."""
        if outcomes:
            await self._db(self._record, outcomes)
            for o in outcomes:
                self._unhold(o.id)
        return outcomes

    def _record(self, outcomes: list[Outcome]) -> None:
        """Write outcomes (only for rows this worker still holds)."""
        record(self.engine, self.id, outcomes)
        counts = Counter((o.channel, "retry" if o.status == "pending" else o.status) for o in outcomes)
        for (channel, status), n in counts.items():
            metrics.DELIVERIES.labels(channel, status).inc(n)
        self.sent += sum(n for (_, status), n in counts.items() if status == "sent")

    # ------------------------------------------------------------------ the loop
    def housekeeping(self) -> None:
        """Plan waiting broadcasts, requeue expired leases, close finished broadcasts, list busy channels."""
        while True:
            with get_sessionmaker()() as session:
                planned = planner.plan_next(session)
                rows = session.get(Broadcast, planned).total if planned is not None else 0  # type: ignore[union-attr]
                if rows:
                    notify_workers(session)  # the other workers start on the new rows at once
                session.commit()
            if planned is None:
                break
            planner.refresh_statistics(self.engine, rows)
        requeue_expired(self.engine)
        with get_sessionmaker()() as session:
            planner.finish_done(session)
            session.commit()
        self._refresh_channels()
        self._last_housekeeping = time.monotonic()

    def _refresh_channels(self) -> None:
        self._channels = active_channels(self.engine)
        self._channels_at = time.monotonic()

    def idle(self) -> bool:
        """Nothing left to do: no broadcast planning, no delivery pending or in flight."""
        with get_sessionmaker()() as session:
            busy = session.scalar(
                select(Delivery.id).where(Delivery.status.in_(("pending", "sending"))).limit(1)
            ) or session.scalar(select(Broadcast.id).where(Broadcast.state.in_(("planning", "sending"))).limit(1))
            return busy is None

    def _budget(self, channel: str) -> tuple[int, int]:
        """How many rows of `channel` to claim now, and the lane they must be more urgent than."""
        leases = [lease for lease in self._leases if lease.channel == channel]
        held = sum(lease.rows for lease in leases)
        adapters = self.adapters(channel)
        rate = adapters[0].limits.rate_per_second if adapters else None
        if rate:
            per_row = self._row_cost.get(channel, 1.0)
            cap = max(1, int(rate * RATE_HORIZON / per_row))
        else:
            cap = 4 * self.batch_size
        room = min(self.batch_size, cap - held)
        if room > 0:
            return room, 1_000
        # full: only a more urgent lane than everything held may still come in (it overtakes), and only
        # when one is pending there (refreshed every CHANNELS_REFRESH and on every wake-up)
        most_urgent = min(lease.priority for lease in leases)
        if self._channels.get(channel, most_urgent) >= most_urgent:
            return 0, 0
        return min(self.batch_size, cap), most_urgent

    async def _claim_round(self) -> list[list[Claimed]]:
        """Claim what each busy channel's budget allows (budgets are computed here, on the loop's thread)."""
        batches = []
        if time.monotonic() - self._channels_at > CHANNELS_REFRESH:
            await asyncio.to_thread(self._refresh_channels)
        for channel in list(self._channels):
            if len(self._held) >= self._max_held:
                break
            n, below = self._budget(channel)
            if n <= 0:
                continue
            batch = await asyncio.to_thread(
                claim, self.engine, self.id, n, self.lease, channel=channel, below_priority=below
            )
            if batch:
                self._hold(batch)
                batches.append(batch)
        return batches

    async def _run_batch(self, batch: list[Claimed]) -> None:
        await self.process(batch)  # outcomes are written; not kept in memory by the finished task

    def _batch_done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("batch failed", exc_info=task.exception())

    async def _wait(self, seconds: float) -> None:
        """Until a batch finishes, the worker is woken, or `seconds` pass."""
        waker = asyncio.ensure_future(self.wake.wait())
        try:  # finished batches take themselves out of _inflight (_batch_done)
            await asyncio.wait({*self._inflight, waker}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waker.cancel()

    async def run(self, *, until_idle: bool = False, max_seconds: float | None = None) -> None:
        """Work until `stop()` (or, with `until_idle`, until the queue is empty; at most `max_seconds`)."""
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        listener = asyncio.create_task(self._listen()) if self.engine.dialect.name == "postgresql" else None
        heartbeat = asyncio.create_task(self._heartbeat())
        poll = self.settings.worker_poll_seconds
        await asyncio.to_thread(self._warm_up)
        backoff = 0.1
        try:
            while not self.stopping.is_set():
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError("worker did not become idle in time")
                try:
                    if self.wake.is_set() or time.monotonic() - self._last_housekeeping > poll:
                        self.wake.clear()
                        await asyncio.to_thread(self.housekeeping)
                    batches = await self._claim_round()
                    backoff = 0.1
                except DBAPIError as exc:
                    log.warning("database unavailable (%s); retrying in %.1f s", type(exc.orig).__name__, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                for batch in batches:
                    task = asyncio.create_task(self._run_batch(batch))
                    self._inflight.add(task)
                    task.add_done_callback(self._batch_done)
                if batches:
                    continue  # the next claim goes to its thread before the new batches' Python runs
                if self._inflight:
                    await self._wait(min(poll, 0.25))
                    continue
                if until_idle:
                    await asyncio.to_thread(self.housekeeping)
                    if await asyncio.to_thread(self.idle):
                        return
                    await asyncio.sleep(min(poll, 0.05))
                    continue
                await self._wait(poll)
        finally:
            while self._inflight:
                await self._wait(1.0)
            heartbeat.cancel()
            if listener is not None:
                listener.cancel()
            for gate in self._gates.values():
                await gate.aclose()
            unsent = [rid for rid in self._held]
            if unsent:
                with contextlib.suppress(Exception):
                    release(self.engine, self.id, unsent)
            for adapters in self._adapters.values():
                for adapter in adapters:
                    try:
                        await adapter.aclose()
                    except Exception:
                        log.debug("closing adapter %s failed", adapter.name, exc_info=True)

    def _warm_up(self) -> None:
        """Build every configured adapter now (importing an SDK can take half a second), so the first
        broadcast starts at once in every worker."""
        from broadcaster.channels.registry import adapter_classes

        for name in adapter_classes():
            try:
                self.adapters(name)
            except Exception:
                log.warning("adapter %s could not be built", name, exc_info=True)

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    async def _listen(self) -> None:
        """LISTEN for publish notifications so an idle worker starts within milliseconds (PostgreSQL)."""
        import psycopg

        from broadcaster.delivery.entrypoints import NOTIFY_CHANNEL

        url = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while not self.stopping.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    async for _ in conn.notifies():
                        self.wake.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("LISTEN connection lost; retrying in 1 s", exc_info=True)
                await asyncio.sleep(1)
