"""Models and inputs for the benchmarks: the demo model, random mid-sized and M2M-124-sized M2M100s with
random (non-zero) LSLo adapters for the paper's 12 languages, and random mixed-pair batches."""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import M2M100Config, M2M100ForConditionalGeneration

from lslo import LSLoConfig, LSLoHandle, inject
from lslo.io import load_bundle
from lslo.languages.tables import load_table

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "adapters" / "demo"
# The demo's 12-language bundle as trained: what tests and benchmarks decode with (the served bundle/ holds
# fewer adapters, weighted towards the base).
DEMO_BUNDLE = DEMO / "bundle-paper"
LANG12 = tuple(load_table("lang12"))

SIZES: dict[str, dict[str, int]] = {
    "mid": dict(
        d_model=512,
        encoder_layers=6,
        decoder_layers=6,
        encoder_ffn_dim=2048,
        decoder_ffn_dim=2048,
        encoder_attention_heads=8,
        decoder_attention_heads=8,
        vocab_size=32000,
    ),
    "m2m124": dict(
        d_model=1024,
        encoder_layers=12,
        decoder_layers=12,
        encoder_ffn_dim=4096,
        decoder_ffn_dim=4096,
        encoder_attention_heads=16,
        decoder_attention_heads=16,
        vocab_size=256008,
    ),
}


@dataclass
class Workload:
    name: str
    model: M2M100ForConditionalGeneration  # with LSLo injected
    base: M2M100ForConditionalGeneration  # an independent copy without LSLo
    lslo: LSLoHandle
    languages: tuple[str, ...]
    token_ids: tuple[int, int]  # range of ordinary token ids to sample from
    lang_token: dict[str, int]

    def dims(self) -> dict[str, Any]:
        c = self.model.config
        return {
            "d_model": c.d_model,
            "layers": f"{c.encoder_layers}+{c.decoder_layers}",
            "ffn": c.encoder_ffn_dim,
            "vocab": c.vocab_size,
            "parameters": sum(p.numel() for p in self.base.parameters()),
            "lslo_parameters": sum(self.lslo.parameter_counts().values()),
        }


def random_model(size: str, device: torch.device, dtype: torch.dtype, seed: int = 0) -> M2M100ForConditionalGeneration:
    torch.manual_seed(seed)
    config = M2M100Config(
        **SIZES[size],
        max_position_embeddings=1024,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        encoder_layerdrop=0.0,
        decoder_layerdrop=0.0,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
    )
    with torch.device(device):
        model = M2M100ForConditionalGeneration(config)
    return model.to(dtype).eval()


def randomize(lslo: LSLoHandle, seed: int = 0, std: float = 0.02) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in lslo.trainable_parameters():
            p.copy_((torch.randn(p.shape, generator=gen) * std).to(p))


def build(
    size: str, device: torch.device, dtype: torch.dtype, layer_map: str = "paper", ranks: str = "2;2;8"
) -> Workload:
    """``size``: "demo" (the shipped demo model and bundle), "mid" or "m2m124" (random weights)."""
    if size == "demo":
        base = M2M100ForConditionalGeneration.from_pretrained(DEMO / "base", dtype=dtype, use_safetensors=True)
        base = base.to(device).eval()
        model = copy.deepcopy(base)
        lslo = load_bundle(model, DEMO_BUNDLE)
        if layer_map != "paper":  # same adapters, other routing: rebuild with the requested map
            lslo.remove()
            lslo = inject(
                model,
                LSLoConfig.from_strings(
                    ",".join(lslo.layout.codes),
                    ranks,
                    layer_map=layer_map,
                    tiers={s.code: s.tier for s in lslo.languages},
                ),
            )
            randomize(lslo)
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(DEMO / "base")
        languages = lslo.layout.codes
        lang_token = {c: tok.get_lang_id(c) for c in languages}
        return Workload(size, model, base, lslo, languages, (4, tok.vocab_size - 1), lang_token)
    base = random_model(size, device, dtype)
    model = copy.deepcopy(base)
    lslo = inject(model, LSLoConfig.from_strings("lang12", ranks, layer_map=layer_map))
    randomize(lslo)
    vocab = model.config.vocab_size
    lang_token = {c: vocab - 120 + i for i, c in enumerate(LANG12)}
    return Workload(size, model, base, lslo, LANG12, (4, vocab - 200), lang_token)


def mixed_batch(work: Workload, rows: int, src_len: int, seed: int, device: torch.device) -> dict[str, Any]:
    """Random pairs over the workload's languages; random tokens with the source language token first."""
    rng = random.Random(seed)
    pairs = [tuple(rng.sample(work.languages, 2)) for _ in range(rows)]
    gen = torch.Generator().manual_seed(seed)
    lo, hi = work.token_ids
    ids = torch.randint(lo, hi, (rows, src_len), generator=gen)
    ids[:, 0] = torch.tensor([work.lang_token[s] for s, _ in pairs])
    ids[:, -1] = 2
    prefix = torch.tensor([[2, work.lang_token[t]] for _, t in pairs])
    return {
        "input_ids": ids.to(device),
        "attention_mask": torch.ones_like(ids).to(device),
        "decoder_input_ids": prefix.to(device),
        "src": [p[0] for p in pairs],
        "tgt": [p[1] for p in pairs],
    }
