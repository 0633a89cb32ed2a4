"""What the template budget costs an ordinary alert: each ordinary rule template rendered 1,000 times before
(Jinja2's sandbox, in the API process) and after (the budgeted sandbox alone, and the whole path: a round trip
to the rendering child process), plus one alert's five templates in one round trip, and a child's start.

    .venv/bin/python bench/template_budget.py [--n 1000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from jinja2 import Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from broadcaster.alertrules import sandbox_process
from broadcaster.alertrules.template_budget import environment, render_text
from broadcaster.alertrules.template_check import sample_contexts
from broadcaster.alertrules.templating import render_many

TEMPLATES = {
    "title": "{{ labels.service }} is down",
    "body": "{{ annotations.summary }} ({{ alerts | length }} instance{{ 's' if alerts | length != 1 }})",
    "loop": "{% for a in alerts %}{{ a.annotations.summary }}\n{% endfor %}",
}
RULE = [
    "{{ labels.service }} is down",
    "{{ labels.service }}",
    "{{ annotations.summary }} ({{ alerts | length }} instance{{ 's' if alerts | length != 1 }})",
    "{{ labels.service }} down",
    "{{ labels.service }} is back.",
]


def per_call_us(fn, n: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    n = parser.parse_args().n
    ctx = dict(sample_contexts())["Alertmanager (3 alerts)"]
    before = ImmutableSandboxedEnvironment(autoescape=False, undefined=Undefined, trim_blocks=True, lstrip_blocks=True)

    start = time.perf_counter()
    render_many(["{{ 1 }}"], ctx)
    print(f"child process start (first render): {(time.perf_counter() - start) * 1000:.0f} ms")

    print(f"{'template':8} {'before (µs)':>12} {'sandbox only':>13} {'whole path':>11}")
    for name, source in TEMPLATES.items():
        old = before.from_string(source)
        new = environment().from_string(source)
        b = per_call_us(lambda old=old: old.render(**ctx).strip()[:20_000], n)
        s = per_call_us(lambda new=new: render_text(new, ctx, check=False), n)
        w = per_call_us(lambda source=source: render_many([source], ctx), n)
        print(f"{name:8} {b:12.1f} {s:13.1f} {w:11.1f}")
    olds = [before.from_string(s) for s in RULE]
    b = per_call_us(lambda: [t.render(**ctx) for t in olds], n)
    cpu = time.process_time()
    w = per_call_us(lambda: render_many(RULE, ctx), n)
    cpu = (time.process_time() - cpu) / (n + 1) * 1e6
    print(f"one alert's 5 templates: before {b:.1f} µs, after {w:.1f} µs (one round trip; {cpu:.0f} µs of it is")
    print("  CPU in this process, the rest the child's work and the hand-over)")
    sandbox_process.render_jobs([], {})


if __name__ == "__main__":
    main()
