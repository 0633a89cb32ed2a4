"""Alert-rule templates render in a child process: the hard stop behind the render budget.

The sandbox (`template_budget`) refuses what it can see coming, with a reason; this process bounds everything
else. Each child is a fresh interpreter that imports only Jinja2 and the sandbox, runs with no environment
variables (no secrets), an address-space limit of what it needs at rest plus MEMORY_MB, and a CPU limit reset
before each template; the parent waits at most KILL_AFTER_SECONDS (wall clock) per template, then kills it and
starts another. So a template can never hold the API process or the worker for longer than that, nor make
either allocate: they only read a line of JSON back.

Protocol (one JSON document per line): the parent sends a batch, `{"b": batch number, "context": {...}, "jobs":
[{"source": str, "strict": bool, "check": bool}, ...], "stop_on_over": bool, "seconds": float | null, "late":
reason}`, and reads one answer per job as it is rendered: `{"b": n, "text": str}`, `{"b": n, "over": reason}`
(over the budget) or `{"b": n, "error": message}` (the template's own error). Each API process and worker
keeps up to PROCESSES children, started when first needed (about 0.1 s) and reused.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import IO, Any

from broadcaster.alertrules.template_budget import KILL_AFTER_SECONDS, MEMORY_MB, TIME_MS

#: children per process (concurrent renders; more wait for one)
PROCESSES = 2
#: how long a render waits for a free child before it is given up (over budget: the fallback text is used)
WAIT_SECONDS = 30.0
#: longest answer line read from a child (the text is at most MAX_OUTPUT characters, JSON-escaped)
MAX_ANSWER = 1 << 20

Answer = dict[str, Any]


def _over(reason: str) -> Answer:
    return {"over": reason}


class Deadline:
    """A time limit for many renders together (one notification's alerts; one routing map's upload check): past
    it, the templates not yet rendered are over budget without being run."""

    def __init__(self, seconds: float, what: str) -> None:
        self.at = time.monotonic() + seconds
        self.reason = f"not rendered: {what} took longer than {seconds:g} s in all"

    def passed(self) -> bool:
        return time.monotonic() > self.at

    def left(self) -> float:
        return max(self.at - time.monotonic(), 0.0)


STOPPED = f"took longer than {TIME_MS} ms (stopped after {KILL_AFTER_SECONDS:g} s)"
DIED = f"used more than {MEMORY_MB} MB of memory or too much CPU time (the rendering process stopped)"


# --- the child ------------------------------------------------------------------------------------------------


def _limit_memory() -> None:
    import resource

    try:
        with open("/proc/self/statm") as statm:
            at_rest = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: a generous fixed ceiling
        at_rest = 512 * 2**20
    limit = at_rest + MEMORY_MB * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _limit_cpu() -> None:
    """SIGXCPU (which ends the child) once this template has used KILL_AFTER_SECONDS of CPU on top of what the
    child used so far (the soft limit moves up with each job; the hard limit stays unlimited)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = math.ceil(usage.ru_utime + usage.ru_stime + KILL_AFTER_SECONDS) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (soft, resource.RLIM_INFINITY))


def _answer(job: Answer, context: dict[str, Any], compiled: dict[tuple[str, bool], Any]) -> Answer:
    from jinja2 import TemplateError

    from broadcaster.alertrules.template_budget import BudgetExceeded, environment, render_text

    source, strict = str(job["source"]), bool(job["strict"])
    try:
        template = compiled.get((source, strict))
        if template is None:
            if len(compiled) > 512:
                compiled.clear()
            template = compiled[(source, strict)] = environment(strict).from_string(source)
        return {"text": render_text(template, context, check=bool(job["check"]))}
    except BudgetExceeded as exc:
        return _over(exc.reason)
    except MemoryError:
        return {**_over(f"used more than {MEMORY_MB} MB of memory"), "fatal": True}
    except RecursionError:
        return {"error": "nests too deeply (recursion)"}
    except TemplateError as exc:
        return {"error": str(exc)[:1000]}
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:1000]}


def child_main() -> None:
    """The child's loop: read a batch per line, answer each of its jobs with one line as soon as it is rendered."""
    _limit_memory()
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but answers on the pipe
    compiled: dict[tuple[str, bool], Any] = {}
    for line in stdin:
        batch = json.loads(line)
        context, seconds = batch["context"], batch["seconds"]
        started = time.monotonic()
        for job in batch["jobs"]:
            if seconds is not None and time.monotonic() - started > seconds:
                answer = _over(batch["late"])
            else:
                _limit_cpu()
                answer = _answer(job, context, compiled)
            stdout.write(json.dumps({**answer, "b": batch["b"]}).encode() + b"\n")
            stdout.flush()
            if answer.get("fatal"):
                return  # after a MemoryError, start afresh
            if batch["stop_on_over"] and "over" in answer:
                break


# --- the parent -----------------------------------------------------------------------------------------------

_BOOT = (
    "import sys; sys.path[:0] = sys.argv[1:]; "
    "from broadcaster.alertrules.sandbox_process import child_main; child_main()"
)


