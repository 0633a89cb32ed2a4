"""Per-channel, per-locale rendering of updates: templates, markers and length-aware fitting."""

from broadcaster.rendering.compose import (
    Rendered,
    length_rule,
    render_update,
    resolve_target,
    voice_language,
)
from broadcaster.rendering.templates import TemplateError

__all__ = [
    "Rendered",
    "TemplateError",
    "length_rule",
    "render_update",
    "resolve_target",
    "voice_language",
]
