"""The Jinja2 environment of the public pages (package templates, autoescape always on)."""

from __future__ import annotations

from functools import lru_cache

from jinja2 import Environment, PackageLoader, select_autoescape


@lru_cache(maxsize=1)
def env() -> Environment:
    environment = Environment(
        loader=PackageLoader("broadcaster.public", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    from broadcaster.public.render import PALETTE

    environment.globals["palette"] = PALETTE
    return environment
