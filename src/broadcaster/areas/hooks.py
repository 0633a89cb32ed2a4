"""How areas plug into the delivery engine and publishing (broadcaster.hooks): an update with an area reaches only the
subscribers located inside it, and an approval binds each named area's geometry version."""

from __future__ import annotations

from broadcaster import hooks
from broadcaster.areas.service import area_binding, area_condition

hooks.audience_filters.register(area_condition)
hooks.content_binding.register(area_binding)
