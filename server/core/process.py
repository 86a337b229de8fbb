"""The engine core's process: the model, the adapters and the decoding loop, and nothing else.

One loop: take every message waiting (submissions, aborts, calls), run the calls between two steps, step the
decoding engine, send each front end its finished rows. Front ends connect with DEALER sockets to this process's
ROUTER socket and only ever send token ids; their request ids are kept per front end. Adapter changes are calls
(``install``, ``check``, ``remove``): made here, recorded in the journal (``server.core.journal``) and announced to
every front end as a ``State``. A step that fails (out of memory) puts its rows back and admits half as many until
they are through, down to one request, which then gets the error alone.

SIGINT is ignored (Ctrl-C reaches the whole process group: the front end decides); SIGTERM finishes the rows
held, then exits 0.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

import torch
import zmq

from lslo.engine import DecodeRequest
from lslo.errors import AdapterFileError
from lslo.io.adapter_file import parse_language_file
from server.core import messages as m
from server.core.journal import Journal
from server.core.model import ServedModel, load_model
from server.errors import StartupError
from server.logs import configure_logging
from server.settings import ServerSettings

log = logging.getLogger("lslo.core")
Owner = tuple[bytes, int]  # (front end's socket identity, its request id)


class EngineCore:
    """The one owner of a ``ServedModel`` in the core process."""

    def __init__(self, engine: ServedModel, journal: Journal, socket: zmq.Socket[bytes]) -> None:
        self.engine, self.decoder, self.journal, self.socket = engine, engine.decoder, journal, socket
        self.frontends: set[bytes] = set()
        self.owners: dict[int, Owner] = {}  # the engine's request id -> its front end's
        self.ids: dict[Owner, int] = {}
        self.generation = 0
        self.stopping = False
        self.recovering: int | None = None  # admission cap (requests) after a failed step
        self.steps = 0
        self.step_seconds = 0.0
        self.recent_steps: list[float] = []  # durations since the last Results sent (reported with it)
        self.recent_splits: list[str] = []
        self.recent_admitted: list[int] = []
        for code, data, source, tier in journal.replay():  # what the previous core changed after its bundle
            if data is None:
                engine.remove(code)
            else:
                engine.install(code, parse_language_file(data, f"journal file for {code}"), source, tier)

    # --------------------------------------------------------------------------------------------- loop
    def run(self) -> None:
        settings = self.engine.settings
        while not (self.stopping and self.decoder.idle):
            self.receive(0 if not self.decoder.idle else 100)
            if self.decoder.idle or self.stopping:
                continue
            if self.steps == 0 or self.decoder.rows == 0:  # the first rows wait a little for company
                deadline = time.monotonic() + settings.max_wait_ms / 1000
                while self.decoder.queued < settings.max_batch_size and time.monotonic() < deadline:
                    self.receive(max(0, int((deadline - time.monotonic()) * 1000)))
            self.step()

    def receive(self, timeout_ms: int) -> None:
        """Handle every waiting message (waiting up to ``timeout_ms`` for the first)."""
        if not self.socket.poll(timeout_ms):
            return
        while True:
            try:
                identity, frame = self.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.handle(identity, m.to_core.decode(frame))

    def handle(self, identity: bytes, msg: m.ToCore) -> None:
        if isinstance(msg, m.Submit):
            self.submit(identity, msg.items)
        elif isinstance(msg, m.Abort):
            for request_id in msg.request_ids:
                engine_id = self.ids.get((identity, request_id))
                if engine_id is not None:
                    self.decoder.abort(engine_id)
        elif isinstance(msg, m.Call):
            self.call(identity, msg)
        elif isinstance(msg, m.Hello):
            self.frontends.add(identity)
            self.send(identity, self.state())

    def submit(self, identity: bytes, items: list[m.Item]) -> None:
        refused = []
        for it in items:
            try:
                engine_id = self.decoder.submit(
                    DecodeRequest(
                        tuple(it.source_ids),
                        tuple(it.prefix),
                        it.source_lang,
                        it.target_lang,
                        it.num_beams,
                        it.num_return_sequences,
                        it.max_new_tokens,
                        it.length_penalty,
                        it.adapters,
                        tuple(tuple(tuple(p) for p in c) for c in it.constraints),
                    )
                )
            except Exception as err:  # noqa: BLE001 - this row's own problem (e.g. a language removed meanwhile)
                refused.append(m.Result(it.request_id, error=str(err), status=400))
                continue
            self.owners[engine_id] = (identity, it.request_id)
            self.ids[(identity, it.request_id)] = engine_id
        if refused:
            self.send(identity, m.Results(refused, self.decoder.queued))

    def step(self) -> None:
        self.decoder.max_requests = self.recovering
        started = time.perf_counter()
        try:
            plan = self.decoder.schedule()
            finished = self.decoder.update(plan, self.decoder.execute(plan))
        except Exception as err:  # noqa: BLE001 - isolate the failing rows
            self.recover(err)
            return
        self.steps += 1
        self.step_seconds += time.perf_counter() - started
        self.recent_steps.append(time.perf_counter() - started)
        if plan.admitted:
            self.recent_admitted.append(len(plan.admitted))
        by_frontend: dict[bytes, list[m.Result]] = {}
        for out in finished:
            owner = self.owners.pop(out.request_id, None)
            if owner is None:
                continue
            del self.ids[owner]
            by_frontend.setdefault(owner[0], []).append(
                m.Result(
                    owner[1],
                    [list(s) for s in out.sequences],
                    None if out.scores is None else list(out.scores),
                    out.aborted,
                )
            )
            if self.recovering is not None and not out.aborted:
                self.recovering = self.recovering * 2 if self.recovering * 2 < self.decoder.capacity else None
        for identity, results in by_frontend.items():
            self.send(identity, m.Results(results, self.decoder.queued))

    def recover(self, err: Exception) -> None:
        if isinstance(err, torch.cuda.OutOfMemoryError) and torch.cuda.is_available():
            torch.cuda.empty_cache()
        evicted = self.decoder.evict()
        self.recent_splits.append(type(err).__name__)
        if len(evicted) > 1:
            self.recovering = max(1, len(evicted) // 2)
            log.warning(
                "a decoding step over %d requests failed (%s); retrying with at most %d at a time",
                len(evicted),
                type(err).__name__,
                self.recovering,
            )
            return
        queued = self.decoder.queued_ids
        engine_id = evicted[0] if evicted else (queued[0] if queued else None)
        if engine_id is None:
            return
        self.decoder.discard(engine_id)
        log.error("translation failed for one row: %s", err)
        owner = self.owners.pop(engine_id, None)
        if owner is not None:
            del self.ids[owner]
            self.send(
                owner[0], m.Results([m.Result(owner[1], error=f"{type(err).__name__}: {err}")], self.decoder.queued)
            )

    # -------------------------------------------------------------------------------------------- calls
    def call(self, identity: bytes, msg: m.Call) -> None:
        op = getattr(self, f"op_{msg.op}", None)
        try:
            if op is None:
                raise ValueError(f"unknown call {msg.op!r}")
            value = op(**msg.args)
        except Exception as err:  # noqa: BLE001 - reported to the caller
            reason = err.reason if isinstance(err, AdapterFileError) else str(err)
            self.send(identity, m.Reply(msg.call_id, error=reason, error_type=type(err).__name__))
            return
        self.send(identity, m.Reply(msg.call_id, value))

    def op_check(self, code: str, data: bytes, label: str) -> None:
        self.engine.check(code, parse_language_file(data, label))

    def op_install(
        self,
        code: str,
        data: bytes,
        label: str,
        source: str,
        tier: str | None = None,
        expected: str | None = None,
        unless_changed_from: str | None = None,
    ) -> dict[str, Any] | None:
        """Add or replace ``code``; ``expected``: the sha256 the file must have; ``unless_changed_from``: only
        if ``code`` is still served with that sha256 ("" for none) (the bundle poller's compare-and-set)."""
        if unless_changed_from is not None and self.served_sha(code) != (unless_changed_from or None):
            return None
        adapter = parse_language_file(data, label)
        if expected and adapter.sha256 != expected:
            raise AdapterFileError(label, f"sha256 {adapter.sha256[:12]}… is not the manifest's {expected[:12]}…")
        replaced = code in self.engine.adapters
        record = self.engine.install(code, adapter, source, tier)
        self.journal.installed(code, data, source, record.tier)
        self.changed()
        return {"replaced": replaced, "sha256": record.sha256}

    def op_remove(self, code: str, unless_changed_from: str | None = None) -> bool:
        if unless_changed_from is not None and self.served_sha(code) != (unless_changed_from or None):
            return False
        if code not in self.engine.adapters:
            return False
        self.engine.remove(code)
        self.journal.removed(code)
        self.changed()
        return True

    def op_stats(self) -> dict[str, Any]:
        return {
            "queued": self.decoder.queued,
            "running": len(self.decoder.running),
            "steps": self.steps,
            "step_seconds": self.step_seconds,
            "frontends": len(self.frontends),
            "generation": self.generation,
        }

    def op_drain(self) -> None:
        """Finish what is held, then exit (answered at once; the process ends when the rows are done)."""
        self.stopping = True

    def served_sha(self, code: str) -> str | None:
        record = self.engine.adapters.get(code)
        return record.sha256 if record is not None else None

    # ------------------------------------------------------------------------------------------- output
    def changed(self) -> None:
        self.generation += 1
        state = self.state()
        for identity in self.frontends:
            self.send(identity, state)

    def state(self) -> m.State:
        e = self.engine
        dtype = "int8" if self.decoder.int8 else str(e.dtype).split(".")[-1]
        return m.State(
            self.generation,
            e.adapter_table(),
            sorted(e.adapters),
            e.fingerprint["id"],
            e.decoder_start,
            str(e.device),
            dtype,
        )

    def send(self, identity: bytes, msg: m.ToFrontend) -> None:
        if isinstance(msg, m.Results) and (self.recent_steps or self.recent_splits):
            msg = m.Results(msg.results, msg.queued, self.recent_steps, self.recent_splits, self.recent_admitted)
            self.recent_steps, self.recent_splits, self.recent_admitted = [], [], []
        self.socket.send_multipart([identity, m.encoder.encode(msg)])


def core_main(settings: dict[str, Any], address: str, journal: str) -> None:
    """The core process's entry point (``multiprocessing`` spawn): bind, build the model (a front end asking
    meanwhile waits; a failure is told to it as ``Failed``), serve until drained."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    configure_logging(str(settings.get("log_level", "info")), str(settings.get("log_format", "json")))
    context = zmq.Context()
    socket = context.socket(zmq.ROUTER)
    socket.setsockopt(zmq.LINGER, 1000)
    socket.bind(address)
    (Path(journal).parent / "core.pid").write_text(str(os.getpid()), encoding="utf-8")  # for operators
    try:
        core = EngineCore(load_model(ServerSettings(**settings)), Journal(Path(journal)), socket)
    except Exception as err:  # noqa: BLE001 - told to the front end, which stops with it
        message = str(err) if isinstance(err, (StartupError, AdapterFileError)) else f"{type(err).__name__}: {err}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and socket.poll(int((deadline - time.monotonic()) * 1000)):
            identity, _ = socket.recv_multipart()
            socket.send_multipart([identity, m.encoder.encode(m.Failed(message))])
            break
        socket.close()
        context.term()
        raise SystemExit(3) from None
    signal.signal(signal.SIGTERM, lambda *_: setattr(core, "stopping", True))
    core.stopping = stop["now"]
    core.run()
    socket.close()
    context.term()
