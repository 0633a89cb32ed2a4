"""HTTP endpoints of the public package."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
