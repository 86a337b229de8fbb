"""A base-model fingerprint that survives dtype changes (fp32 training, fp16/bf16 serving).

It records the architecture dimensions exactly and, for a few weight matrices, the mean absolute value and
the root mean square, accumulated in float64. Casting to fp16/bf16 moves these by far less than the tolerance
(rounding errors average out), while a different checkpoint -- or the same one fine-tuned -- moves them by
more.

Version 2 (written since the format has one) reads at most ``SAMPLE_ROWS`` evenly spaced rows of each matrix,
so that a 256k-row shared embedding costs a few MB, not a float64 copy of the whole matrix (2 GiB for
M2M-124). Version 1 fingerprints (no ``version`` key) summarised whole matrices; they are still checked, with
the same statistics streamed over row blocks.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch
from torch import nn

from lslo.hf import hf_config

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
VERSION = 2
SAMPLE_ROWS = 4096
BLOCK_ROWS = 1024  # rows converted to float64 at a time


def _weight(model: nn.Module, path: str) -> torch.Tensor:
    module = model.get_submodule(path)
    base = getattr(module, "base", None)  # an LSLo-wrapped linear
    weight = (base if isinstance(base, nn.Linear) else module).weight
    assert isinstance(weight, torch.Tensor)
    return weight


def _sampled_paths(model: nn.Module) -> list[str]:
    core = "model." if hasattr(model, "model") else ""
    config = hf_config(model)
    n_enc, n_dec = int(config.encoder_layers), int(config.decoder_layers)
    return [
        f"{core}shared",
        f"{core}encoder.layers.0.self_attn.q_proj",
        f"{core}encoder.layers.{n_enc - 1}.fc2",
        f"{core}decoder.layers.0.encoder_attn.k_proj",
        f"{core}decoder.layers.{n_dec - 1}.fc1",
    ]


def sample_rows(n_rows: int, wanted: int | None = None) -> torch.Tensor:
    """Indices of ``wanted`` (default ``SAMPLE_ROWS``) rows spread evenly over ``n_rows`` (all when fewer)."""
    wanted = SAMPLE_ROWS if wanted is None else wanted
    if n_rows <= wanted:
        return torch.arange(n_rows)
    return torch.linspace(0, n_rows - 1, wanted, dtype=torch.float64).round().long()


def weight_stats(weight: torch.Tensor, rows: torch.Tensor | None = None) -> list[float]:
    """[mean |w|, rms] over ``rows`` of ``weight`` (all rows by default), summed in float64 block by block."""
    # weight: (n_rows, n_cols); rows: (k,) indices
    abs_sum = sq_sum = 0.0
    count = 0
    indices = rows if rows is not None else torch.arange(weight.shape[0])
    for block in indices.split(BLOCK_ROWS):
        w = weight.detach().index_select(0, block.to(weight.device)).to(torch.float64)  # (<= BLOCK_ROWS, n_cols)
        abs_sum += float(w.abs().sum())
        sq_sum += float(w.pow(2).sum())
        count += w.numel()
    return [abs_sum / count, (sq_sum / count) ** 0.5]


Method = tuple[int, int | None]  # (version, rows read per matrix; None: all of them)


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def current_method() -> Method:
    return VERSION, SAMPLE_ROWS


def fingerprint_method(fingerprint: object) -> Method:
    """How ``fingerprint`` was computed, so that the model's can be computed the same way. ValueError, with a
    sentence saying why, for a malformed one or one from a newer version of this software."""
    if not isinstance(fingerprint, dict):
        raise ValueError("malformed base-model fingerprint (not an object)")
    version = fingerprint.get("version", 1)
    if not _positive_int(version):
        raise ValueError(f"malformed base-model fingerprint (version {version!r})")
    if version > VERSION:
        raise ValueError(
            f"base-model fingerprint version {version} is newer than this software reads "
            f"(up to {VERSION}): upgrade lslo-mt"
        )
    if version == 1:
        return 1, None
    rows = fingerprint.get("sample_rows")
    if not _positive_int(rows):
        raise ValueError(f"malformed base-model fingerprint (sample_rows {rows!r})")
    return version, rows


@torch.no_grad()
def base_fingerprint(model: nn.Module, version: int = VERSION, rows_per_matrix: int | None = None) -> dict[str, Any]:
    """{"arch": {...}, "stats": {path: [mean_abs, rms]}, "id": short display hash, "version", "sample_rows"}.

    ``rows_per_matrix`` (version 2; default ``SAMPLE_ROWS``): rows read per matrix."""
    if version not in (1, 2):
        raise ValueError(f"fingerprint version {version} is not known (1 or 2)")
    rows_per_matrix = (rows_per_matrix or SAMPLE_ROWS) if version >= 2 else None
    arch = {k: int(getattr(hf_config(model), k)) for k in ARCH_KEYS}
    stats = {}
    for path in _sampled_paths(model):
        w = _weight(model, path)
        rows = sample_rows(w.shape[0], rows_per_matrix) if rows_per_matrix else None
        stats[path.removeprefix("model.")] = weight_stats(w, rows)
    rounded = {k: [f"{v:.3g}" for v in vs] for k, vs in stats.items()}
    shown = json.dumps({"arch": arch, "stats": rounded}, sort_keys=True)
    out: dict[str, Any] = {"arch": arch, "stats": stats, "id": hashlib.sha256(shown.encode()).hexdigest()[:12]}
    if version >= 2:
        out.update(version=version, sample_rows=rows_per_matrix)
    return out


def compare_fingerprints(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Problems that show ``expected`` (from an adapter) was made for another base model than ``actual``.

    ``actual`` must be computed by ``expected``'s method (``fingerprint_method``)."""
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
