"""HTTP endpoints of the channels package."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
