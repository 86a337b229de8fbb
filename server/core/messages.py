"""The protocol between the front end(s) and the engine core: msgspec structs encoded as MessagePack.

Only token ids, language codes, numbers and adapter-file paths cross it; nothing is unpickled on either side.
A front end's DEALER socket talks to the core's ROUTER socket; every message is one frame (after ZeroMQ's
identity frame on the core's side). Request ids are the front end's own (the core keys them by front end).
"""

from __future__ import annotations

from typing import Any

import msgspec


class Item(msgspec.Struct, array_like=True, frozen=True):
    """One source row to decode (``lslo.engine.DecodeRequest`` on the wire)."""

    request_id: int
    source_ids: list[int]
    prefix: list[int]
    source_lang: str | None
    target_lang: str | None
    num_beams: int = 1
    num_return_sequences: int = 1
    max_new_tokens: int = 128
    length_penalty: float = 1.0
    adapters: bool = True
    constraints: list[list[list[int]]] = []  # phrases to emit, each as alternative token sequences


class Result(msgspec.Struct, array_like=True, frozen=True):
    """One row's outcome: its hypotheses (generated ids, best first) and scores, or an error message."""

    request_id: int
    sequences: list[list[int]] = []
    scores: list[float] | None = None
    aborted: bool = False
    error: str | None = None
    status: int = 500  # the HTTP status an error maps to (400: the request's own fault)


# Front end -> core -----------------------------------------------------------------------------------------
class Hello(msgspec.Struct, tag="hello", frozen=True):
    frontend: str  # a name for logs and stats


class Submit(msgspec.Struct, tag="submit", frozen=True):
    items: list[Item]


class Abort(msgspec.Struct, tag="abort", frozen=True):
    request_ids: list[int]


class Call(msgspec.Struct, tag="call", frozen=True):
    """A control operation run by the core between two steps (adapter changes, stats, drain); answered by a
    ``Reply`` with the same ``call_id``."""

    call_id: int
    op: str
    args: dict[str, Any] = {}


# Core -> front end -----------------------------------------------------------------------------------------
class Results(msgspec.Struct, tag="results", frozen=True):
    results: list[Result]
    queued: int = 0  # requests waiting for admission in the core after this message
    step_seconds: list[float] = []  # the durations of the steps since the core's previous Results
    splits: list[str] = []  # steps that failed since then and were retried with fewer rows (error class names)
    admitted: list[int] = []  # requests admitted together, per step that admitted any since then


class Reply(msgspec.Struct, tag="reply", frozen=True):
    call_id: int
    value: Any = None
    error: str | None = None
    error_type: str | None = None  # the exception's class name, re-raised as the matching error in the front end


class State(msgspec.Struct, tag="state", frozen=True):
    """What the front ends mirror of the core: sent to each on ``Hello`` and to all after every adapter change."""

    generation: int  # counts adapter changes
    adapters: list[dict[str, Any]]  # GET /adapters rows
    languages: list[str]  # model codes with an adapter
    fingerprint: str
    decoder_start: int  # the decoder's start token (the front end builds each row's prefix)
    device: str
    dtype: str  # float32, float16, bfloat16 or int8


class Failed(msgspec.Struct, tag="failed", frozen=True):
    """The core could not start (a bad base or bundle): the message says what and where."""

    message: str


ToCore = Hello | Submit | Abort | Call
ToFrontend = Results | Reply | State | Failed

encoder = msgspec.msgpack.Encoder()
to_core = msgspec.msgpack.Decoder(ToCore)
to_frontend = msgspec.msgpack.Decoder(ToFrontend)
