"""Public-surface tables (banner sites). Owned by the public surfaces."""

from __future__ import annotations
