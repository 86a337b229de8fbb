"""Weight Learning (Eq. 5): learn, per encoder and decoder layer, whether LSLo should route by source or target.

Each layer has two logits shared by all of its LSLo modules; softmax gives (w_src, w_tgt), which mix the
source- and target-indexed adapters. The larger weight picks the layer's side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from lslo.adapters.layer_map import LayerMap, Side


def gate_key(stack: str, layer: int) -> str:
    return f"{stack}_{layer}"


class LayerGate(nn.Module):
    """Two logits -> softmax weights (w_src, w_tgt); zero logits start both at 0.5."""

    def __init__(self, device: torch.device | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(2, device=device, dtype=dtype or torch.float32))

    def weights(self) -> torch.Tensor:
        return torch.softmax(self.logits.float(), dim=0).to(self.logits.dtype)  # (2,) = (w_src, w_tgt)


def layer_gate(gates: nn.ModuleDict, key: str) -> LayerGate:
    """The gate of one layer (``gate_key``) in a model's gates."""
    gate = gates[key]
    assert isinstance(gate, LayerGate)
    return gate


def build_gates(n_encoder: int, n_decoder: int, device: torch.device | None = None) -> nn.ModuleDict:
    gates = {gate_key("encoder", i): LayerGate(device) for i in range(n_encoder)}
    gates.update({gate_key("decoder", i): LayerGate(device) for i in range(n_decoder)})
    return nn.ModuleDict(gates)


def read_weights(gates: nn.ModuleDict) -> dict[str, list[tuple[float, float]]]:
    """{"encoder": [(w_src, w_tgt), ...], "decoder": [...]} in layer order."""
    out: dict[str, list[tuple[float, float]]] = {"encoder": [], "decoder": []}
    for stack in out:
        i = 0
        while gate_key(stack, i) in gates:
            w = layer_gate(gates, gate_key(stack, i)).weights().detach().float().cpu()
            out[stack].append((float(w[0]), float(w[1])))
            i += 1
    return out


def layer_map_from_weights(weights: Mapping[str, Sequence[tuple[float, float]]]) -> LayerMap:
    """Each layer takes the side with the larger weight (a tie goes to the source side)."""

    def pick(pairs: Sequence[tuple[float, float]]) -> tuple[Side, ...]:
        return tuple("src" if w_src >= w_tgt else "tgt" for w_src, w_tgt in pairs)

    return LayerMap(pick(weights["encoder"]), pick(weights["decoder"]))
