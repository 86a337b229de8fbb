"""int8 weights for the engine on the CPU: the frozen base's GEMMs in 8-bit integers, adapters left in float.

Weights are quantized once, symmetrically per output channel (``scale = max|w_row| / 127``); activations at
every call, symmetrically per row (per token). The product is computed exactly in int32 (``torch._int_mm``)
and rescaled, so a row's result depends on that row alone, never on what else is in the batch (unlike
per-tensor dynamic quantization, where one row's outlier coarsens every other row). CTranslate2's ``int8``
compute type quantizes the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lslo.errors import ConfigError

_TINY = 1e-12  # an all-zero row or channel gets this scale instead of 0 (its values quantize to 0 anyway)


@dataclass
class Int8Weight:
    """A quantized ``(out, in)`` weight: ``values_t (in, out)`` int8 (a transposed view, the layout the int8
    GEMM reads) and ``scale (out,)`` float32."""

    values_t: torch.Tensor
    scale: torch.Tensor


def quantize_weight(weight: torch.Tensor) -> Int8Weight:
    """(out, in) float -> int8 per output channel."""
    if weight.device.type != "cpu" or not hasattr(torch, "_int_mm"):
        raise ConfigError(
            [f"int8 weights need the CPU and torch._int_mm (weights on {weight.device}, torch {torch.__version__})"]
        )
    w = weight.detach().float()
    scale = w.abs().amax(dim=1).clamp_min(_TINY) / 127.0  # (out,)
    values = torch.round(w / scale[:, None]).to(torch.int8)  # (out, in)
    return Int8Weight(values.t(), scale)


def int8_linear(x: torch.Tensor, weight: Int8Weight, bias: torch.Tensor | None) -> torch.Tensor:
    """(..., in) float32 -> (..., out) float32: ``x W^T + b`` with x quantized per row, in one int8 GEMM."""
    shape = x.shape
    x2 = x.reshape(-1, shape[-1])  # (m, in)
    row_max = x2.abs().amax(dim=1, keepdim=True).clamp_min_(_TINY)  # (m, 1)
    quantized = (x2 * (127.0 / row_max)).round_().to(torch.int8)  # (m, in)
    y = torch._int_mm(quantized, weight.values_t) * (row_max * (1.0 / 127.0))  # (m, out) float32
    y = torch.addcmul(bias, y, weight.scale) if bias is not None else y.mul_(weight.scale)
    return y.view(*shape[:-1], y.shape[-1])
