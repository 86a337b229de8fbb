"""Dimensions of known checkpoints, for parameter accounting and random-weight benchmarks.

Only the shapes matter here; no weights are involved. Values are those of the public configurations
(``config.json`` of the Hugging Face / fairseq releases).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from transformers import M2M100Config

MODEL_PRESETS: dict[str, dict[str, Any]] = {
    # FLORES-101 "MM100 615M" (M2M-124): transformer big, 12+12 layers, 256k vocabulary.
    "m2m124-615m": dict(d_model=1024, encoder_layers=12, decoder_layers=12, encoder_ffn_dim=4096,
                        decoder_ffn_dim=4096, encoder_attention_heads=16, decoder_attention_heads=16,
                        vocab_size=256008),
    "m2m100-418m": dict(d_model=1024, encoder_layers=12, decoder_layers=12, encoder_ffn_dim=4096,
                        decoder_ffn_dim=4096, encoder_attention_heads=16, decoder_attention_heads=16,
                        vocab_size=128112),
    "m2m100-1.2b": dict(d_model=1024, encoder_layers=24, decoder_layers=24, encoder_ffn_dim=8192,
                        decoder_ffn_dim=8192, encoder_attention_heads=16, decoder_attention_heads=16,
                        vocab_size=128112),
    "nllb-600m": dict(d_model=1024, encoder_layers=12, decoder_layers=12, encoder_ffn_dim=4096,
                      decoder_ffn_dim=4096, encoder_attention_heads=16, decoder_attention_heads=16,
                      vocab_size=256206),
}  # fmt: skip


def model_config(preset_or_path: str | Path) -> M2M100Config:
    """An ``M2M100Config`` from a preset name, a ``config.json`` path, or a model directory holding one."""
    key = str(preset_or_path)
    if key in MODEL_PRESETS:
        return M2M100Config(**MODEL_PRESETS[key], max_position_embeddings=1024)
    path = Path(preset_or_path)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{preset_or_path!r} is neither a model preset ({', '.join(MODEL_PRESETS)}) nor a config.json"
        )
    data = json.loads(path.read_text(encoding="utf-8"))
    data.pop("architectures", None)
    return M2M100Config(**{k: v for k, v in data.items() if not k.startswith("_")})
