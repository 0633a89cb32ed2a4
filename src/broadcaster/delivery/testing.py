"""In-memory channel adapters for tests and demos (`memory`, `memory-backup`: sms; `memory-email`: email).

Enabled with `MEMORY_ADAPTER_ENABLED=true`. Every send is recorded in `MemoryAdapter.sent` (this process)
and, when `MEMORY_ADAPTER_LOG` is set, appended as one JSON line to that file (so tests can watch worker
processes). Failures are scripted per address: `MemoryAdapter.script[address] = [error, None, ...]`
(consumed one per attempt; `None` means succeed) or `MemoryAdapter.always_fail[name] = error`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from datetime import datetime
from itertools import count
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from broadcaster.channels.base import (
    Adapter,
    ErrorClass,
    Limits,
    LookupResult,
    LookupStatus,
    Message,
    ProviderError,
    Recipient,
    SendResult,
)
from broadcaster.domain import ChannelKind

if TYPE_CHECKING:
    from broadcaster.settings import Settings

_ids = count(1)


def transient(
    code: str = "503", reason: str = "service unavailable", retry_after: float | None = None
) -> ProviderError:
    return ProviderError(ErrorClass.transient, code, reason, retry_after=retry_after)


#: reason of a scripted timeout whose request the "provider" accepted before the answer was lost
ACCEPTED_THEN_LOST = "accepted, then the answer was lost"


def accepted_timeout() -> ProviderError:
    """A scripted timeout after the message was accepted (the case that turns retries into duplicates)."""
    return ProviderError(ErrorClass.transient, "timeout", ACCEPTED_THEN_LOST)


def permanent(code: str = "21211", reason: str = "invalid 'To' number") -> ProviderError:
    return ProviderError(ErrorClass.permanent, code, reason)


class MemoryAdapter(Adapter):
    """Records messages instead of sending them; scriptable failures per address."""

    name = "memory"
    kind = ChannelKind.sms
    limits = Limits(batch_size=100)
    priority = 900

    #: (adapter name, address, idempotency key, text) of every successful send in this process
    sent: ClassVar[list[tuple[str, str, str | None, str]]] = []
    #: per-address scripted outcomes, consumed one per attempt (None = success)
    script: ClassVar[dict[str, list[ProviderError | None]]] = {}
    #: adapter name -> error returned for every recipient (a provider outage)
    always_fail: ClassVar[dict[str, ProviderError]] = {}
    #: every attempt: (adapter name, address)
    attempts: ClassVar[list[tuple[str, str]]] = []
    #: keep `sent`/`attempts` in memory (benchmarks turn this off to measure the worker, not the lists)
    record: ClassVar[bool] = True
    #: answer `lookup` from `sent` (as Twilio's message list would); off: "cannot tell", like most providers
    can_lookup: ClassVar[bool] = False

    def __init__(self, log_path: Path | None) -> None:
        self.log_path = log_path

    @classmethod
    def from_settings(cls, settings: Settings) -> Adapter | None:
        if not settings.memory_adapter_enabled:
            return None
        return cls(settings.memory_adapter_log)

    @classmethod
    def reset(cls) -> None:
        cls.can_lookup = False
        cls.sent.clear()
        cls.script.clear()
        cls.always_fail.clear()
        cls.attempts.clear()

    def _outcome(self, address: str) -> ProviderError | None:
        if self.name in self.always_fail:
            return self.always_fail[self.name]
        queue = self.script.get(address)
        if queue:
            return queue.pop(0)
        return None

    async def send(self, message: Message, recipients: Sequence[Recipient]) -> list[SendResult]:
        results: list[SendResult] = []
        lines: list[str] = []
        for r in recipients:
            if self.record:
                self.attempts.append((self.name, r.address))
            error = self._outcome(r.address)
            if error is not None:
                if error.reason == ACCEPTED_THEN_LOST and self.record:
                    self.sent.append((self.name, r.address, r.idempotency_key, message.text))
                results.append(SendResult.failure(r.delivery_id, error))
                continue
            if self.record:
                self.sent.append((self.name, r.address, r.idempotency_key, message.text))
            mid = f"MM{os.getpid()}x{next(_ids)}"
            results.append(SendResult.success(r.delivery_id, mid))
            if self.log_path is not None:
                record = {
                    "adapter": self.name,
                    "address": r.address,
                    "key": r.idempotency_key,
                    "pid": os.getpid(),
                    "t": time.time(),
                }
                lines.append(json.dumps(record) + "\n")
        if lines and self.log_path is not None:
            # one O_APPEND write per batch: lines from concurrent processes never interleave
            fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, "".join(lines).encode())
            finally:
                os.close(fd)
        return results

    async def lookup(self, message: Message, recipient: Recipient, since: datetime) -> LookupResult:
        if not self.can_lookup:
            return await super().lookup(message, recipient, since)
        for name, address, key, _text in self.sent:
            if name == self.name and address == recipient.address and key == recipient.idempotency_key:
                return LookupResult(LookupStatus.found, f"MM-found-{recipient.delivery_id}")
        return LookupResult(LookupStatus.not_found)


class MemoryBackupAdapter(MemoryAdapter):
    """A second in-memory SMS adapter: the failover target of `memory`."""

    name = "memory-backup"
    priority = 950


class MemoryEmailAdapter(MemoryAdapter):
    """In-memory email adapter (confirmations, email broadcasts in tests)."""

    name = "memory-email"
    kind = ChannelKind.email
    priority = 900
