"""Dynamic batching across requests and language pairs.

Requests become rows. A worker task collects rows for up to ``max_wait_ms`` after the first one arrives or
until ``max_batch_size`` rows, and runs them in one ``generate()`` call on a single worker thread, off the
event loop. Adapter changes are control operations that run on that same thread *between* batches: a
running batch finishes with the weights it started with, and every batch after the change sees the new
ones. The queue is bounded: past ``max_queue`` waiting rows a request is refused at once with 503 and
``Retry-After`` instead of growing memory.

A batch that fails is split in halves and retried, down to single rows, so one bad row (or a CUDA
out-of-memory error on a large batch) never fails the others.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch

from server.engine import Row, TranslationEngine
from server.errors import BadRequest, Overloaded
from server.metrics import Metrics

log = logging.getLogger("lslo.server")
T = TypeVar("T")


@dataclass
class Job:
    rows: list[Row]
    future: asyncio.Future
    results: list[list[str] | None] = field(default_factory=list)
    errors: list[Exception | None] = field(default_factory=list)
    pending: int = 0
    enqueued: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        self.results = [None] * len(self.rows)
        self.errors = [None] * len(self.rows)
        self.pending = len(self.rows)


@dataclass
class Slot:
    job: Job
    index: int

    @property
    def row(self) -> Row:
        return self.job.rows[self.index]


@dataclass
class Control:
    fn: Callable[[], Any]
    future: asyncio.Future


class Batcher:
    def __init__(self, engine: TranslationEngine, metrics: Metrics, max_batch_size: int, max_wait_ms: float,
                 max_queue: int) -> None:
        self.engine = engine
        self.metrics = metrics
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self._slots: deque[Slot] = deque()
        self._controls: deque[Control] = deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lslo-generate")
        self._closing = False
        self._batch_seconds = 0.5  # running estimate, for Retry-After

    # ---------------------------------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="lslo-batcher")

    async def stop(self) -> None:
        """Finish every queued row and control operation, then stop the worker."""
        self._closing = True
        if self._wake is not None:
            self._wake.set()
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)

    @property
    def queued_rows(self) -> int:
        return len(self._slots)

    # ------------------------------------------------------------------------------------------- submit
    async def translate(self, rows: Sequence[Row]) -> list[list[str]]:
        if self._closing:
            raise Overloaded("the service is shutting down", {"Retry-After": "5"})
        if self.queued_rows + len(rows) > self.max_queue:
            self.metrics.rejected.labels(reason="queue_full").inc()
            retry = max(1, math.ceil(self._batch_seconds * (self.queued_rows / self.max_batch_size + 1)))
            raise Overloaded(f"the service is at capacity ({self.queued_rows} rows waiting); retry later",
                             {"Retry-After": str(retry)})
        job = Job(list(rows), asyncio.get_running_loop().create_future())
        self._slots.extend(Slot(job, i) for i in range(len(rows)))
        self.metrics.queue_depth.set(self.queued_rows)
        assert self._wake is not None
        self._wake.set()
        try:
            await job.future
        except asyncio.CancelledError:  # the client went away: its rows are skipped, the batch goes on
            job.future.cancel()
            raise
        errors = [e for e in job.errors if e is not None]
        if errors:
            raise errors[0]
        return [r or [""] for r in job.results]

    async def control(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the worker thread between two batches; returns its result (or raises its error)."""
        if self._closing:
            raise Overloaded("the service is shutting down", {"Retry-After": "5"})
        op = Control(fn, asyncio.get_running_loop().create_future())
        self._controls.append(op)
        assert self._wake is not None
        self._wake.set()
        return await op.future

    # ------------------------------------------------------------------------------------------- worker
    async def _run(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            while self._controls:
                op = self._controls.popleft()
                try:
                    result = await loop.run_in_executor(self._executor, op.fn)
                    if not op.future.done():
                        op.future.set_result(result)
                except Exception as err:  # noqa: BLE001 - reported to the caller
                    if not op.future.done():
                        op.future.set_exception(err)
            self._drop_abandoned()
            if not self._slots:
                if self._closing and not self._controls:
                    return
                self._wake.clear()
                if not self._slots and not self._controls:
                    await self._wake.wait()
                continue
            deadline = self._slots[0].job.enqueued + self.max_wait
            while len(self._slots) < self.max_batch_size and not self._closing and not self._controls:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), remaining)
                except asyncio.TimeoutError:
                    break
            batch = [self._slots.popleft() for _ in range(min(self.max_batch_size, len(self._slots)))]
            self.metrics.queue_depth.set(self.queued_rows)
            batch = [s for s in batch if not s.job.future.done()]
            if batch:
                await self._execute(loop, batch)

    def _drop_abandoned(self) -> None:
        if any(s.job.future.done() for s in self._slots):
            self._slots = deque(s for s in self._slots if not s.job.future.done())

    async def _execute(self, loop: asyncio.AbstractEventLoop, batch: list[Slot]) -> None:
        started = time.perf_counter()
        outcomes = await loop.run_in_executor(self._executor, self._translate_splitting, [s.row for s in batch])
        seconds = time.perf_counter() - started
        self._batch_seconds = 0.8 * self._batch_seconds + 0.2 * seconds
        self.metrics.batch_rows.observe(len(batch))
        self.metrics.batch_seconds.observe(seconds)
        for slot, outcome in zip(batch, outcomes):
            job = slot.job
            if isinstance(outcome, Exception):
                job.errors[slot.index] = outcome
            else:
                job.results[slot.index] = outcome
            job.pending -= 1
            if job.pending == 0 and not job.future.done():
                job.future.set_result(None)

    def _translate_splitting(self, rows: list[Row]) -> list[list[str] | Exception]:
        """Runs on the worker thread. Rows whose language vanished get an error; failures split the batch."""
        known = set(self.engine.languages)
        out: list[list[str] | Exception | None] = [None] * len(rows)
        live = []
        for i, row in enumerate(rows):
            if not row.text.strip():
                out[i] = [""] * row.n_best
            elif row.source not in known or row.target not in known:
                gone = row.source if row.source not in known else row.target
                out[i] = BadRequest(f"language {gone!r} is no longer loaded")
            else:
                live.append(i)
        for i, result in zip(live, self._translate_or_split([rows[i] for i in live])):
            out[i] = result
        return out  # type: ignore[return-value]

    def _translate_or_split(self, rows: list[Row]) -> list[list[str] | Exception]:
        if not rows:
            return []
        try:
            return list(self.engine.translate(rows))
        except Exception as err:  # noqa: BLE001 - isolate the failing rows
            if isinstance(err, torch.cuda.OutOfMemoryError) and torch.cuda.is_available():
                torch.cuda.empty_cache()
            self.metrics.batch_splits.labels(reason=type(err).__name__).inc()
            if len(rows) == 1:
                log.exception("translation failed for one row (%s -> %s)", rows[0].source, rows[0].target)
                return [err]
            half = len(rows) // 2
            log.warning("batch of %d rows failed (%s); retrying in halves", len(rows), type(err).__name__)
            return self._translate_or_split(rows[:half]) + self._translate_or_split(rows[half:])
