"""The front end's side of the engine core: starts the core process, sends it token ids, hands back outputs.

``CoreClient`` lives on the front end's event loop. ``decode(requests)`` submits rows and awaits their outputs
(a cancelled caller's rows are aborted in the core); ``call(op, **args)`` runs a control operation in the core
between two steps. The client mirrors what the core last announced (``state``: adapters, generation).

Faults: the process is watched through its sentinel. When it ends unasked (killed, out of memory), every row in
flight fails at once with ``Overloaded`` (503, ``Retry-After``), ``ready`` turns false, and a new core is started
on the same socket address and journal, so it serves the adapters the old one served; ``ready`` is true again
when it has said so.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio
import zmq.utils.monitor

from lslo.engine import DecodeOutput, DecodeRequest
from lslo.errors import AdapterFileError
from server.core import messages as m
from server.core.process import core_main
from server.errors import BadRequest, Overloaded, StartupError
from server.settings import ServerSettings

log = logging.getLogger("lslo.server")


REFUSALS = {"ValueError", "RoutingError", "LSLoError"}  # a call's errors that are the request's own fault (400)


class CoreStopped(Overloaded):
    """The core process ended while a row was in flight (the client answers 503 and restarts it)."""


def spawn_core(
    settings: ServerSettings, root: Path | None = None, target: Callable[[dict[str, Any], str, str], None] = core_main
) -> mp.process.BaseProcess:
    """Start a core process serving ``settings`` on ``root``'s socket and journal (a new private directory by
    default; ``process.lslo_root`` names it). ``target``: the process's entry point (``core_main``; tests wrap
    it to inject faults)."""
    root = root or Path(tempfile.mkdtemp(prefix="lslo-core-"))
    process = mp.get_context("spawn").Process(
        target=target,
        name="lslo-core",
        daemon=True,
        args=(
            settings.model_dump(mode="json", exclude={"admin_token"}),
            f"ipc://{root / 'core.sock'}",
            str(root / "journal"),
        ),
    )
    process.start()
    process.lslo_root = root  # type: ignore[attr-defined]
    process.lslo_target = target  # type: ignore[attr-defined]
    return process


def wait_until_up(process: mp.process.BaseProcess, timeout_s: float) -> None:
    """Block until the core has loaded (it answers Hello with its State); StartupError with its message if it
    could not load, or if it ended first. For the command line, before the server listens."""
    context = zmq.Context()
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(f"ipc://{process.lslo_root / 'core.sock'}")  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and process.is_alive():
            socket.send(m.encoder.encode(m.Hello(f"pid {os.getpid()} (start-up check)")))
            if socket.poll(500):
                msg = m.to_frontend.decode(socket.recv())
                if isinstance(msg, m.Failed):
                    process.join(5)
                    raise StartupError(msg.message)
                if isinstance(msg, m.State):
                    return
        raise StartupError(f"the engine core did not start (exit code {process.exitcode})")
    finally:
        socket.close()
        context.term()


class CoreClient:
    def __init__(
        self,
        settings: ServerSettings,
        start_timeout_s: float = 600.0,
        on_state: Callable[[m.State], None] | None = None,
        on_results: Callable[[m.Results], None] | None = None,
        process: mp.process.BaseProcess | None = None,
        shared: Path | None = None,
    ) -> None:
        """on_state: called with every State the core announces (adapters changed, a core (re)started);
        on_results: with every Results message (its step durations and splits feed the metrics); process: a core
        already started (``spawn_core``), else ``start`` starts one; shared: the directory of a core another
        process owns and restarts (``python -m server --workers N``): this client only connects to it, and
        learns that it stopped from the socket."""
        self.settings = settings
        self.on_state, self.on_results = on_state, on_results
        self.failure: str | None = None
        self.start_timeout_s = start_timeout_s
        self.process = process
        self.target = getattr(process, "lslo_target", core_main)  # a restarted core runs what the first ran
        self.shared = shared is not None
        self.root: Path = shared or (
            getattr(process, "lslo_root") if process is not None else Path(tempfile.mkdtemp(prefix="lslo-core-"))  # noqa: B009
        )  # the socket and the journal, this service's own
        self.address = f"ipc://{self.root / 'core.sock'}"
        self.state: m.State | None = None
        self.ready = False
        self.restarts = 0
        self.queued = 0  # requests waiting in the core, as last reported
        self._ids = itertools.count(1)
        self._rows: dict[int, asyncio.Future[Any]] = {}  # request id -> its result
        self._calls: dict[int, asyncio.Future[Any]] = {}  # call id -> its reply
        self._announced: asyncio.Event | None = None
        self._context = zmq.asyncio.Context()
        self._socket: zmq.asyncio.Socket | None = None
        self._monitor: zmq.asyncio.Socket | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    # ---------------------------------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Start the core and wait until it has loaded and announced itself (StartupError if it could not)."""
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.connect(self.address)
        self._tasks.append(asyncio.create_task(self._receive(), name="lslo-core-receive"))
        if self.shared:
            self._monitor = self._socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
            await self._connect()
            self._tasks.append(asyncio.create_task(self._follow(self._monitor), name="lslo-core-follow"))
            return
        await self._launch(adopt=self.process is not None and self.process.is_alive())
        self._tasks.append(asyncio.create_task(self._watch(), name="lslo-core-watch"))

    async def _connect(self) -> None:
        """A shared core: wait until it answers (it may be loading, or being restarted by its owner)."""
        self.ready = False
        self._announced = asyncio.Event()
        try:
            await asyncio.wait_for(self._hello(), self.start_timeout_s)
        except asyncio.TimeoutError:
            raise StartupError(f"no engine core answered at {self.address}") from None
        if self.failure is not None:
            raise StartupError(self.failure)
        self.ready = True

    async def _follow(self, monitor: zmq.asyncio.Socket) -> None:
        """A shared core: when the socket loses it, fail what it held and wait for its successor."""
        while not self._stopping:
            event = zmq.utils.monitor.parse_monitor_message(await monitor.recv_multipart())
            if event["event"] != zmq.EVENT_DISCONNECTED or self._stopping:
                continue
            self._lost("stopped")
            try:
                await self._connect()
            except StartupError:
                log.exception("the engine core did not come back")
                return

    async def _launch(self, adopt: bool = False) -> None:
        self.ready = False
        self._announced = asyncio.Event()
        if not adopt:
            self.process = spawn_core(self.settings, self.root, self.target)
        process = self.process
        assert process is not None
        hello = asyncio.create_task(self._hello())
        exited = asyncio.get_running_loop().run_in_executor(None, process.join, self.start_timeout_s)
        done, _ = await asyncio.wait({hello, exited}, return_when=asyncio.FIRST_COMPLETED)
        if hello not in done or self.failure is not None:
            hello.cancel()
            if process.is_alive():
                process.kill()
            await asyncio.get_running_loop().run_in_executor(None, process.join)
            raise StartupError(self.failure or f"the engine core did not start (exit code {process.exitcode})")
        self.ready = True

    async def _hello(self) -> None:
        assert self._socket is not None and self._announced is not None
        while not self._announced.is_set():  # until the core is bound and answers (messages before are dropped)
            await self._socket.send(m.encoder.encode(m.Hello(f"pid {os.getpid()}")))
            try:
                await asyncio.wait_for(self._announced.wait(), 0.5)
            except asyncio.TimeoutError:
                continue

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Let the core finish what it holds and exit; then close the socket and remove the socket directory."""
        self._stopping = True
        process = self.process
        if process is not None and process.is_alive() and not self.shared:
            with contextlib.suppress(asyncio.TimeoutError, Overloaded):
                await asyncio.wait_for(self.call("drain"), 5)
            await asyncio.get_running_loop().run_in_executor(None, process.join, timeout_s)
            if process.is_alive():
                process.kill()
                process.join()
        for task in self._tasks:
            task.cancel()
        if self._monitor is not None:  # every socket closed, or the context's term() waits for ever
            self._socket.disable_monitor()  # type: ignore[union-attr]
            self._monitor.close()
        if self._socket is not None:
            self._socket.close()
        self._context.term()
        if not self.shared:  # a shared core's directory is its owner's
            shutil.rmtree(self.root, ignore_errors=True)

    async def _watch(self) -> None:
        """Restart the core when it ends unasked; fail what it held."""
        loop = asyncio.get_running_loop()
        while not self._stopping:
            process = self.process
            assert process is not None
            await loop.run_in_executor(None, process.join)
            if self._stopping:
                return
            self._lost(f"stopped (exit code {process.exitcode})")
            try:
                await self._launch()
            except StartupError:
                log.exception("the engine core could not be started again")
                return

    def _lost(self, what: str) -> None:
        """The core is gone: not ready until a new one answers; every row and call in flight fails with 503."""
        self.ready = False
        self.restarts += 1
        log.error("the engine core %s; waiting for a new one", what)
        self._fail_all(
            CoreStopped(f"the engine core {what} and is being restarted; retry shortly", {"Retry-After": "5"})
        )

    def _fail_all(self, error: Exception) -> None:
        for futures in (self._rows, self._calls):
            for future in futures.values():
                if not future.done():
                    future.set_exception(error)
            futures.clear()

    # ------------------------------------------------------------------------------------------- calls
    async def decode(self, requests: Sequence[DecodeRequest]) -> list[DecodeOutput]:
        """Each request's output, in order; a request the core refuses raises BadRequest, a core that stops
        meanwhile CoreStopped (503)."""
        if not self.ready or self._socket is None:
            raise Overloaded("the engine core is starting; retry shortly", {"Retry-After": "5"})
        loop = asyncio.get_running_loop()
        ids = [next(self._ids) for _ in requests]
        futures = [loop.create_future() for _ in requests]
        self._rows.update(zip(ids, futures))
        items = [
            m.Item(
                i,
                list(r.source_ids),
                list(r.prefix),
                r.source_lang,
                r.target_lang,
                r.num_beams,
                r.num_return_sequences,
                r.max_new_tokens,
                r.length_penalty,
                r.adapters,
                [[list(a) for a in c] for c in r.constraints],
            )
            for i, r in zip(ids, requests)
        ]
        await self._socket.send(m.encoder.encode(m.Submit(items)))
        try:
            results = await asyncio.gather(*futures)
        except BaseException:
            pending = [i for i, f in zip(ids, futures) if not f.done()]
            for i in ids:
                self._rows.pop(i, None)
            for f in futures:
                if not f.done():
                    f.cancel()
            if pending and self.ready:
                await self._socket.send(m.encoder.encode(m.Abort(pending)))
            raise
        return [
            DecodeOutput(
                rid, tuple(tuple(s) for s in r.sequences), None if r.scores is None else tuple(r.scores), r.aborted
            )
            for rid, r in zip(ids, results)
        ]

    async def call(self, op: str, **args: Any) -> Any:
        """Run ``op`` in the core between two steps; its return value, or its error re-raised (AdapterFileError
        for a refused adapter file, BadRequest for other refusals)."""
        if self._socket is None or (not self.ready and op != "drain"):
            raise Overloaded("the engine core is starting; retry shortly", {"Retry-After": "5"})
        call_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._calls[call_id] = future
        await self._socket.send(m.encoder.encode(m.Call(call_id, op, args)))
        reply: m.Reply = await future
        if reply.error is not None:
            if reply.error_type == "AdapterFileError":
                raise AdapterFileError(args.get("label", op), reply.error)
            if reply.error_type in REFUSALS:
                raise BadRequest(reply.error)
            raise RuntimeError(f"the engine core failed on {op!r}: {reply.error_type}: {reply.error}")
        return reply.value

    def _deliver(self, msg: m.Results) -> None:
        """Each result to the request waiting for it (a row's error as its exception)."""
        self.queued = msg.queued
        if self.on_results is not None:
            self.on_results(msg)
        for result in msg.results:
            future = self._rows.pop(result.request_id, None)
            if future is None or future.done():
                continue
            if result.error is not None:
                future.set_exception(BadRequest(result.error) if result.status == 400 else RuntimeError(result.error))
            else:
                future.set_result(result)

    async def _receive(self) -> None:
        assert self._socket is not None
        while True:
            msg = m.to_frontend.decode(await self._socket.recv())
            if isinstance(msg, m.Results):
                self._deliver(msg)
            elif isinstance(msg, m.Reply):
                future = self._calls.pop(msg.call_id, None)
                if future is not None and not future.done():
                    future.set_result(msg)
            elif isinstance(msg, m.State):
                self.state = msg
                if self.on_state is not None:
                    self.on_state(msg)
                if self._announced is not None:
                    self._announced.set()
            elif isinstance(msg, m.Failed):
                self.failure = msg.message
                if self._announced is not None:
                    self._announced.set()
