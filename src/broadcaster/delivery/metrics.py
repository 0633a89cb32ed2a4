"""Prometheus metrics of the delivery engine (prometheus-client).

Counters and the latency histogram live in the process that sends (the API process with the in-process
worker, or each `broadcaster worker`, which serves them on WORKER_METRICS_PORT). Set
PROMETHEUS_MULTIPROC_DIR to aggregate several processes on one host through `/metrics`. The queue-depth
gauge is read from the database at scrape time, so it is right whichever process answers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector
from sqlalchemy import func, select

DELIVERIES = Counter("broadcaster_deliveries_total", "Delivery outcomes by channel and status", ["channel", "status"])
SEND_LATENCY = Histogram(
    "broadcaster_send_seconds",
    "Provider call latency per adapter (one call may carry a batch of recipients)",
    ["adapter"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


class QueueDepthCollector(Collector):
    """`broadcaster_queue_depth{channel}`: pending deliveries, counted in the database at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from broadcaster.db import get_sessionmaker
        from broadcaster.models.delivery import Delivery

        gauge = GaugeMetricFamily("broadcaster_queue_depth", "Pending deliveries per channel", labels=["channel"])
        try:
            with get_sessionmaker()() as session:
                rows = session.execute(
                    select(Delivery.channel, func.count())
                    .where(Delivery.status == "pending")
                    .group_by(Delivery.channel)
                ).all()
        except Exception:  # a scrape must not fail because the database is down; /readyz reports that
            rows = []
        for channel, n in rows:
            gauge.add_metric([channel], int(n))
        yield gauge


_queue_collector: QueueDepthCollector | None = None


def render() -> tuple[bytes, str]:
    """The exposition text for `/metrics` and its content type."""
    global _queue_collector
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(QueueDepthCollector())
        return generate_latest(registry), CONTENT_TYPE_LATEST
    if _queue_collector is None:
        _queue_collector = QueueDepthCollector()
        REGISTRY.register(_queue_collector)
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
