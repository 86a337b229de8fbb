"""Continuous batching across requests and language pairs.

Requests become rows. One worker thread drives the decoding engine (``lslo.engine``): between two decoding steps
it admits the rows that arrived (they join the running batch, whatever their language pair), and a row leaves the
batch the moment its translation is done, so a short sentence never waits for a long one. Adapter changes are
control operations that run on the same thread between two steps; the engine keeps each running row on the adapter
version it started with, so every translation is entirely under the old adapter or entirely under the new one.

The queue is bounded: past ``max_queue`` rows waiting for admission a request is refused at once with 503 and
``Retry-After``. A client that goes away has its rows dropped at the next step. A step that fails (e.g. the device
runs out of memory) puts its rows back in the queue and admits half as many until they are through, down to one
request, which then gets the error alone: one bad row never fails the others.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch

from server.engine import Row, TranslationEngine
from server.errors import BadRequest, Overloaded
from server.metrics import Metrics

log = logging.getLogger("lslo.server")
T = TypeVar("T")


@dataclass(eq=False)
class Job:
    rows: list[Row]
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    results: list[list[str] | None] = field(default_factory=list)
    errors: list[Exception | None] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)  # the engine's ids of its rows' requests
    pending: int = 0
    enqueued: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        self.results = [None] * len(self.rows)
        self.errors = [None] * len(self.rows)
        self.pending = len(self.rows)

    @property
    def abandoned(self) -> bool:
        return self.future.done()

    def settle(self, index: int, result: list[str] | Exception) -> None:
        """Called on the worker thread; the future is completed on the event loop once every row is settled."""
        if isinstance(result, Exception):
            self.errors[index] = result
        else:
            self.results[index] = result
        self.pending -= 1
        if self.pending == 0:
            self.loop.call_soon_threadsafe(self._complete)

    def _complete(self) -> None:
        if not self.future.done():
            self.future.set_result(None)


@dataclass
class Control:
    fn: Callable[[], Any]
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


class Batcher:
    def __init__(self, engine: TranslationEngine, metrics: Metrics, max_batch_size: int, max_wait_ms: float,
                 max_queue: int) -> None:
        self.engine = engine
        self.decoder = engine.decoder
        self.metrics = metrics
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self._intake: deque[Job] = deque()
        self._intake_rows = 0
        self._controls: deque[Control] = deque()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False
        self._owners: dict[int, tuple[Job, int]] = {}  # request id -> (job, row index)
        self._latency = 0.5  # running estimate of a row's time in the service, for Retry-After
        self._recovering: int | None = None  # admission cap (requests) after a failed step

    # ---------------------------------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lslo-decode", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Finish every queued row and control operation, then stop the worker."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join)

    @property
    def queued_rows(self) -> int:
        """Rows waiting for admission (not yet decoding)."""
        return self._intake_rows + self.decoder.queued

    # ------------------------------------------------------------------------------------------- submit
    async def translate(self, rows: Sequence[Row]) -> list[list[str]]:
        if self._closing:
            raise Overloaded("the service is shutting down", {"Retry-After": "5"})
        queued = self.queued_rows
        if queued + len(rows) > self.max_queue:
            self.metrics.rejected.labels(reason="queue_full").inc()
            retry = max(1, math.ceil(self._latency * (queued / max(1, self.max_batch_size) + 1)))
            raise Overloaded(f"the service is at capacity ({queued} rows waiting); retry later",
                             {"Retry-After": str(retry)})
        loop = asyncio.get_running_loop()
        job = Job(list(rows), loop.create_future(), loop)
        with self._wake:
            self._intake.append(job)
            self._intake_rows += len(rows)
            self._wake.notify()
        self.metrics.queue_depth.set(self.queued_rows)
        try:
            await job.future
        except asyncio.CancelledError:  # the client went away: its rows leave the batch at the next step
            job.future.cancel()
            for request_id in list(job.requests):
                self.decoder.abort(request_id)
            raise
        errors = [e for e in job.errors if e is not None]
        if errors:
            raise errors[0]
        self._latency = 0.8 * self._latency + 0.2 * (time.perf_counter() - job.enqueued)
        return [r or [""] for r in job.results]

    async def control(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the worker thread between two decoding steps; returns its result (or raises its error)."""
        if self._closing:
            raise Overloaded("the service is shutting down", {"Retry-After": "5"})
        loop = asyncio.get_running_loop()
        op = Control(fn, loop.create_future(), loop)
        with self._wake:
            self._controls.append(op)
            self._wake.notify()
        return await op.future

    # ------------------------------------------------------------------------------------------- worker
    def _run(self) -> None:
        while True:
            with self._wake:
                while not (self._controls or self._intake or not self.decoder.idle or self._closing):
                    self._wake.wait()
                if self._closing and not (self._controls or self._intake) and self.decoder.idle:
                    return
                controls = list(self._controls)
                self._controls.clear()
            for op in controls:
                self._control(op)
            try:
                if self.decoder.idle:
                    self._gather()
                self._take_intake()
                self._step()
            except Exception as err:  # noqa: BLE001 - a bug here must not kill the worker (requests would hang)
                log.exception("the decoding worker failed; failing the requests it held")
                self._fail_all(err)

    def _gather(self) -> None:
        """With nothing running, let the first rows wait up to ``max_wait`` for company (one shared first step)."""
        with self._wake:
            if not self._intake:
                return
            deadline = self._intake[0].enqueued + self.max_wait
            while (self._intake_rows < self.max_batch_size and not self._closing and not self._controls
                   and time.perf_counter() < deadline):
                self._wake.wait(max(0.0, deadline - time.perf_counter()))

    def _control(self, op: Control) -> None:
        try:
            result = op.fn()
        except Exception as err:  # noqa: BLE001 - reported to the caller
            op.loop.call_soon_threadsafe(_settle_future, op.future, None, err)
        else:
            op.loop.call_soon_threadsafe(_settle_future, op.future, result, None)

    def _take_intake(self) -> None:
        with self._wake:
            jobs = list(self._intake)
            self._intake.clear()
            self._intake_rows = 0
        if not jobs:
            return
        known = set(self.engine.languages)
        taken = 0
        for job in jobs:
            if job.abandoned:
                continue
            for i, row in enumerate(job.rows):
                taken += 1
                if not row.text.strip():
                    job.settle(i, [""] * row.n_best)
                elif row.source not in known or row.target not in known:
                    gone = row.source if row.source not in known else row.target
                    job.settle(i, BadRequest(f"language {gone!r} is no longer loaded"))
                else:
                    try:
                        request_id = self.decoder.submit(self.engine.request_for(row))
                    except Exception as err:  # noqa: BLE001 - this row's own problem
                        job.settle(i, err)
                        continue
                    job.requests.append(request_id)
                    self._owners[request_id] = (job, i)
            if job.abandoned:  # the client left while its rows were being submitted
                for request_id in job.requests:
                    self.decoder.abort(request_id)
        self.metrics.batch_rows.observe(taken)
        self.metrics.queue_depth.set(self.queued_rows)

    def _step(self) -> None:
        if self.decoder.idle:
            return
        self.decoder.max_requests = self._recovering
        started = time.perf_counter()
        try:
            finished = self.decoder.step()
        except Exception as err:  # noqa: BLE001 - isolate the failing rows
            self._recover(err)
            return
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        self.metrics.queue_depth.set(self.queued_rows)
        for output in finished:
            owner = self._owners.pop(output.request_id, None)
            if owner is None or output.aborted:
                continue
            job, index = owner
            job.settle(index, self.engine.texts_of(output)[: job.rows[index].n_best])
            if self._recovering is not None:
                self._recovering = self._recovering * 2 if self._recovering * 2 < self.decoder.capacity else None

    def _fail_all(self, err: Exception) -> None:
        """Give every request the worker holds the error, and start again from an empty engine."""
        self.decoder.evict()
        for request_id in self.decoder.drop_queue():
            owner = self._owners.pop(request_id, None)
            if owner is not None and not owner[0].abandoned:
                owner[0].settle(owner[1], err)
        self._recovering = None

    def _recover(self, err: Exception) -> None:
        if isinstance(err, torch.cuda.OutOfMemoryError) and torch.cuda.is_available():
            torch.cuda.empty_cache()
        evicted = self.decoder.evict()
        self.metrics.batch_splits.labels(reason=type(err).__name__).inc()
        if len(evicted) <= 1:
            queued = self.decoder.queued_ids
            request_id = evicted[0] if evicted else (queued[0] if queued else None)
            if request_id is not None:
                self.decoder.discard(request_id)
                owner = self._owners.pop(request_id, None)
                row = owner[0].rows[owner[1]] if owner is not None else None
                log.exception("translation failed for one row (%s -> %s)", row.source if row else "?",
                              row.target if row else "?", exc_info=err)
                if owner is not None:
                    owner[0].settle(owner[1], err)
            return
        self._recovering = max(1, len(evicted) // 2)
        log.warning("a decoding step over %d requests failed (%s); retrying with at most %d at a time",
                    len(evicted), type(err).__name__, self._recovering)


def _settle_future(future: asyncio.Future, result: Any, error: Exception | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
