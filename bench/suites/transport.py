"""``transport``: the front end <-> engine core channel, measured on the messages the service sends.

A core process echoes what it receives as results (nothing decoded), so only the transport is timed: ZeroMQ over
an ``ipc://`` socket with msgspec MessagePack (the service's choice), and ``multiprocessing`` pipes and queues
pickling the engine's own dataclasses. Per round trip of one message of ``rows`` rows (40 source ids each, answered
with 40 generated ids each): wall microseconds, and the front end's CPU microseconds (time it holds its GIL, which
an HTTP front end needs for everything else)."""

from __future__ import annotations

import multiprocessing as mp
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from bench.common import median, table
from lslo.engine import DecodeOutput, DecodeRequest
from server.core import messages as m

IDS = list(range(100, 140))


def _items(rows: int) -> list[m.Item]:
    return [m.Item(i, IDS, [2, 5], "en", "fr", 4, 1, 128, 1.0, True) for i in range(rows)]


def _zmq_echo(address: str) -> None:
    import zmq

    sock = zmq.Context().socket(zmq.ROUTER)
    sock.bind(address)
    while True:
        ident, frame = sock.recv_multipart()
        msg = m.to_core.decode(frame)
        if isinstance(msg, m.Abort):
            return
        results = [m.Result(it.request_id, [it.source_ids], [0.0]) for it in msg.items]  # type: ignore[union-attr]
        sock.send_multipart([ident, m.encoder.encode(m.Results(results))])


def _pipe_echo(conn: Any) -> None:
    while True:
        msg = conn.recv()
        if msg is None:
            return
        conn.send([DecodeOutput(i, (r.source_ids,), (0.0,)) for i, r in enumerate(msg)])


def _queue_echo(inbox: Any, outbox: Any) -> None:
    while True:
        msg = inbox.get()
        if msg is None:
            return
        outbox.put([DecodeOutput(i, (r.source_ids,), (0.0,)) for i, r in enumerate(msg)])


def _timed(send_receive: Any, repeats: int) -> tuple[float, float]:
    for _ in range(20):
        send_receive()
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.thread_time()
        send_receive()
        wall.append(time.perf_counter() - w)
        cpu.append(time.thread_time() - c)
    return median(wall) * 1e6, median(cpu) * 1e6


def run(device: torch.device, dtype: torch.dtype, quick: bool) -> dict[str, Any]:
    import zmq

    repeats = 200 if quick else 2000
    ctx = mp.get_context("spawn")
    rows_out, ratios = [], {}
    tmp = Path(tempfile.mkdtemp(prefix="lslo-transport-"))
    address = f"ipc://{tmp / 'core.sock'}"
    zproc = ctx.Process(target=_zmq_echo, args=(address,), daemon=True)
    zproc.start()
    sock = zmq.Context().socket(zmq.DEALER)
    sock.connect(address)
    parent, child = ctx.Pipe()
    pproc = ctx.Process(target=_pipe_echo, args=(child,), daemon=True)
    pproc.start()
    inbox, outbox = ctx.Queue(), ctx.Queue()
    qproc = ctx.Process(target=_queue_echo, args=(inbox, outbox), daemon=True)
    qproc.start()
    try:
        for rows in (1, 32):
            items = _items(rows)
            requests = [DecodeRequest(IDS, [2, 5], "en", "fr", num_beams=4) for _ in range(rows)]

            def zmq_rt(items: list = items) -> None:
                sock.send(m.encoder.encode(m.Submit(items)))
                m.to_frontend.decode(sock.recv())

            def pipe_rt(requests: list = requests) -> None:
                parent.send(requests)
                parent.recv()

            def queue_rt(requests: list = requests) -> None:
                inbox.put(requests)
                outbox.get()

            figures = {
                name: _timed(fn, repeats)
                for name, fn in (
                    ("zeromq ipc + msgpack", zmq_rt),
                    ("multiprocessing Pipe + pickle", pipe_rt),
                    ("multiprocessing Queue + pickle", queue_rt),
                )
            }
            for name, (wall, cpu) in figures.items():
                rows_out.append(
                    {"transport": name, "rows per message": rows, "round trip us": wall, "front-end CPU us": cpu}
                )
                ratios[f"round_trip_us[{name}, {rows} rows]"] = wall
            base = figures["zeromq ipc + msgpack"][0]
            ratios[f"pipe_vs_zeromq_round_trip[{rows} rows]"] = figures["multiprocessing Pipe + pickle"][0] / base
    finally:
        sock.send(m.encoder.encode(m.Abort([])))
        parent.send(None)
        inbox.put(None)
        for p in (zproc, pproc, qproc):
            p.join(5)
    print(
        table(
            rows_out,
            ["transport", "rows per message", "round trip us", "front-end CPU us"],
            "front end <-> core round trips (echo, nothing decoded)",
        )
    )
    return {"rows": rows_out, "ratios": ratios, "params": {"repeats": repeats}}
