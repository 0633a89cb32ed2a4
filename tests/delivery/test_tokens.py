"""Signed link tokens: the generated key is created once, even by processes starting together."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path


def _read_key(path: str, start, out) -> None:
    from broadcaster.signing import _persisted_key

    start.wait()
    out.put(_persisted_key(path))


def test_processes_starting_together_agree_on_the_generated_key(tmp_path: Path):
    ctx = mp.get_context("fork")
    path = str(tmp_path / "var" / "secret_key")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_read_key, args=(path, start, out)) for _ in range(6)]
    for p in procs:
        p.start()
    start.set()
    keys = {out.get(timeout=30) for _ in procs}
    for p in procs:
        p.join(timeout=30)
    assert len(keys) == 1 and len(next(iter(keys))) >= 64
    assert (Path(path).stat().st_mode & 0o777) == 0o600
    assert [f.name for f in Path(path).parent.iterdir()] == ["secret_key"]  # no temp files left


def test_tokens_carry_their_purpose_and_refuse_tampering():
    from broadcaster.signing import sign, verify

    token = sign("unsubscribe", {"s": 7, "c": "email"})
    assert verify("unsubscribe", token) == {"s": 7, "c": "email"}
    assert verify("confirm", token) is None
    body, _, mac = token.rpartition(".")
    assert verify("unsubscribe", body + "." + mac[::-1]) is None
    assert verify("unsubscribe", "garbage") is None
