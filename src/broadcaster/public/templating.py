"""The Jinja2 environment of the public pages (package templates, autoescape always on)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape


def _finalize(value: Any) -> Any:
    """Every `{{ ... }}` of a public page passes here: bidi controls removed (broadcaster.bidi)."""
    from broadcaster.bidi import strip_bidi

    return strip_bidi(value) if isinstance(value, str) else value


@lru_cache(maxsize=1)
def env() -> Environment:
    environment = Environment(
        loader=PackageLoader("broadcaster.public", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_finalize,
    )
    from broadcaster.public.palette import PALETTE

    environment.globals["palette"] = PALETTE
    from broadcaster import webpage

    #: the public stylesheet, shared with the resident pages (answer, confirm, unsubscribe)
    environment.globals["public_css"] = webpage.stylesheet()
    return environment
