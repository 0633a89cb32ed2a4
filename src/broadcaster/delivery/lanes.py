"""Priority inside one worker: send slots and rate tokens go to the most urgent waiting chunk first.

`PrioritySlots` bounds the provider calls a worker has in flight (`WORKER_CONCURRENCY`) and hands a free
slot to the waiter with the lowest (priority, arrival). `TokenGate` is a worker's queue in front of one
shared token bucket (delivery/ratelimit.py): only its most urgent waiter asks the database, so a critical
chunk that arrives behind bulk chunks is the next to get tokens, and the bucket's priority floor keeps
other workers' bulk chunks out too.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from sqlalchemy import Engine

from broadcaster.delivery import ratelimit

log = logging.getLogger(__name__)
_seq = itertools.count()


@dataclass(order=True)
class _Waiter:
    priority: int
    seq: int
    cost: float = field(compare=False, default=0.0)
    future: asyncio.Future[None] = field(
        compare=False, default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class PrioritySlots:
    """A semaphore whose waiters are served most urgent first (then first come, first served)."""

    def __init__(self, size: int) -> None:
        self.free = max(1, size)
        self._waiters: list[_Waiter] = []

    @contextlib.asynccontextmanager
    async def slot(self, priority: int) -> AsyncIterator[None]:
        await self._acquire(priority)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, priority: int) -> None:
        if self.free > 0 and not self._waiters:
            self.free -= 1
            return
        waiter = _Waiter(priority, next(_seq))
        heapq.heappush(self._waiters, waiter)
        try:
            await waiter.future
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled():
                self._release()  # it was handed a slot just as it was cancelled: pass it on
            raise

    def _release(self) -> None:
        while self._waiters:
            waiter = heapq.heappop(self._waiters)
            if not waiter.future.done():
                waiter.future.set_result(None)
                return
        self.free += 1


class TokenGate:
    """This worker's queue for one adapter's shared token bucket, most urgent chunk first."""

    def __init__(self, engine: Engine, name: str, rate: float) -> None:
        self.engine, self.name, self.rate = engine, name, rate
        self._waiters: list[_Waiter] = []
        self._arrived = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None

    async def take(self, cost: float, priority: int) -> None:
        """Wait until `cost` tokens are taken for a chunk of lane `priority`."""
        waiter = _Waiter(priority, next(_seq), cost)
        heapq.heappush(self._waiters, waiter)
        self._arrived.set()
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._run(), name=f"tokens-{self.name}")
        await waiter.future

    async def _run(self) -> None:
        while self._waiters:
            head = self._waiters[0]
            if head.future.done():  # cancelled while waiting
                heapq.heappop(self._waiters)
                continue
            self._arrived.clear()
            try:
                grant = await asyncio.to_thread(
                    ratelimit.acquire, self.engine, self.name, self.rate, head.cost, head.priority
                )
            except Exception:
                log.warning("rate bucket %s unavailable; retrying", self.name, exc_info=True)
                grant = ratelimit.Grant(False, 0.5)
            if grant.granted:
                heapq.heappop(self._waiters)
                if not head.future.done():
                    head.future.set_result(None)
                continue
            # wait for tokens, or for a more urgent chunk to arrive (it becomes the head)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), min(grant.wait, 0.5))

    async def aclose(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(BaseException):
                await self._pump
