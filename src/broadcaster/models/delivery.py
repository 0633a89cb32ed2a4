"""Delivery-engine tables (subscribers, broadcasts, deliveries, receipts). Owned by the delivery engine."""

from __future__ import annotations
