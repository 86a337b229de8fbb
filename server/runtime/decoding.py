"""Sentences in, translations out, through the engine core: the front end's half of continuous batching.

A request's rows are tokenized here and sent to the core together (``server.core.client``); the core admits them
into its running batch whatever their language pair and answers each row when it is done. The queue is bounded:
past ``max_queue`` rows waiting a request is refused at once with 503 and ``Retry-After``. A client that goes
away has its rows aborted in the core.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from server.core.client import CoreClient
from server.errors import BadRequest, Overloaded
from server.runtime.front_end import FrontEnd
from server.runtime.metrics import Metrics
from server.text.units import Hypothesis, Sentence


class SentenceDecoder:
    def __init__(
        self, front: FrontEnd, core: CoreClient, metrics: Metrics, max_batch_size: int, max_queue: int
    ) -> None:
        self.front, self.core, self.metrics = front, core, metrics
        self.max_batch_size, self.max_queue = max_batch_size, max_queue
        self.closing = False
        self._in_flight = 0
        self._latency = 0.5  # running estimate of a row's time in the service, for Retry-After

    @property
    def queued_rows(self) -> int:
        """Rows waiting for admission (those in flight beyond what one step decodes)."""
        return max(0, self._in_flight - self.max_batch_size)

    async def translate(self, rows: Sequence[Sentence]) -> list[list[Hypothesis]]:
        """Each sentence's ``n_best`` translations (an empty sentence: empty ones, unscored)."""
        if self.closing:
            raise Overloaded("the service is shutting down", {"Retry-After": "5"})
        queued = self.queued_rows
        if queued + len(rows) > self.max_queue:
            self.metrics.rejected.labels(reason="queue_full").inc()
            retry = max(1, math.ceil(self._latency * (queued / max(1, self.max_batch_size) + 1)))
            raise Overloaded(
                f"the service is at capacity ({queued} rows waiting); retry later", {"Retry-After": str(retry)}
            )
        known = set(self.front.languages)
        results: list[list[Hypothesis]] = [[Hypothesis("")] * r.n_best for r in rows]
        todo = [i for i, r in enumerate(rows) if r.text.strip()]
        for i in todo:
            row = rows[i]
            if row.source not in known or row.target not in known:
                gone = row.source if row.source not in known else row.target
                raise BadRequest(f"language {gone!r} is no longer loaded")
        if not todo:
            return results
        requests = [self.front.request_for(rows[i]) for i in todo]
        started = time.perf_counter()
        self._in_flight += len(requests)
        self.metrics.queue_depth.set(self.queued_rows)
        try:
            outputs = await self.core.decode(requests)
        finally:
            self._in_flight -= len(requests)
            self.metrics.queue_depth.set(self.queued_rows)
        for i, output in zip(todo, outputs):
            results[i] = self.front.hypotheses_of(output)[: rows[i].n_best] or [Hypothesis("")]
        self._latency = 0.8 * self._latency + 0.2 * (time.perf_counter() - started)
        return results
