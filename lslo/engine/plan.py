"""``StepPlan``: what one engine step will do, decided by ``DecodingEngine.schedule`` before any model work.

The engine's step is three phases: ``schedule() -> StepPlan`` (requests aborted, newcomers admitted to cache slots
under the adapter versions they will keep, the rows decoded and the rows scored), ``execute(plan) -> logits``
(the encoder for the newcomers, one decoder step for every live row, the output projection for the scored rows)
and ``update(plan, logits) -> [DecodeOutput]`` (greedy choice or a beam-search step, finished requests retired).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lslo.engine.running import RunningRequest


@dataclass(frozen=True)
class StepPlan:
    aborted: tuple[RunningRequest, ...]  # taken out before this step (their slots already freed)
    admitted: tuple[RunningRequest, ...]  # newcomers: encoded this step; request slots consecutive, one row each
    rows: int  # live rows [0, rows) decoded this step (newcomers' included)
    groups: tuple[tuple[int, tuple[RunningRequest, ...]], ...]  # (beams, requests) scored this step, by beam count
    scored: tuple[int, ...]  # the rows whose logits ``execute`` returns, in ``groups`` order (k per request)
    fresh: tuple[RunningRequest, ...]  # at their first generating step: their other beams' rows are added now

    @property
    def decodes(self) -> bool:
        return self.rows > 0


def plan_step(
    aborted: tuple[RunningRequest, ...],
    admitted: tuple[RunningRequest, ...],
    running: Sequence[RunningRequest],
    rows: int,
) -> StepPlan:
    """The plan over ``running`` (newcomers included) once admission is done: requests past their prompt are
    scored, grouped by beam count (greedy first); one at its first generating step is scored on beam 0's row
    for each of its beams (all beams read the same prompt, as in ``generate()``)."""
    generating = [r for r in running if r.position >= len(r.prefix) - 1]
    by_beams: dict[int, list[RunningRequest]] = {}
    for r in generating:
        by_beams.setdefault(r.num_beams, []).append(r)
    groups = tuple((k, tuple(group)) for k, group in sorted(by_beams.items()))
    fresh = tuple(r for r in generating if len(r.home) < r.num_beams)
    scored = tuple(
        s
        for _, group in groups
        for r in group
        for s in ([r.order[0]] * r.num_beams if len(r.home) < r.num_beams else r.order)
    )
    return StepPlan(aborted, admitted, rows, groups, scored, fresh)
