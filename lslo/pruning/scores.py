"""The subspace demand score of Eq. 6 per B matrix: ``Score(B) = #pruned_B - P * #B``.

Positive: the matrix was pruned more than the pool's target rate (its language needs less space there);
negative: it needs more. Within one pool the scores sum to ``round(P n) - P n``, i.e. zero up to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lslo.adapters.handle import LSLoHandle


@dataclass(frozen=True)
class SubspaceScore:
    stack: str
    layer: int
    module: str
    side: str
    language: str
    pruned: int
    size: int
    score: float


@torch.no_grad()
def subspace_scores(lslo: LSLoHandle, ratio: float) -> list[SubspaceScore]:
    """Score every (module, side, language) B matrix from its pruning mask (zeros of B where no mask)."""
    rows = []
    for m in lslo.modules:
        for side, bank in m.module.bank_items():
            for code in lslo.layout.codes:
                sl = lslo.layout.slice(code)
                if bank.prune_mask is not None:
                    pruned = int((~bank.prune_mask[:, sl]).sum())
                else:
                    pruned = int((bank.lora_B[:, sl] == 0).sum())
                size = bank.lora_B[:, sl].numel()
                rows.append(SubspaceScore(m.stack, m.layer, m.name, side, code, pruned, size, pruned - ratio * size))
    return rows
