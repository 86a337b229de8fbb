"""``DecodeRequest``: one source row for the engine, its decoding settings, and (when done) its results."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from lslo.engine.adapters import ColumnKey


@dataclass(eq=False)
class DecodeRequest:
    """One source row to translate. ``source_ids``: ``[src_lang] pieces [eos]``; ``prefix``: the decoder's
    forced start (``[decoder_start, tgt_lang]``). ``source_lang`` / ``target_lang`` route the adapters (a
    language without one, or ``adapters=False``, is decoded by the base alone on that side)."""

    source_ids: Sequence[int]
    prefix: Sequence[int]
    source_lang: str | None = None
    target_lang: str | None = None
    num_beams: int = 1
    num_return_sequences: int = 1
    max_new_tokens: int = 128
    length_penalty: float = 1.0
    adapters: bool = True
    # Results: the generated ids of each returned hypothesis (best first, EOS included when generated) and
    # their scores (beam search: length-normalised log-probability; greedy: None).
    sequences: list[list[int]] | None = None
    scores: list[float] | None = None
    cancelled: bool = False
    done: bool = False
    # Engine bookkeeping.
    _home: list[int] = field(default_factory=list, repr=False)
    _order: list[int] = field(default_factory=list, repr=False)
    _position: int = 0
    _slot: int = 0  # request slot: cross-attention keys/values
    _tokens: list[int] = field(default_factory=list, repr=False)  # greedy: generated so far
    _keys: tuple[ColumnKey | None, ColumnKey | None] = (None, None)

    def cancel(self) -> None:
        """Drop this request at the next step (a disconnected client); its rows free their slots."""
        self.cancelled = True
