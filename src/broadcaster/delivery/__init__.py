"""The delivery engine: broadcasts fanned out into per-recipient deliveries, workers that claim them (leases,
priority lanes, rate limits), retries, provider receipts, reports, ETAs and metrics. It knows features only through
hooks (broadcaster.hooks)."""
