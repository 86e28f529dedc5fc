"""Prometheus metrics, all named `santamon_*`, in a registry owned by one app.

A registry per app (not the process-global default) keeps tests independent and lets two
apps live in one process. Values that are cheap to read at scrape time (agents by status,
database size) are set by the /metrics handler just before rendering.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from santamon import __version__

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Ingest outcomes per signal, and the reasons a whole /ingest request is refused.
STORED, DUPLICATE = "stored", "duplicate"
REJECT_REASONS = {
    400: "malformed",
    401: "unauthorized",
    403: "forbidden",
    408: "timeout",
    413: "too_large",
    422: "invalid",
    429: "rate_limited",
    499: "client_closed",
    503: "unavailable",
}

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
INGEST_ROUTE = "/ingest"
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500)
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class RequestSeries(Collector):
    """`santamon_http_requests_total{route,method,status}` and
    `santamon_http_request_duration_seconds{route,method}`, kept in plain lists rather than
    prometheus_client's counters and histograms: these move on every request (every agent's
    heartbeat), and those take a lock and check their state on each update (issue 15).
    Updated on the event loop only; a scrape reads a copy of each series."""

    def __init__(self) -> None:
        # (route, method, status) -> [sum of seconds, then one count per bucket and +Inf]
        self._series: dict[tuple[str, str, int], list[float]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        series = self._series.get((route, method, status))
        if series is None:
            series = self._series[(route, method, status)] = [0.0] * (len(LATENCY_BUCKETS) + 2)
        series[0] += seconds
        series[1 + bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1  # le: bound included

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        requests, latency = self._families()
        by_route: dict[tuple[str, str], list[float]] = {}
        for (route, method, status), series in list(self._series.items()):
            series = list(series)
            requests.add_metric([route, method, str(status)], sum(series[1:]))
            total = by_route.setdefault((route, method), [0.0] * len(series))
            for index, value in enumerate(series):
                total[index] += value
        bounds = [floatToGoString(bound) for bound in (*LATENCY_BUCKETS, math.inf)]
        for (route, method), total in by_route.items():
            latency.add_metric([route, method],
                               list(zip(bounds, itertools.accumulate(total[1:]), strict=True)),
                               total[0])
        return iter((requests, latency))

    @staticmethod
    def _families() -> tuple[CounterMetricFamily, HistogramMetricFamily]:
        return (CounterMetricFamily("santamon_http_requests",
                                    "HTTP requests by route, method and status code.",
                                    labels=["route", "method", "status"]),
                HistogramMetricFamily("santamon_http_request_duration_seconds",
                                      "Time from receiving a request to having its response "
                                      "ready, by route.", labels=["route", "method"]))


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(namespace="santamon", registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)

        Gauge("santamon_build_info", "Version of this server.", ["version"], registry=r).labels(
            version=__version__
        ).set(1)
        self.ingest = Counter(
            "santamon_ingest_signals",
            "Signals accepted on /ingest by outcome (stored, duplicate).",
            ["outcome"],
            registry=r,
        )
        self.ingest_rejected = Counter(
            "santamon_ingest_rejected",
            "Requests to /ingest refused, by reason (malformed, invalid, too_large, "
            "unauthorized, forbidden, rate_limited, timeout, client_closed, unavailable, "
            "error).",
            ["reason"],
            registry=r,
        )
        self.requests = RequestSeries()
        r.register(self.requests)
        self.auth_failures = Counter(
            "santamon_auth_failures",
            "Failed authentications by reason (missing, invalid, rate_limited).",
            ["reason"],
            registry=r,
        )
        self.agent_key_misuse = Counter(
            "santamon_agent_key_misuse",
            "Requests refused because a key bound to one host named another, by endpoint.",
            ["endpoint"],
            registry=r,
        )
        self.new_agents_throttled = Counter(
            "santamon_new_agents_throttled",
            "Requests refused because their key brought too many new agent ids in an hour.",
            registry=r,
        )
        self.agent_key_failures = Counter(
            "santamon_agent_key_failures",
            "Requests to the agent endpoints refused for their key, by reason (missing, "
            "invalid: wrong or revoked, rate_limited).",
            ["reason"],
            registry=r,
        )
        self.tls_handshake_failures = Counter(
            "santamon_tls_handshake_failures",
            "Failed TLS handshakes, by reason (untrusted_certificate, http_on_https, "
            "protocol_version, no_shared_cipher, not_tls, other).",
            ["reason"],
            registry=r,
        )
        self.ingest_shortened = Counter(
            "santamon_ingest_shortened",
            "Signals stored shortened instead of refused, by what was cut (context, title, "
            "rule_description, tags).",
            ["field"],
            registry=r,
        )
        self.write_batch = Histogram(
            "santamon_store_write_batch_size",
            "Operations committed per group commit by the store's writer.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.commit_seconds = Histogram(
            "santamon_store_commit_seconds",
            "Time one group commit of the store's writer took.",
            buckets=COMMIT_BUCKETS,
            registry=r,
        )
        self.signals = Gauge(
            "santamon_signals", "Stored signals by triage status.", ["status"], registry=r
        )
        self.open_signals = Gauge(
            "santamon_open_signals", "Signals still open, by severity (silenced ones left out).",
            ["severity"], registry=r
        )
        self.agents = Gauge("santamon_agents", "Known agents by status.", ["status"], registry=r)
        self.forward_backlog = Gauge(
            "santamon_forward_backlog",
            "Signals at or above the forwarding severity not yet shipped to the sinks.",
            registry=r,
        )
        self.db_size = Gauge(
            "santamon_database_size_bytes",
            "Size of the database files (main file, WAL and shared memory).",
            registry=r,
        )
        self._ingest_children: tuple[Any, Any] | None = None  # (stored, duplicate)
        self.log_records_dropped = Gauge(
            "santamon_log_records_dropped",
            "Log records dropped since the start because the log stream did not keep up.",
            registry=r,
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """One request answered."""
        self.requests.observe(route, method, status, seconds)
        if route == INGEST_ROUTE and status >= 400:
            self.count_ingest_rejected(status)

    def count_ingest(self, stored: int, duplicates: int) -> None:
        if self._ingest_children is None:  # on first use: no ingest, no series
            self._ingest_children = (self.ingest.labels(outcome=STORED),
                                     self.ingest.labels(outcome=DUPLICATE))
        self._ingest_children[0].inc(stored)
        self._ingest_children[1].inc(duplicates)

    def count_ingest_rejected(self, status: int) -> None:
        self.ingest_rejected.labels(reason=REJECT_REASONS.get(status, "error")).inc()

    def observe_commit(self, batch_size: int, seconds: float) -> None:
        """Hook for the store's writer, called once per group commit."""
        self.write_batch.observe(batch_size)
        self.commit_seconds.observe(seconds)

    def watch(self, collector: Collector) -> None:
        """Also expose what `collector` reports at scrape time (the jobs, the forwarder)."""
        self.registry.register(collector)

    def render(self) -> bytes:
        return generate_latest(self.registry)
