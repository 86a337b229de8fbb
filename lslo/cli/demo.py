"""A short tour of the library on a tiny random M2M100 (no downloads, about ten seconds on a laptop CPU)."""

from __future__ import annotations

import tempfile
import time

import torch
from transformers import M2M100Config, M2M100ForConditionalGeneration

from lslo.adapters.config import LSLoConfig
from lslo.adapters.inject import inject
from lslo.io.bundle import load_bundle, save_bundle
from lslo.pruning import Pruner, PruningSchedule, language_pools


def tiny_model(seed: int = 0) -> M2M100ForConditionalGeneration:
    torch.manual_seed(seed)
    config = M2M100Config(
        vocab_size=256,
        d_model=64,
        encoder_layers=4,
        decoder_layers=4,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        max_position_embeddings=64,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
    )
    model = M2M100ForConditionalGeneration(config)
    model.eval()
    return model


def run_demo(seed: int = 0) -> None:
    start = time.perf_counter()
    model = tiny_model(seed)
    config = LSLoConfig.from_strings("lang12", "2;2;8", modules="all", fc_mode="full", layer_map="paper")
    lslo = inject(model, config)
    print("tiny M2M100: d_model 64, 4+4 layers; LSLo over lang12 with ranks 2;2;8 (H;M;V)")
    print(f"layer map (paper preset): {lslo.layer_map.describe()}")
    counts = lslo.parameter_counts()
    print(
        f"trainable LSLo parameters: {sum(counts.values()):,} "
        f"(en {counts['en']:,}, oc {counts['oc']:,}); base frozen: "
        f"{sum(p.numel() for p in model.parameters() if not p.requires_grad):,}"
    )

    # Give every adapter some weight so that routing matters, then compare a mixed batch with rows alone.
    with torch.no_grad():
        for p in lslo.trainable_parameters():
            p.normal_(0, 0.2)
    pairs = [("en", "oc"), ("fr", "zh"), ("wo", "de"), ("ja", "en")]
    src, tgt = [s for s, _ in pairs], [t for _, t in pairs]
    ids = torch.randint(4, 200, (len(pairs), 9), generator=torch.Generator().manual_seed(seed))
    dec = torch.randint(4, 200, (len(pairs), 6), generator=torch.Generator().manual_seed(seed + 1))
    with torch.no_grad(), lslo.route(src, tgt):
        mixed = model(input_ids=ids, decoder_input_ids=dec).logits
    worst = 0.0
    for i, (s, t) in enumerate(pairs):
        with torch.no_grad(), lslo.route([s], [t]):
            alone = model(input_ids=ids[i : i + 1], decoder_input_ids=dec[i : i + 1]).logits
        worst = max(worst, float((alone - mixed[i : i + 1]).abs().max()))
    print(f"mixed batch of {len(pairs)} language pairs vs each row alone: max |logit difference| = {worst:.2e}")

    schedule = PruningSchedule(ratio=0.9, start=2, duration=8, total=15)
    ratios = ", ".join(f"{schedule.ratio_at(e):.3f}" for e in range(1, 16))
    print(f"gradual pruning schedule P=0.9, E=2, k=8, T=15: {ratios}")
    pruner = Pruner(lslo, language_pools(lslo, [s.code for s in lslo.languages if s.tier in ("H", "M")]))
    pruner.prune_to(schedule.ratio_at(15))
    nonzero = lslo.nonzero_counts()
    print(
        f"after pruning H and M to 0.9: non-zero parameters en {nonzero['en']:,} of {counts['en']:,}, "
        f"oc {nonzero['oc']:,} of {counts['oc']:,}"
    )

    with tempfile.TemporaryDirectory() as tmp:
        manifest = save_bundle(lslo, tmp, base_name="tiny-random")
        fresh = tiny_model(seed)
        loaded = load_bundle(fresh, tmp)
        same = all(
            torch.equal(loaded.language_state_dict(c)[k], v)
            for c in manifest.languages
            for k, v in lslo.language_state_dict(c).items()
        )
        print(
            f"bundle of {len(manifest.languages)} languages written and read back into a fresh model: "
            f"{'bit-exact' if same else 'MISMATCH'}"
        )
    print(f"done in {time.perf_counter() - start:.1f}s")
