"""A base-model fingerprint that survives dtype changes (fp32 training, fp16/bf16 serving).

It records the architecture dimensions exactly and, for a few weight matrices, the mean absolute value and
the root mean square computed in float64. Casting to fp16/bf16 moves these by far less than the tolerance
(rounding errors average out), while a different checkpoint -- or the same one fine-tuned -- moves them by
more.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch
from torch import nn

ARCH_KEYS = (
    "d_model",
    "encoder_layers",
    "decoder_layers",
    "encoder_ffn_dim",
    "decoder_ffn_dim",
    "encoder_attention_heads",
    "decoder_attention_heads",
    "vocab_size",
)
STAT_TOLERANCE = 1e-3  # relative


def _weight(model: nn.Module, path: str) -> torch.Tensor:
    module = model.get_submodule(path)
    base = getattr(module, "base", None)  # an LSLo-wrapped linear
    return (base if isinstance(base, nn.Linear) else module).weight


def _sampled_paths(model: nn.Module) -> list[str]:
    core = "model." if hasattr(model, "model") else ""
    n_enc = int(model.config.encoder_layers)
    n_dec = int(model.config.decoder_layers)
    return [
        f"{core}shared",
        f"{core}encoder.layers.0.self_attn.q_proj",
        f"{core}encoder.layers.{n_enc - 1}.fc2",
        f"{core}decoder.layers.0.encoder_attn.k_proj",
        f"{core}decoder.layers.{n_dec - 1}.fc1",
    ]


@torch.no_grad()
def base_fingerprint(model: nn.Module) -> dict[str, Any]:
    """{"arch": {...}, "stats": {path: [mean_abs, rms]}, "id": short display hash}."""
    arch = {k: int(getattr(model.config, k)) for k in ARCH_KEYS}
    stats = {}
    for path in _sampled_paths(model):
        w = _weight(model, path).detach().to(torch.float64)
        stats[path.removeprefix("model.")] = [float(w.abs().mean()), float(w.pow(2).mean().sqrt())]
    rounded = {k: [f"{v:.3g}" for v in vs] for k, vs in stats.items()}
    shown = json.dumps({"arch": arch, "stats": rounded}, sort_keys=True)
    return {"arch": arch, "stats": stats, "id": hashlib.sha256(shown.encode()).hexdigest()[:12]}


def compare_fingerprints(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Problems that show ``expected`` (from an adapter) was made for another base model than ``actual``."""
    problems = []
    try:
        for key, value in expected["arch"].items():
            if actual["arch"].get(key) != value:
                problems.append(f"base model {key} is {actual['arch'].get(key)}, the adapter was made for {value}")
        for path, values in expected["stats"].items():
            got = actual["stats"].get(path)
            if got is None:
                problems.append(f"base model has no weight {path!r} to compare")
                continue
            for name, want, have in zip(("mean |w|", "rms"), values, got):
                if abs(have - want) > STAT_TOLERANCE * max(abs(want), 1e-12):
                    problems.append(
                        f"base weights differ at {path} ({name} {have:.6g} vs {want:.6g} when the adapter was made)"
                    )
    except (KeyError, TypeError, AttributeError):
        problems.append("adapter carries a malformed base-model fingerprint")
    return problems
