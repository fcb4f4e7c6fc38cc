"""Prometheus metrics of one service: prometheus_client families in a registry of their own.

Call sites name a metric and its labels; the family is created on first use (labels sorted), so
`metrics.inc("leases_granted")` or `metrics.set("position", 12, stream="DIGITS_MODELS")` need no
declaration. One `CollectorRegistry` per `Metrics`: several services (or brokers) in one test
process never collide. Counters are exposed with prometheus_client's `_total` suffix.

The runtime's own instruments (command latency in `_micro`, events appended in `_store`, ticket
durations and redeliveries in `_work`) find the service's `Metrics` through its NATS connection:
`ServiceHost` binds them with `bind(nc, metrics)`; a connection bound to none records nothing.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase

# HELP text of the metrics the runtime and the services record; `describe()` adds others.
HELP = {
    # runtime
    "command_seconds": "Time to handle one NATS command, by endpoint and outcome",
    "events_appended": "Events appended to a JetStream stream, by stream and event type",
    "ticket_seconds": "Time to handle one work ticket, by consumer and outcome",
    "ticket_redeliveries": "Work tickets received again after an earlier delivery",
    "up": "1 while the service runs",
    "ready": "1 when the service is ready (consumers running, JetStream reachable)",
    # gateway
    "commands": "Commands sent to the services, by subject and outcome",
    "events_applied": "Events applied to the read model, by stream",
    "events_failed": "Events the read model could not apply, by stream",
    "position": "Last stream sequence applied to the read model",
    "sse_streams": "Open server-sent event streams",
    # gpu-broker
    "leases_granted": "Device leases granted",
    "leases_released": "Device leases released by their holder",
    "leases_ended_seen": "Lease ends seen by the expiry sweep",
    "acquire_busy": "Lease requests answered busy (the job waits)",
    "claims_lost": "Device claims lost to another broker",
    "dead_node_leases_expired": "Leases of a dead node ended by this broker",
    "devices_leased": "Devices of this node under lease",
    "devices_cordoned": "Devices of this node cordoned (never granted)",
    "queue_length": "Jobs waiting for devices",
    # inference
    "classifications": "Images classified",
    "nets_loaded": "Networks loaded into the cache",
    "cache_bytes": "Bytes of networks held in the cache",
    "cache_networks": "Networks held in the cache",
}

# Seconds: from a fast command (ms) to a long ticket (a training run, hours).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200)


class Metrics:
    """Counters, gauges and histograms of one service, rendered by prometheus_client."""

    def __init__(self, prefix: str):
        self.prefix = prefix.replace("-", "_")
        self.registry = CollectorRegistry()
        self._families: dict[str, MetricWrapperBase] = {}
        self._help: dict[str, str] = {}
        self._on_render: list[Callable[[], None]] = []

    def describe(self, name: str, text: str) -> None:
        """Set a metric's HELP text (before its first use)."""
        self._help[name] = text

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        """Add to a counter."""
        self._child(Counter, name, labels).inc(amount)

    def set(self, name: str, value: float, **labels: str) -> None:
        """Set a gauge."""
        self._child(Gauge, name, labels).set(value)

    def observe(self, name: str, value: float, **labels: str) -> None:
        """Record one observation (seconds, usually) in a histogram."""
        self._child(Histogram, name, labels).observe(value)

    @contextlib.contextmanager
    def timer(self, name: str, **labels: str) -> Iterator[dict[str, str]]:
        """Observe the block's duration; the yielded dict may add labels (an outcome)."""
        start = time.perf_counter()
        extra: dict[str, str] = {}
        try:
            yield extra
        finally:
            self.observe(name, time.perf_counter() - start, **labels, **extra)

    def value(self, name: str, **labels: str) -> float | None:
        """The current value of a counter or gauge (None if never recorded): for tests."""
        family = self._families.get(name)
        suffix = "_total" if isinstance(family, Counter) else ""
        return self.registry.get_sample_value(f"{self.prefix}_{name}{suffix}", labels)

    def on_render(self, update: Callable[[], None]) -> None:
        """Call `update()` before each rendering: gauges read from the service's state at scrape
        time (cache bytes, running jobs) rather than kept current on every change."""
        self._on_render.append(update)

    def render(self) -> str:
        """The exposition text (HELP and TYPE for every family)."""
        for update in self._on_render:
            update()
        return generate_latest(self.registry).decode()

    def _child(self, kind: type[MetricWrapperBase], name: str, labels: dict[str, str]) -> Any:
        family = self._families.get(name)
        if family is None:
            text = self._help.get(name) or HELP.get(name) or name.replace("_", " ")
            extra: dict[str, Any] = {"buckets": BUCKETS} if kind is Histogram else {}
            family = kind(
                name,
                text,
                labelnames=sorted(labels),
                namespace=self.prefix,
                registry=self.registry,
                **extra,
            )
            self._families[name] = family
        elif not isinstance(family, kind):
            raise ValueError(f"metric {name!r} is a {type(family).__name__}, not a {kind.__name__}")
        return family.labels(**labels) if labels else family


_BOUND: weakref.WeakKeyDictionary[Any, Metrics] = weakref.WeakKeyDictionary()


def bind(nc: Any, metrics: Metrics) -> None:
    """Record the runtime's instruments for connection `nc` into `metrics`."""
    _BOUND[nc] = metrics


def metrics_for(nc: Any) -> Metrics | None:
    """The `Metrics` bound to a NATS connection, if any."""
    try:
        return _BOUND.get(nc)
    except TypeError:  # not weak-referenceable (a test double): nothing to record into
        return None
