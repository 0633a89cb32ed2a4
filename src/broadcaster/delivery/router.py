"""HTTP endpoints of the delivery package."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
