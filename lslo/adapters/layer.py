"""``LSLoLinear``: a frozen ``nn.Linear`` plus per-language low-rank adapters routed per row (Eq. 3 and 5).

For a row whose language (on this layer's side) is ``l``::

    h = W x + scaling * B_l A_l x                                  (Eq. 3)
    h = W x + w_src B_src A_src x + w_tgt B_tgt A_tgt x            (Eq. 5, Weight Learning mode)

The factors of all languages live in one packed bank per side (``lslo.adapters.bank_layout``); a row's
coefficient vector selects its language's columns, so a mixed batch costs two dense matmuls per side and no
per-language loop.
"""

from __future__ import annotations

import math
import zlib
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from lslo.adapters.layer_map import Side
from lslo.adapters.router import Router


class AdapterBank(nn.Module):
    """Packed factors of one side: ``lora_A (R, in)``, ``lora_B (out, R)``.

    ``prune_mask`` (bool, like ``lora_B``, True = kept) exists once pruning has started.
    """

    lora_A: nn.Parameter
    lora_B: nn.Parameter
    prune_mask: torch.Tensor | None

    def __init__(
        self, in_features: int, out_features: int, total_rank: int, device: torch.device, dtype: torch.dtype
    ) -> None:
        super().__init__()
        self.lora_A = nn.Parameter(torch.zeros(total_rank, in_features, device=device, dtype=dtype))
        self.lora_B = nn.Parameter(torch.zeros(out_features, total_rank, device=device, dtype=dtype))
        self.register_buffer("prune_mask", None)

    def ensure_mask(self) -> torch.Tensor:
        if self.prune_mask is None:
            self.prune_mask = torch.ones_like(self.lora_B, dtype=torch.bool)
        return self.prune_mask

    def replace(self, lora_A: torch.Tensor, lora_B: torch.Tensor, prune_mask: torch.Tensor | None) -> None:
        """Swap in new packed tensors (a new layout). Parameters are new objects: optimizers must be rebuilt."""
        self.lora_A = nn.Parameter(lora_A, requires_grad=self.lora_A.requires_grad)
        self.lora_B = nn.Parameter(lora_B, requires_grad=self.lora_B.requires_grad)
        self.prune_mask = prune_mask


def init_seed_for(seed: int, module_path: str, side: str, code: str) -> int:
    """Stable per-(module, side, language) seed, independent of the other languages present."""
    return zlib.crc32(f"{seed}|{module_path}|{side}|{code}".encode())


def kaiming_A(rank: int, in_features: int, seed: int) -> torch.Tensor:
    """(rank, in_features) float32, Kaiming-uniform as in LoRA (a = sqrt(5)), from its own generator."""
    gen = torch.Generator().manual_seed(seed)
    a = torch.empty(rank, in_features)
    nn.init.kaiming_uniform_(a, a=math.sqrt(5), generator=gen)
    return a


