"""Delivery engine: subscribers, broadcasts, deliveries, workers, retries, receipts."""
