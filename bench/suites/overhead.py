"""``overhead``: generation throughput of the base model versus the same model with LSLo (2;2;8, all modules,
paper layer map) on mixed-pair batches of 12 languages. Ratio ``lslo_vs_base_throughput`` at batch 32."""

from __future__ import annotations

from typing import Any

import torch

from bench.common import interleaved, median, table
from bench.workloads import build, mixed_batch


def generate_fn(model, batch, beams: int, new_tokens: int, lslo=None):
    def run() -> None:
        kwargs = dict(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            decoder_input_ids=batch["decoder_input_ids"],
            num_beams=beams,
            do_sample=False,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
        )
        with torch.inference_mode():
            if lslo is None:
                model.generate(**kwargs)
            else:
                with lslo.route(batch["src"], batch["tgt"]):
                    model.generate(**kwargs)

    return run


def run(device: torch.device, dtype: torch.dtype, quick: bool) -> dict[str, Any]:
    sizes = ["demo"] if quick else (["demo", "mid"] + (["m2m124"] if device.type == "cuda" else []))
    if device.type == "cuda" and quick:
        sizes = ["m2m124"]
    batches = [1, 32] if quick else [1, 8, 32]
    decodes = [("greedy", 1), ("beam5", 5)]
    new_tokens = 16 if quick else 32
    repeats = 3 if quick else 7
    rows, ratios, models = [], {}, {}
    for size in sizes:
        work = build(size, device, dtype)
        models[size] = work.dims()
        for decode, beams in decodes:
            for n in batches:
                batch = mixed_batch(work, n, 24, seed=n, device=device)
                times = interleaved(
                    {
                        "base": generate_fn(work.base, batch, beams, new_tokens),
                        "lslo": generate_fn(work.model, batch, beams, new_tokens, work.lslo),
                    },
                    repeats,
                    device,
                )
                tokens = n * new_tokens
                base_tps, lslo_tps = tokens / median(times["base"]), tokens / median(times["lslo"])
                rows.append(
                    {
                        "model": size,
                        "decode": decode,
                        "batch": n,
                        "base tok/s": base_tps,
                        "lslo tok/s": lslo_tps,
                        "lslo/base": lslo_tps / base_tps,
                        "base s": median(times["base"]),
                        "lslo s": median(times["lslo"]),
                        "times": times,
                    }
                )
                if n == 32:
                    ratios[f"lslo_vs_base_throughput[{size},{decode},batch32]"] = lslo_tps / base_tps
        del work
    headline = [v for k, v in ratios.items()]
    ratios["lslo_vs_base_throughput"] = min(headline)  # the worst case at batch 32
    print(
        table(
            rows,
            ["model", "decode", "batch", "base tok/s", "lslo tok/s", "lslo/base"],
            f"generation throughput, {new_tokens} new tokens per row, 12 languages, random pairs",
        )
    )
    target = 0.90 if device.type == "cuda" else 0.85
    print(
        f"\nlslo_vs_base_throughput (worst at batch 32) = {ratios['lslo_vs_base_throughput']:.3f} (target >= {target})"
    )
    return {
        "rows": rows,
        "ratios": ratios,
        "models": models,
        "params": {
            "new_tokens": new_tokens,
            "source_tokens": 24,
            "repeats": repeats,
            "ranks": "2;2;8",
            "modules": "all",
            "layer_map": "paper",
            "target": target,
        },
    }