class LSLoLinear(nn.Module):
    """Wraps (does not copy) a frozen ``nn.Linear``.

    ``lora_in`` / ``lora_out`` restrict the adapter to the first features of the input / output (the released
    code's ``square`` fc mode); they default to the full width.
    """

    def __init__(
        self,
        base: nn.Linear,
        *,
        path: str,
        layer_key: str,
        sides: tuple[Side, ...],
        router: Router,
        lora_in: int | None = None,
        lora_out: int | None = None,
        dropout: float = 0.0,
        weight_learning: bool = False,
        init_seed: int = 0,
        initialize: bool = True,
    ) -> None:
        super().__init__()
        self.base = base
        self.path = path
        self.layer_key = layer_key
        self.lora_in = lora_in or base.in_features
        self.lora_out = lora_out or base.out_features
        self.weight_learning = weight_learning
        self.init_seed = init_seed
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        # Not a submodule: the router is shared by every LSLo module of the model.
        self._router = router
        layout = router.layout
        self.banks = nn.ModuleDict(
            {
                side: AdapterBank(self.lora_in, self.lora_out, layout.total_rank, base.weight.device, base.weight.dtype)
                for side in sides
            }
        )
        if initialize and base.weight.device.type != "meta":
            for side, bank in self.bank_items():
                with torch.no_grad():
                    for code in layout.codes:
                        bank.lora_A[layout.slice(code)] = self.initial_A(side, code, layout.rank(code))

    # Attributes some callers read from the linear they expect.
    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    @property
    def sides(self) -> tuple[Side, ...]:
        return tuple(side for side, _ in self.bank_items())

    def bank_items(self) -> list[tuple[Side, AdapterBank]]:
        """(side, its bank), in the order the banks were made."""
        return [(cast(Side, side), cast(AdapterBank, bank)) for side, bank in self.banks.items()]

    def bank(self, side: Side) -> AdapterBank:
        return cast(AdapterBank, self.banks[side])

    def initial_A(self, side: str, code: str, rank: int) -> torch.Tensor:
        a = kaiming_A(rank, self.lora_in, init_seed_for(self.init_seed, self.path, side, code))
        return a.to(device=self.base.weight.device, dtype=self.base.weight.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (rows, ..., in_features) -> (rows, ..., out_features)
        if self._router.layout.total_rank == 0 or self._router.base_only:  # no adapters, or switched off
            return self.base(x)
        dropping = self.training and isinstance(self.dropout, nn.Dropout)
        if not torch.is_grad_enabled() and not dropping and not self.weight_learning and len(self.banks) == 1:
            return self._forward_inference(x)
        y = self.base(x)
        x_lora = x if self.lora_in == self.base.in_features else x[..., : self.lora_in]
        x_lora = self.dropout(x_lora)
        rows = x.shape[0]
        gates = self._router.gate_weights(self.layer_key) if self.weight_learning else None
        for side, bank in self.bank_items():
            coef = self._router.coefficients(side, rows, x.device, bank.lora_A.dtype)  # (rows, R)
            if gates is not None:
                coef = coef * gates[0 if side == "src" else 1]
            h = F.linear(x_lora, bank.lora_A)  # (rows, ..., R)
            h = h * coef.view(rows, *([1] * (h.dim() - 2)), -1)
            delta = F.linear(h, bank.lora_B)  # (rows, ..., lora_out)
            if self.lora_out == self.base.out_features:
                y = y + delta
            else:
                y = torch.cat([y[..., : self.lora_out] + delta, y[..., self.lora_out :]], dim=-1)
        return y

    def _forward_inference(self, x: torch.Tensor) -> torch.Tensor:
        """Same result as ``forward`` without autograd, in fewer kernels: the adapter's delta is added to the
        base output in place by one ``addmm_`` (generation runs this path thousands of times per request)."""
        side, bank = self.bank_items()[0]
        y = F.linear(x, self.base.weight, self.base.bias)  # (rows, ..., out)
        x_lora = x if self.lora_in == self.base.in_features else x[..., : self.lora_in]
        h = F.linear(x_lora, bank.lora_A)  # (rows, ..., R)
        rows, rank = x.shape[0], h.shape[-1]
        coef = self._router.coefficients(side, rows, x.device, h.dtype)  # (rows, R)
        h.mul_(coef.view(rows, *([1] * (h.dim() - 2)), rank))
        lora_B = bank.lora_B.to(h.dtype)  # a no-op unless autocast chose another dtype for the matmuls
        if self.lora_out == self.base.out_features:
            y.view(-1, self.lora_out).addmm_(h.view(-1, rank), lora_B.t())
        else:
            y[..., : self.lora_out] += F.linear(h, lora_B)
        return y

    def extra_repr(self) -> str:
        span = ""
        if self.lora_in != self.base.in_features or self.lora_out != self.base.out_features:
            span = f", adapted={self.lora_out}x{self.lora_in}"
        return f"path={self.path}, sides={self.sides}, rank_total={self._router.layout.total_rank}{span}"
