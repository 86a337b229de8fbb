"""Prometheus metrics, in a registry owned by the app (no process-global state)."""

from __future__ import annotations

import threading
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("lslo_http_requests", "HTTP requests by route and status", ["route", "status"],
                                registry=r)
        self.latency = Histogram("lslo_http_request_seconds", "HTTP request latency", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.items = Counter("lslo_translated_items", "texts translated", ["source", "target"], registry=r)
        self.batch_rows = Histogram("lslo_batch_rows", "rows taken into the decoding engine together",
                                    buckets=BATCH_BUCKETS,
                                    registry=r)
        self.batch_seconds = Histogram("lslo_batch_seconds", "time per decoding step (each running row: one token)",
                                       buckets=LATENCY_BUCKETS,
                                       registry=r)
        self.queue_depth = Gauge("lslo_queue_rows", "rows waiting for admission into the decoding engine", registry=r)
        self.rejected = Counter("lslo_rejected_requests", "requests refused before model work", ["reason"],
                                registry=r)
        self.batch_splits = Counter("lslo_batch_splits", "batches split after a failure", ["reason"], registry=r)
        self.swaps = Counter("lslo_adapter_swaps", "adapter loads, replacements and removals", ["action", "result"],
                             registry=r)
        self.languages = Gauge("lslo_loaded_languages", "languages with a loaded adapter", registry=r)
        self.adapter_sha = Gauge("lslo_adapter_sha256", "1 per language: the sha256 of the adapter served and of "
                                 "the bundle's file (empty where there is none; the bundle's only with polling)",
                                 ["language", "served", "bundle"], registry=r)
        self._bundle: dict[str, Gauge] | None = None  # registered once the service follows a bundle
        self._lock = threading.Lock()  # the event loop and worker threads may both show adapter changes

    def show_adapters(self, served: dict[str, str], bundle: dict[str, str] | None,
                      state: dict[str, Any] | None) -> None:
        with self._lock:
            self.adapter_sha.clear()
            for code in sorted(set(served) | set(bundle or {})):
                self.adapter_sha.labels(language=code, served=served.get(code, ""),
                                        bundle=(bundle or {}).get(code, "")).set(1)
            if state is None:
                return
            if self._bundle is None:
                r = self.registry
                self._bundle = {
                    "revision": Gauge("lslo_bundle_revision", "the bundle manifest's revision at the last poll",
                                      registry=r),
                    "in_sync": Gauge("lslo_bundle_in_sync", "1 when this replica serves exactly what the bundle "
                                     "holds and every file of it checks out (at the last poll)", registry=r),
                    "refused": Gauge("lslo_bundle_refused_languages", "bundle languages refused at the last poll",
                                     registry=r),
                }
            self._bundle["revision"].set(state["revision"] if state["revision"] is not None else -1)
            self._bundle["in_sync"].set(1 if state["in_sync"] else 0)
            self._bundle["refused"].set(len(state["refused"]))

    def render(self) -> bytes:
        return generate_latest(self.registry)
