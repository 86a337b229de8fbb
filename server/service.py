"""The service's state, kept on the app (``app.state.service``): settings, engine, batcher, metrics."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from server.batcher import Batcher
from server.bundle_sync import BundleSync, BundleView, bundle_report
from server.documents.store import FileStore
from server.engine import TranslationEngine
from server.metrics import Metrics
from server.ratelimit import TokenBuckets
from server.settings import ServerSettings
from server.text.detect import Detector
from server.translator import TextTranslator

T = TypeVar("T")


@dataclass
class Service:
    settings: ServerSettings
    engine: TranslationEngine
    metrics: Metrics = field(default_factory=Metrics)
    batcher: Batcher | None = None
    translator: TextTranslator | None = None
    ready: bool = False
    adapter_table: list[dict[str, Any]] = field(default_factory=list)
    sync: BundleSync | None = None
    bundle_state: dict[str, Any] | None = None
    replica: str = field(default_factory=lambda: uuid.uuid4().hex[:12])  # X-LSLO-Replica: which process answered

    def __post_init__(self) -> None:
        self.rate_limits = TokenBuckets(self.settings.rate_limit_per_minute)
        self.files = FileStore(self.settings.files_dir, self.settings.file_ttl_s, self.settings.files_max_bytes)
        self.fingerprint = self.engine.fingerprint["id"]
        self.refresh()

    def start(self) -> None:
        s = self.settings
        self.batcher = Batcher(self.engine, self.metrics, s.max_batch_size, s.max_wait_ms, s.max_queue)
        self.translator = TextTranslator(self.engine, self.batcher, s.max_queue, s.request_timeout_s)
        self.batcher.start()
        if s.bundle_poll_s and s.bundle_dir is not None:
            self.sync = BundleSync(self, s.bundle_dir, s.bundle_poll_s)
            self.show_bundle(self.sync.view)  # nothing checked yet: not in sync until the first poll
            self.sync.start()
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        if self.sync is not None:
            await self.sync.stop()
        if self.batcher is not None:
            await self.batcher.stop()

    def refresh(self) -> None:
        """Snapshots of what the languages decide: the adapter table (read by GET /adapters without touching
        the engine) and the detector (among the languages served)."""
        self.adapter_table = self.engine.adapter_table()
        self.metrics.languages.set(len(self.adapter_table))
        self.show_bundle(self.sync.view if self.sync is not None else None)
        languages = [self.engine.user_code(c) for c in self.engine.languages]  # clients' codes
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

    async def on_decoder(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the generation thread between batches (reads of the adapters that must not race a
        change)."""
        assert self.batcher is not None
        return await self.batcher.control(fn)

    async def change_adapters(self, change: Callable[[], T]) -> T:
        """Run ``change`` on the generation thread between batches, then refresh the snapshot."""
        assert self.batcher is not None

        def apply() -> T:
            result = change()
            self.refresh()
            return result

        return await self.batcher.control(apply)
