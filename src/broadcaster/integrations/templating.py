"""Sandboxed Jinja2 for alert rule templates: alert senders control the labels and annotations rendered, and
operators write the templates, so neither may reach Python internals (`jinja2.sandbox`)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

#: longest rendered text kept (a template looping over thousands of alerts stops here)
MAX_RENDERED = 20_000


class TemplateProblem(ValueError):
    """A template that does not compile or render."""


@lru_cache(maxsize=1)
def _env() -> ImmutableSandboxedEnvironment:
    # text, not HTML: channels escape what they put into HTML; missing labels render empty
    return ImmutableSandboxedEnvironment(autoescape=False, undefined=Undefined, trim_blocks=True, lstrip_blocks=True)


@lru_cache(maxsize=1)
def _strict_env() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(autoescape=False, undefined=StrictUndefined)


@lru_cache(maxsize=512)
def compile_template(source: str, strict: bool = False) -> Any:
    """The compiled template; TemplateProblem (a ValueError) naming the syntax error."""
    try:
        return (_strict_env() if strict else _env()).from_string(source)
    except TemplateError as exc:
        raise TemplateProblem(f"template error: {exc}") from exc


def render(source: str, context: dict[str, Any], *, strict: bool = False) -> str:
    """Render `source` over `context`, stripped and capped at MAX_RENDERED characters."""
    try:
        text = compile_template(source, strict).render(**context)
    except TemplateError as exc:  # includes SecurityError and UndefinedError
        raise TemplateProblem(str(exc)) from exc
    return text.strip()[:MAX_RENDERED]
