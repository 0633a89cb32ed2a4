"""How services plug into publishing (broadcaster.hooks): a published update changes the service states it names,
and resolving returns the incident's services to operational."""

from __future__ import annotations

from broadcaster import hooks
from broadcaster.services.service import apply_published

hooks.update_published.register(apply_published)
