"""What goes into the engine and what comes out: ``DecodeRequest`` (one source row and its decoding settings,
never changed by the engine) and ``DecodeOutput`` (its hypotheses, or that it was aborted). Both are plain data
in token ids, so that they can cross a process boundary."""

from __future__ import annotations

from dataclasses import dataclass

from lslo.engine.constraints import validate_constraints


@dataclass(frozen=True)
class DecodeRequest:
    """One source row to translate. ``source_ids``: ``[src_lang] pieces [eos]``; ``prefix``: the decoder's
    forced start (``[decoder_start, tgt_lang]``). ``source_lang`` / ``target_lang`` route the adapters (a
    language without one, or ``adapters=False``, is decoded by the base alone on that side). ``constraints``:
    phrases every returned hypothesis must contain, each as alternative token sequences (``lslo.engine.constraints``;
    beam search only)."""

    source_ids: tuple[int, ...]
    prefix: tuple[int, ...]
    source_lang: str | None = None
    target_lang: str | None = None
    num_beams: int = 1
    num_return_sequences: int = 1
    max_new_tokens: int = 128
    length_penalty: float = 1.0
    adapters: bool = True
    constraints: tuple[tuple[tuple[int, ...], ...], ...] = ()

    def __post_init__(self) -> None:  # lists are accepted and kept as tuples (hashable, never shared)
        object.__setattr__(self, "source_ids", tuple(int(t) for t in self.source_ids))
        object.__setattr__(self, "prefix", tuple(int(t) for t in self.prefix))
        object.__setattr__(
            self,
            "constraints",
            tuple(tuple(tuple(int(t) for t in alternative) for alternative in c) for c in self.constraints),
        )
        if self.constraints:
            if self.num_beams < 2:
                raise ValueError("constraints need beam search (num_beams >= 2)")
            validate_constraints(self.constraints)


@dataclass(frozen=True)
class EngineLimits:
    """What an engine runs; ``check`` refuses (ValueError) a request that could never run on it."""

    min_beams: int
    rows: int
    max_length: int  # decoder tokens per row: prefix + generated
    max_source_tokens: int

    def check(self, request: DecodeRequest) -> None:
        k = request.num_beams
        if k < self.min_beams or request.num_return_sequences < 1 or request.num_return_sequences > k:
            raise ValueError(f"need {self.min_beams} <= num_beams and 1 <= num_return_sequences <= num_beams")
        if k > self.rows:
            raise ValueError(f"{k} beams do not fit the engine's {self.rows} rows")
        if len(request.prefix) + request.max_new_tokens > self.max_length or request.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be 1..{self.max_length - len(request.prefix)}")
        if not 0 < len(request.source_ids) <= self.max_source_tokens:
            raise ValueError(f"a source row holds 1..{self.max_source_tokens} tokens, got {len(request.source_ids)}")


@dataclass(frozen=True)
class DecodeOutput:
    """The result of the request ``request_id`` (as ``DecodingEngine.submit`` numbered it): the generated ids of
    each returned hypothesis (best first, EOS included when generated) and their scores (beam search:
    length-normalised log-probability; greedy: None); empty and ``aborted`` for a request aborted first."""

    request_id: int
    sequences: tuple[tuple[int, ...], ...] = ()
    scores: tuple[float, ...] | None = None
    aborted: bool = False
