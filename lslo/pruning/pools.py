"""Pruning pools: the sets of B matrices whose entries compete in one global L1 ranking.

- ``language_pools``: one pool per language, all of its B matrices across layers (the main experiments'
  GPS on High/Medium languages, and language-specific pruning, §7.3).
- ``layer_pools``: one pool per layer across all languages, encoder and decoder layers separate
  (Intrinsic Subspace Estimation, §4.2).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from lslo.adapters.handle import AdaptedModule, LSLoHandle
from lslo.adapters.layer import AdapterBank
from lslo.adapters.layer_map import Side


@dataclass(frozen=True)
class PoolMember:
    """One language's B matrix in one module and side: ``bank.lora_B[:, layout.slice(code)]``."""

    module: AdaptedModule
    side: Side
    code: str

    @property
    def bank(self) -> AdapterBank:
        return self.module.module.bank(self.side)


@dataclass(frozen=True)
class Pool:
    name: str
    members: tuple[PoolMember, ...]

    def size(self, lslo: LSLoHandle) -> int:
        return sum(m.bank.lora_B.shape[0] * lslo.layout.rank(m.code) for m in self.members)


def _members(lslo: LSLoHandle, modules: Iterable[AdaptedModule], codes: Iterable[str]) -> tuple[PoolMember, ...]:
    codes = list(codes)
    return tuple(PoolMember(m, side, c) for m in modules for side in m.module.sides for c in codes)


def language_pools(lslo: LSLoHandle, codes: Iterable[str] | None = None) -> list[Pool]:
    codes = list(lslo.layout.codes if codes is None else codes)
    unknown = [c for c in codes if c not in lslo.layout]
    if unknown:
        raise KeyError(f"cannot prune languages without adapters: {unknown}")
    return [Pool(f"lang:{c}", _members(lslo, lslo.modules, [c])) for c in codes]


def layer_pools(lslo: LSLoHandle) -> list[Pool]:
    pools = []
    for stack in ("encoder", "decoder"):
        layers = sorted({m.layer for m in lslo.modules if m.stack == stack})
        for layer in layers:
            modules = [m for m in lslo.modules if m.stack == stack and m.layer == layer]
            pools.append(Pool(f"{stack}.{layer}", _members(lslo, modules, lslo.layout.codes)))
    return pools


def member_view(lslo: LSLoHandle, member: PoolMember) -> tuple[torch.Tensor, torch.Tensor]:
    """(B slice, mask slice) views of one member; creates the bank's mask if pruning has not started."""
    sl = lslo.layout.slice(member.code)
    bank = member.bank
    return bank.lora_B[:, sl], bank.ensure_mask()[:, sl]
