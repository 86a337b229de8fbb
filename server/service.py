"""The service's state, kept on the app (``app.state.service``): settings, engine, batcher, metrics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from server.batcher import Batcher
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
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        if self.batcher is not None:
            await self.batcher.stop()

    def refresh(self) -> None:
        """Snapshots of what the languages decide: the adapter table (read by GET /adapters without touching
        the engine) and the detector (among the languages served)."""
        self.adapter_table = self.engine.adapter_table()
        self.metrics.languages.set(len(self.adapter_table))
        languages = [self.engine.user_code(c) for c in self.engine.languages]  # clients' codes
        self.detector = Detector(languages)
        # What auto-detection answers for a text without letters (nothing to detect): any served language.
        self.fallback_language = "en" if "en" in languages else (languages[0] if languages else "en")

    async def change_adapters(self, change: Callable[[], T]) -> T:
        """Run ``change`` on the generation thread between batches, then refresh the snapshot."""
        assert self.batcher is not None

        def apply() -> T:
            result = change()
            self.refresh()
            return result

        return await self.batcher.control(apply)
