"""Prometheus metrics, in a registry owned by the app (no process-global state).

With ``--workers N`` the main process names a directory in ``PROMETHEUS_MULTIPROC_DIR`` before the front ends
start: prometheus_client then keeps every counter and histogram in files there, and ``/metrics`` answers the sum
over all front ends, whichever one is asked (the queue depth too: the sum over the live ones). What the adapters
and the bundle are is the same in every front end (the engine core announces it): those gauges come from the
answering process's own view, never from the files (a removed language would stay there)."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
SHARED_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own variable, read when it is imported


class AdapterGauges(Collector):
    """The served adapters and the bundle as this process last saw them."""

    def __init__(self) -> None:
        self.served: dict[str, str] = {}
        self.bundle: dict[str, str] | None = None
        self.state: dict[str, Any] | None = None
        self.lock = threading.Lock()  # the event loop and worker threads may both show adapter changes

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.lock:
            served, bundle, state = dict(self.served), self.bundle, self.state
        yield GaugeMetricFamily("lslo_loaded_languages", "languages with a loaded adapter", value=len(served))
        sha = GaugeMetricFamily(
            "lslo_adapter_sha256",
            "1 per language: the sha256 of the adapter served and of the "
            "bundle's file (empty where there is none; the bundle's only with polling)",
            labels=["language", "served", "bundle"],
        )
        for code in sorted(set(served) | set(bundle or {})):
            sha.add_metric([code, served.get(code, ""), (bundle or {}).get(code, "")], 1)
        yield sha
        if state is None:  # registered once the service follows a bundle
            return
        revision = state["revision"] if state["revision"] is not None else -1
        yield GaugeMetricFamily(
            "lslo_bundle_revision", "the bundle manifest's revision at the last poll", value=revision
        )
        yield GaugeMetricFamily(
            "lslo_bundle_in_sync",
            "1 when this replica serves exactly what the bundle holds "
            "and every file of it checks out (at the last poll)",
            value=1 if state["in_sync"] else 0,
        )
        yield GaugeMetricFamily(
            "lslo_bundle_refused_languages", "bundle languages refused at the last poll", value=len(state["refused"])
        )


class Metrics:
    def __init__(self) -> None:
        shared = os.environ.get(SHARED_DIR)
        self.shared_dir = Path(shared) if shared else None
        if self.shared_dir is not None:
            forget_dead_processes(self.shared_dir)
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "lslo_http_requests", "HTTP requests by route and status", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            "lslo_http_request_seconds", "HTTP request latency", ["route"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.items = Counter("lslo_translated_items", "texts translated", ["source", "target"], registry=r)
        self.batch_rows = Histogram(
            "lslo_batch_rows", "rows taken into the decoding engine together", buckets=BATCH_BUCKETS, registry=r
        )
        self.batch_seconds = Histogram(
            "lslo_batch_seconds",
            "time per decoding step (each running row: one token)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "lslo_queue_rows",
            "rows waiting for admission into the decoding engine",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.rejected = Counter("lslo_rejected_requests", "requests refused before model work", ["reason"], registry=r)
        self.batch_splits = Counter("lslo_batch_splits", "batches split after a failure", ["reason"], registry=r)
        self.swaps = Counter(
            "lslo_adapter_swaps", "adapter loads, replacements and removals", ["action", "result"], registry=r
        )
        self.adapters = AdapterGauges()
        r.register(self.adapters)

    def show_adapters(
        self, served: dict[str, str], bundle: dict[str, str] | None, state: dict[str, Any] | None
    ) -> None:
        with self.adapters.lock:
            self.adapters.served, self.adapters.bundle = dict(served), dict(bundle) if bundle is not None else None
            self.adapters.state = state

    def render(self) -> bytes:
        if self.shared_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()  # every front end's counters from the files, this one's adapter view
        multiprocess.MultiProcessCollector(registry, str(self.shared_dir))
        registry.register(self.adapters)
        return generate_latest(registry)


def forget_dead_processes(directory: Path) -> None:
    """Drop the live-gauge files of front ends that have exited (a restarted worker leaves its queue depth
    behind otherwise); their counters stay in the sums."""
    for path in directory.glob("gauge_live*_*.db"):
        found = re.search(r"_(\d+)\.db$", path.name)
        if found is None:
            continue
        pid = int(found.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, str(directory))
        except PermissionError:  # alive, another user's
            pass
