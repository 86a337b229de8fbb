"""Device and dtype choice, in one place for training, export, serving and benchmarks.

Two spellings of the three floating-point dtypes are in use: the short names users type (``fp32``, ``fp16``,
``bf16``: flags, settings) and torch's own names (``float32``...: adapter-file metadata).
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger("lslo")

DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
TORCH_NAMES: dict[str, torch.dtype] = {str(d).removeprefix("torch."): d for d in DTYPES.values()}
FLOAT_DTYPES: tuple[torch.dtype, ...] = tuple(DTYPES.values())


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.bfloat16`` -> ``bf16``."""
    for name, d in DTYPES.items():
        if d == dtype:
            return name
    raise ValueError(f"{dtype} is not one of {', '.join(DTYPES)}")


def resolve_device(choice: str, local_rank: int = 0) -> torch.device:
    """``auto``: the process's CUDA device when there is one, else the CPU. ValueError for an unusable choice."""
    if choice == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(choice)
    except RuntimeError:
        raise ValueError(f"device {choice!r} is not a device (auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {choice!r} asked for, but CUDA is not available on this machine")
    return device


def half_dtype() -> torch.dtype:
    """bf16 where the GPU supports it, else fp16."""
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def weights_dtype(choice: str, device: torch.device) -> torch.dtype:
    """Dtype of served weights: ``auto`` is half precision on CUDA and fp32 on the CPU (which has no fast
    half-precision matmuls); fp16/bf16 on the CPU fall back to fp32 with a warning. ``int8`` (the CPU only;
    ValueError on CUDA) loads fp32 weights, which ``lslo.engine`` then quantizes."""
    if choice == "int8":
        if device.type == "cuda":
            raise ValueError("int8 weights are for the CPU; on CUDA use fp16 or bf16 (or auto)")
        return torch.float32
    if device.type != "cuda":
        if choice in ("fp16", "bf16"):
            log.warning("dtype %s asked for on CPU; using fp32", choice)
        return torch.float32
    return half_dtype() if choice == "auto" else DTYPES[choice]


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """Mixed-precision dtype for training under autocast, or None for full fp32."""
    if device.type != "cuda" or precision == "fp32":
        return None
    return half_dtype() if precision == "auto" else DTYPES[precision]
