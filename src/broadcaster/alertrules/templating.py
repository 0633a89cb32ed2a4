"""Alert rule templates: sandboxed Jinja2 rendered under a hard budget.

Alert senders control the labels and annotations rendered, and operators write the templates, so neither may
reach Python internals (`jinja2.sandbox`), nor spend unbounded CPU or memory: templates compile here (a syntax
check) and render in a child process under the budget of `template_budget` (loops, repetition, sizes, time),
with the process's own memory and time limits behind it (`sandbox_process`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from jinja2 import TemplateError

from broadcaster.alertrules import sandbox_process
from broadcaster.alertrules.sandbox_process import Deadline
from broadcaster.alertrules.template_budget import MAX_OUTPUT, environment

__all__ = ["MAX_RENDERED", "Deadline", "OverBudget", "TemplateProblem", "compile_template", "render", "render_many"]

#: longest rendered text kept (a template looping over thousands of alerts stops here)
MAX_RENDERED = MAX_OUTPUT


class TemplateProblem(ValueError):
    """A template that does not compile or render."""


class OverBudget(TemplateProblem):
    """A template that went over its render budget; `reason` says how ("loops more than 100000 times")."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@lru_cache(maxsize=512)
def compile_template(source: str, strict: bool = False) -> Any:
    """The compiled template; TemplateProblem (a ValueError) naming the syntax error. Compiling runs nothing of
    the template: every operator and filter that could grow is left to the render, under its budget."""
    try:
        return environment(strict).from_string(source)
    except TemplateError as exc:
        raise TemplateProblem(f"template error: {exc}") from exc
    except RecursionError as exc:
        raise TemplateProblem("template error: nested too deeply") from exc


def _result(answer: dict[str, Any]) -> str | TemplateProblem:
    if "text" in answer:
        return str(answer["text"])
    if "over" in answer:
        return OverBudget(str(answer["over"]))
    return TemplateProblem(str(answer.get("error", "the template could not be rendered")))


def render_many(
    sources: Sequence[str],
    context: dict[str, Any],
    *,
    strict: bool = False,
    check: bool = False,
    deadline: Deadline | None = None,
) -> list[str | TemplateProblem]:
    """Render each source over `context` (one round trip to the rendering process): each result is the text,
    stripped and cut at MAX_RENDERED characters, or the problem (OverBudget when over the budget).

    `check` is the upload check on sample alerts: output longer than MAX_RENDERED is over budget, and rendering
    stops at the first template over budget (the list is then shorter). Past `deadline` (many renders sharing
    one limit), the sources not yet rendered are OverBudget without being run."""
    jobs = [{"source": source, "strict": strict, "check": check} for source in sources]
    answers = sandbox_process.render_jobs(jobs, context, stop_on_over=check, deadline=deadline)
    return [_result(a) for a in answers]


def render(source: str, context: dict[str, Any], *, strict: bool = False) -> str:
    """Render one template (see render_many); raises its TemplateProblem."""
    (result,) = render_many([source], context, strict=strict)
    if isinstance(result, TemplateProblem):
        raise result
    return result