class _Child:
    """One rendering process and the bytes read from it that do not yet make a line."""

    def __init__(self) -> None:
        self.batches = 0
        paths = [os.path.abspath(p) if p else os.getcwd() for p in sys.path]
        self.proc = subprocess.Popen(  # noqa: S603 (our interpreter, our module; no shell)
            [sys.executable, "-c", _BOOT, *paths],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={"PYTHONDONTWRITEBYTECODE": "1"},
            start_new_session=True,
        )
        self.pending = b""

    @property
    def _stdin(self) -> IO[bytes]:
        assert self.proc.stdin is not None
        return self.proc.stdin

    def send(self, message: Answer) -> None:
        self._stdin.write(json.dumps(message, default=str).encode() + b"\n")
        self._stdin.flush()

    def receive(self, timeout: float) -> Answer | None:
        """The next answer; None when none came within `timeout` seconds or the child ended."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + timeout
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0 or not poller.poll(left * 1000):
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk or len(self.pending) > MAX_ANSWER:
                return None
            self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        answer: Answer = json.loads(line)
        return answer

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self._close_pipes()

    def close(self) -> None:
        try:
            self._stdin.close()  # the child's loop ends
            self.proc.wait(timeout=1)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self._close_pipes()

    def _close_pipes(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


class RenderPool:
    """Up to `size` children per process, shared by the threads that render."""

    def __init__(self, size: int = PROCESSES) -> None:
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._idle: list[_Child] = []
        self._pid = os.getpid()

    def _take(self) -> _Child:
        with self._lock:
            if self._pid != os.getpid():  # a forked process: those children are the parent's
                self._idle, self._pid = [], os.getpid()
            while self._idle:
                child = self._idle.pop()
                if child.alive():
                    return child
        return _Child()

    def _give_back(self, child: _Child) -> None:
        with self._lock:
            if child.alive() and self._pid == os.getpid():
                self._idle.append(child)
                return
        child.kill()

    def render(
        self, jobs: Sequence[Answer], context: dict[str, Any], *, stop_on_over: bool, deadline: Deadline | None
    ) -> list[Answer]:
        """One answer per job, in order (with `stop_on_over`, none after the first over-budget one; past the
        deadline, the rest are over budget without being rendered)."""
        if not self._slots.acquire(timeout=WAIT_SECONDS):
            return [_over(f"not rendered: the template renderer was busy for {WAIT_SECONDS:g} s") for _ in jobs]
        try:
            return self._render(jobs, context, stop_on_over, deadline)
        finally:
            self._slots.release()

    def _render(
        self, jobs: Sequence[Answer], context: dict[str, Any], stop_on_over: bool, deadline: Deadline | None
    ) -> list[Answer]:
        answers: list[Answer] = []
        while len(answers) < len(jobs) and not (stop_on_over and answers and "over" in answers[-1]):
            todo = jobs[len(answers) :]
            if deadline is not None and deadline.passed():
                answers += [_over(deadline.reason)] * (1 if stop_on_over else len(todo))
                break
            try:
                child = self._send(todo, context, stop_on_over, deadline)
            except OSError as exc:  # no child could be started
                answers += [_over(f"not rendered: the template renderer could not start ({exc})")] * len(todo)
                break
            answers += self._receive(child, len(todo), stop_on_over)
        return answers

    def _send(
        self, jobs: Sequence[Answer], context: dict[str, Any], stop_on_over: bool, deadline: Deadline | None
    ) -> _Child:
        """A child that took the batch (an idle child that ended meanwhile is replaced once)."""
        for attempt in (1, 2):
            child = self._take()
            child.batches += 1
            batch = {
                "b": child.batches,
                "context": context,
                "jobs": list(jobs),
                "stop_on_over": stop_on_over,
                "seconds": None if deadline is None else deadline.left(),
                "late": "" if deadline is None else deadline.reason,
            }
            try:
                child.send(batch)
                return child
            except OSError:
                child.kill()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _receive(self, child: _Child, count: int, stop_on_over: bool) -> list[Answer]:
        """The answers of the child's batch, each within KILL_AFTER_SECONDS: a child that takes longer, ends or
        answers out of turn is killed (its answer is over budget), and the rest of the batch goes to another."""
        answers: list[Answer] = []
        for _ in range(count):
            try:
                answer = child.receive(KILL_AFTER_SECONDS)
            except ValueError:  # not JSON: never trust that child again
                answer = None
            if answer is None or answer.pop("b", None) != child.batches:
                answers.append(_over(STOPPED if child.alive() else DIED))
                child.kill()
                return answers
            if answer.pop("fatal", False):
                answers.append(answer)
                child.close()
                return answers
            answers.append(answer)
            if stop_on_over and "over" in answer:
                break
        self._give_back(child)
        return answers

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for child in idle:
            child.close()


_POOL = RenderPool()
atexit.register(_POOL.close)


def render_jobs(
    jobs: Sequence[Answer], context: dict[str, Any], *, stop_on_over: bool = False, deadline: Deadline | None = None
) -> list[Answer]:
    """Render each job (`source`, `strict`, `check`) over `context` in a child process."""
    if not jobs:
        return []
    return _POOL.render(jobs, context, stop_on_over=stop_on_over, deadline=deadline)
