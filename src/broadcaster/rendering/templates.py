"""The operator-editable Jinja2 templates (TEMPLATES_DIR) and the label catalogue (labels.yaml).

Undefined variables are errors (StrictUndefined) so a typo in a template fails at preview time with a
422 naming the template and the variable, never silently at send time. Only HTML is autoescaped.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import yaml

from broadcaster.errors import Unprocessable


class TemplateError(Unprocessable):
    """A template failed to render (undefined variable, syntax error, missing file)."""

    code = "template_error"


@lru_cache(maxsize=8)
def environment(templates_dir: str) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=True,
    )


def template_exists(templates_dir: Path, name: str) -> bool:
    return (templates_dir / name).is_file()


def render_template(templates_dir: Path, name: str, context: dict[str, Any]) -> str:
    """Render `name` with `context`; any template problem becomes a `TemplateError` naming it."""
    env = environment(str(templates_dir))
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateSyntaxError as exc:
        where = exc.name or name
        raise TemplateError(
            f"template {where} line {exc.lineno}: {exc.message}", field=f"templates/{where}", template=where
        ) from exc
    except jinja2.UndefinedError as exc:
        raise TemplateError(
            f"template {name}: {exc.message} (a variable the template uses is not provided)",
            field=f"templates/{name}",
            template=name,
            variable=_variable(exc.message),
        ) from exc
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(f"template {exc.name} not found in {templates_dir}", field=f"templates/{exc.name}") from exc


def _variable(message: str | None) -> str | None:
    """Pull the variable name out of jinja's "'x' is undefined" / "'dict object' has no attribute 'x'"."""
    if not message:
        return None
    parts = message.split("'")
    return parts[-2] if len(parts) >= 3 else None


@lru_cache(maxsize=8)
def _load_labels(path: str, mtime: float) -> dict[str, dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise TemplateError(f"{path} must map locales to labels", field="templates/labels.yaml")
    return data


def labels_catalogue(templates_dir: Path) -> dict[str, dict[str, Any]]:
    path = templates_dir / "labels.yaml"
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError as exc:
        raise TemplateError(f"{path} is missing", field="templates/labels.yaml") from exc
    return _load_labels(str(path), mtime)


def labels_for(templates_dir: Path, locale: str, fallback: str = "en") -> tuple[dict[str, Any], str]:
    """The label block for `locale` (or its language, or `fallback`) and the locale actually used."""
    catalogue = labels_catalogue(templates_dir)
    for candidate in (locale, locale.split("-")[0], fallback, "en"):
        if candidate in catalogue:
            return catalogue[candidate], candidate
    raise TemplateError(f"labels.yaml has no block for {locale!r} nor {fallback!r}", field="templates/labels.yaml")
