"""The service's state, kept on the app (``app.state.service``): settings, engine, batcher, metrics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from server.batcher import Batcher
from server.engine import TranslationEngine
from server.metrics import Metrics
from server.ratelimit import TokenBuckets
from server.settings import ServerSettings

T = TypeVar("T")


@dataclass
class Service:
    settings: ServerSettings
    engine: TranslationEngine
    metrics: Metrics = field(default_factory=Metrics)
    batcher: Batcher | None = None
    ready: bool = False
    adapter_table: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rate_limits = TokenBuckets(self.settings.rate_limit_per_minute)
        self.fingerprint = self.engine.fingerprint["id"]
        self.refresh()

    def start(self) -> None:
        s = self.settings
        self.batcher = Batcher(self.engine, self.metrics, s.max_batch_size, s.max_wait_ms, s.max_queue)
        self.batcher.start()
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        if self.batcher is not None:
            await self.batcher.stop()

    def refresh(self) -> None:
        """Snapshot of the adapter table (read by GET /adapters without touching the engine)."""
        self.adapter_table = self.engine.adapter_table()
        self.metrics.languages.set(len(self.adapter_table))

    async def change_adapters(self, change: Callable[[], T]) -> T:
        """Run ``change`` on the generation thread between batches, then refresh the snapshot."""
        assert self.batcher is not None

        def apply() -> T:
            result = change()
            self.refresh()
            return result

        return await self.batcher.control(apply)
