"""Global L1 unstructured pruning over pools, with masks enforced through optimizer steps.

``prune_to(ratio)`` makes exactly ``round(ratio * n)`` entries of each pool of ``n`` entries zero: the
smallest |B| values, counting entries pruned earlier first, so masks only grow (as with PyTorch's iterative
``global_unstructured``). Masks are stored on the banks (``prune_mask``, saved in ``state_dict``) and enforced
two ways: gradients of pruned entries are zeroed by a tensor hook (so clipping and statistics see the pruned
model), and pruned weights are zeroed again after every optimizer step (so momentum cannot revive them).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lslo.adapters.handle import LSLoHandle
from lslo.adapters.layer import AdapterBank
from lslo.pruning.pools import Pool, member_view


class Pruner:
    def __init__(self, lslo: LSLoHandle, pools: Sequence[Pool]) -> None:
        self.lslo = lslo
        self.pools = list(pools)
        self._hooked: set[int] = set()

    def banks(self) -> list[AdapterBank]:
        seen: dict[int, AdapterBank] = {}
        for pool in self.pools:
            for m in pool.members:
                seen.setdefault(id(m.bank), m.bank)
        return list(seen.values())

    @torch.no_grad()
    def prune_to(self, ratio: float) -> dict[str, int]:
        """Prune every pool to ``ratio`` of its entries; returns {pool name: pruned entries}."""
        if not 0.0 <= ratio < 1.0:
            raise ValueError(f"pruning ratio {ratio} must be in [0, 1)")
        pruned: dict[str, int] = {}
        for pool in self.pools:
            views = [member_view(self.lslo, m) for m in pool.members]
            if not views:
                continue
            scores = torch.cat([b.detach().abs().float().flatten().cpu() for b, _ in views])  # (n,)
            kept = torch.cat([mask.flatten().cpu() for _, mask in views])  # (n,)
            already = int((~kept).sum())
            k = max(round(ratio * scores.numel()), already)
            scores[~kept] = -1.0  # entries pruned before go first
            new_kept = torch.ones_like(kept)
            if k > 0:
                order = torch.sort(scores, stable=True).indices
                new_kept[order[:k]] = False
            offset = 0
            for b, mask in views:
                n = b.numel()
                mask.copy_(new_kept[offset : offset + n].view_as(mask))
                b.mul_(mask)
                offset += n
            pruned[pool.name] = k
        self._hook_gradients()
        return pruned

    @torch.no_grad()
    def enforce(self) -> None:
        """Zero every pruned entry (call after each optimizer step; ``attach`` does it for you)."""
        for bank in self.banks():
            if bank.prune_mask is not None:
                bank.lora_B.mul_(bank.prune_mask)

    def attach(self, optimizer: torch.optim.Optimizer) -> None:
        """Re-apply the masks after every ``optimizer.step()``."""
        optimizer.register_step_post_hook(lambda opt, args, kwargs: self.enforce())

    def _hook_gradients(self) -> None:
        for bank in self.banks():
            param = bank.lora_B
            if id(param) in self._hooked or not param.requires_grad:
                continue
            param.register_hook(lambda grad, bank=bank: grad * bank.prune_mask if bank.prune_mask is not None else grad)
            self._hooked.add(id(param))
