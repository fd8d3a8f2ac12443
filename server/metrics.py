"""Prometheus metrics, one registry per app so several apps (tests) never collide."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.predictions = Counter(
            "digitstream_predictions", "Snapshots answered with a prediction.", ["source"], registry=self.registry
        )
        self.empty_snapshots = Counter(
            "digitstream_empty_snapshots", "Blank snapshots answered without the model.", registry=self.registry
        )
        self.batch_size = Histogram(
            "digitstream_batch_size",
            "Snapshots per batch the worker takes from the queue, blank ones included.",
            buckets=BATCH_SIZE_BUCKETS,
            registry=self.registry,
        )
        self.queue_wait = Histogram(
            "digitstream_queue_wait_seconds",
            "Time from submit to the start of the item's batch.",
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.inference_time = Histogram(
            "digitstream_inference_seconds", "Model time per batch.", buckets=LATENCY_BUCKETS_S, registry=self.registry
        )
        self.latency = Histogram(
            "digitstream_snapshot_latency_seconds",
            "Time from a snapshot's arrival to its answer.",
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "digitstream_queue_depth", "Items waiting in the batching queue.", registry=self.registry
        )
        self.connections = Gauge(
            "digitstream_open_connections", "Open WebSockets: drawing pads and dashboards.", registry=self.registry
        )
        self.coalesced = Counter(
            "digitstream_coalesced_snapshots",
            "Snapshots replaced by a newer one of the same connection before being classified.",
            registry=self.registry,
        )
        self.paced_text_frames = Counter(
            "digitstream_paced_text_frames",
            "Text frames read late because their connection sent them faster than --max-control-rate.",
            registry=self.registry,
        )
        self.errors = Counter(
            "digitstream_errors", "Errors sent to clients, by code.", ["code"], registry=self.registry
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
