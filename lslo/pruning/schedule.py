"""The Gradual Pruning Schedule (Eq. 4)::

    P_e = 0                          e <= E
    P_e = P - P (1 - (e - E) / k)^3  E < e <= E + k
    P_e = P                          E + k < e <= T

Epochs count from 1. The released code computes the mask at the start of each epoch from P_e; a step-level
variant evaluates the same curve at the fractional epoch ``1 + step / steps_per_epoch``.
"""

from __future__ import annotations

from dataclasses import dataclass

from lslo.errors import raise_if_problems


@dataclass(frozen=True)
class PruningSchedule:
    ratio: float  # P, target share of the pool pruned, in [0, 1)
    start: int = 2  # E, last epoch without pruning
    duration: int = 8  # k, epochs over which the ratio rises to P
    total: int = 15  # T, epochs in the run

    def __post_init__(self) -> None:
        problems = []
        if not 0.0 <= self.ratio < 1.0:
            problems.append(f"pruning ratio P={self.ratio} must be in [0, 1)")
        if self.start < 0:
            problems.append(f"pruning start E={self.start} must be >= 0")
        if self.duration < 1:
            problems.append(f"pruning duration k={self.duration} must be >= 1")
        if self.total < 1:
            problems.append(f"total epochs T={self.total} must be >= 1")
        if self.start + self.duration > self.total:
            problems.append(
                f"E + k = {self.start + self.duration} exceeds T = {self.total}: pruning would not reach P in the run"
            )
        raise_if_problems(problems, "pruning schedule")

    def ratio_at(self, epoch: float) -> float:
        """P_e for a 1-based (possibly fractional) epoch."""
        e, P, E, k = epoch, self.ratio, self.start, self.duration
        if e <= E:
            return 0.0
        if e <= E + k:
            return P - P * (1.0 - (e - E) / k) ** 3
        return P

    def ratio_at_step(self, step: int, steps_per_epoch: int) -> float:
        """The same curve per optimizer step (step 0 is the start of epoch 1)."""
        return self.ratio_at(1.0 + step / steps_per_epoch)

    def to_dict(self) -> dict[str, float | int]:
        return {"ratio": self.ratio, "start": self.start, "duration": self.duration, "total": self.total}
