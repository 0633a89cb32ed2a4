"""How areas plug into the delivery engine (broadcaster.hooks): an update with an area reaches only the
subscribers located inside it."""

from __future__ import annotations

from broadcaster import hooks
from broadcaster.areas.service import area_condition

hooks.audience_filters.register(area_condition)
