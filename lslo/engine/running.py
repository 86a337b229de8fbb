"""``RunningRequest``: the engine's own state of one submitted request (where its beams live, how far it is, which
adapter versions it uses). Private to ``lslo.engine``: callers hold request ids and receive ``DecodeOutput``s."""

from __future__ import annotations

from dataclasses import dataclass, field

from lslo.engine.adapter_pack import ColumnKey
from lslo.engine.constraints import ConstraintState
from lslo.engine.request import DecodeOutput, DecodeRequest


@dataclass(eq=False)
class RunningRequest:
    request_id: int
    request: DecodeRequest
    home: list[int] = field(default_factory=list)  # the engine rows it owns (one per beam once generating)
    order: list[int] = field(default_factory=list)  # its beams' rows in logical (score) order
    position: int = 0  # decoder tokens read so far, minus one
    slot: int = 0  # request slot: cross-attention keys/values
    tokens: list[int] = field(default_factory=list)  # greedy: generated so far
    keys: tuple[ColumnKey | None, ColumnKey | None] = (None, None)  # source- and target-side adapter versions
    constraint_states: list[ConstraintState] = field(default_factory=list)  # by logical beam (constrained only)
    sequences: list[list[int]] | None = None
    scores: list[float] | None = None

    @property
    def prefix(self) -> tuple[int, ...]:
        return self.request.prefix

    @property
    def num_beams(self) -> int:
        return self.request.num_beams

    @property
    def num_return_sequences(self) -> int:
        return self.request.num_return_sequences

    @property
    def max_new_tokens(self) -> int:
        return self.request.max_new_tokens

    @property
    def length_penalty(self) -> float:
        return self.request.length_penalty

    def restart(self) -> None:
        """Back to before admission (its work is lost): for a retry after a failed step."""
        self.sequences, self.scores, self.tokens, self.position = None, None, [], 0
        self.constraint_states = []

    def output(self, aborted: bool = False) -> DecodeOutput:
        if aborted:
            return DecodeOutput(self.request_id, aborted=True)
        return DecodeOutput(
            self.request_id,
            tuple(tuple(s) for s in self.sequences or ()),
            None if self.scores is None else tuple(self.scores),
        )
