"""The service's state, kept on the app (``app.state.service``): settings, the front end's view of the model, the
engine core's client, the adapter manager, metrics."""

from __future__ import annotations

import multiprocessing as mp
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.core import messages as m
from server.core.client import CoreClient
from server.documents.store import FileStore
from server.runtime.adapter_manager import AdapterManager
from server.runtime.bundle_sync import BundleSync, BundleView, bundle_report
from server.runtime.decoding import SentenceDecoder
from server.runtime.front_end import FrontEnd
from server.runtime.glossary_store import GlossaryStore
from server.runtime.metrics import Metrics
from server.runtime.ratelimit import TokenBuckets
from server.runtime.translator import TextTranslator
from server.settings import ServerSettings
from server.text.detect import Detector


@dataclass
class Service:
    settings: ServerSettings
    front: FrontEnd
    core_process: mp.process.BaseProcess | None = None  # a core started before the app (python -m server)
    shared_core: Path | None = None  # the directory of a core another process owns (--workers N)
    metrics: Metrics = field(default_factory=Metrics)
    adapter_table: list[dict[str, Any]] = field(default_factory=list)
    sync: BundleSync | None = None
    bundle_state: dict[str, Any] | None = None
    replica: str = field(default_factory=lambda: uuid.uuid4().hex[:12])  # X-LSLO-Replica: which process answered

    def __post_init__(self) -> None:
        s = self.settings
        self.rate_limits = TokenBuckets(s.rate_limit_per_minute)
        self.files = FileStore(s.files_dir, s.file_ttl_s, s.files_max_bytes)
        self.glossaries = GlossaryStore(s.glossaries_dir)
        self.core = CoreClient(
            s, on_state=self.on_state, on_results=self.on_results, process=self.core_process, shared=self.shared_core
        )
        self.adapters = AdapterManager(self.core)
        self.decoder = SentenceDecoder(self.front, self.core, self.metrics, s.max_batch_size, s.max_queue)
        self.translator = TextTranslator(self.front, self.decoder, s.max_queue, s.request_timeout_s)
        self._started = False
        self.refresh()

    @property
    def ready(self) -> bool:
        return self._started and self.core.ready and not self.decoder.closing

    @property
    def fingerprint(self) -> str:
        return self.front.fingerprint

    async def start(self) -> None:
        """Start (or adopt) the engine core and wait until it serves; then follow the bundle if asked."""
        s = self.settings
        await self.core.start()
        if s.bundle_poll_s and s.bundle_dir is not None:
            self.sync = BundleSync(self, s.bundle_dir, s.bundle_poll_s)
            self.show_bundle(self.sync.view)  # nothing checked yet: not in sync until the first poll
            self.sync.start()
        self._started = True

    async def stop(self) -> None:
        """Refuse new rows, stop polling, let the core finish what it holds and exit."""
        self.decoder.closing = True
        if self.sync is not None:
            await self.sync.stop()
        await self.core.stop(self.settings.graceful_timeout_s)

    def on_state(self, state: m.State) -> None:
        self.front.show(state)
        self.refresh()

    def on_results(self, results: m.Results) -> None:
        for seconds in results.step_seconds:
            self.metrics.batch_seconds.observe(seconds)
        for count in results.admitted:
            self.metrics.batch_rows.observe(count)
        for reason in results.splits:
            self.metrics.batch_splits.labels(reason=reason).inc()

    def refresh(self) -> None:
        """Snapshots of what the languages decide: the adapter table (read by GET /adapters) and the detector
        (among the languages served)."""
        self.adapter_table = self.front.adapter_table()
        self.show_bundle(self.sync.view if self.sync is not None else None)
        languages = [self.front.user_code(c) for c in self.front.languages]  # clients' codes
        self.detector = Detector(languages)
        # What auto-detection answers for a text without letters (nothing to detect): any served language.
        self.fallback_language = "en" if "en" in languages else (languages[0] if languages else "en")

    def show_bundle(self, view: BundleView | None) -> None:
        """The bundle as the last poll saw it, next to what is served: ``GET /adapters`` and the metrics."""
        served = {row["code"]: row["sha256"] for row in self.adapter_table}
        for row in self.adapter_table:
            row["bundle_sha256"] = view.languages.get(row["code"]) if view is not None else None
        self.bundle_state = bundle_report(view, served)
        self.metrics.show_adapters(served, view.languages if view is not None else None, self.bundle_state)
