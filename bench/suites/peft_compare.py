"""``peft``: the same mixed batches through PEFT's per-sample adapters (``generate(adapter_names=...)``), one
LoRA per target language with the same ranks and modules; our side routes every layer by the target
(all-tgt layer map) so that both do the same work. A merged-weights single-pair run is the ceiling.
Ratio ``lslo_vs_peft_throughput`` at batch 32."""

from __future__ import annotations

import copy
from typing import Any

import torch

from bench.common import interleaved, median, table
from bench.suites.overhead import generate_fn
from bench.workloads import build, mixed_batch


def peft_model(work, device: torch.device):
    from peft import LoraConfig, get_peft_model

    model = copy.deepcopy(work.base)
    targets = ["q_proj", "k_proj", "v_proj", "fc1", "fc2"]  # self- and cross-attention q/k/v, fc1, fc2
    peft = None
    for spec in work.lslo.languages:
        config = LoraConfig(
            r=spec.rank, lora_alpha=spec.rank, target_modules=targets, lora_dropout=0.0, init_lora_weights=False
        )
        if peft is None:
            peft = get_peft_model(model, config, adapter_name=spec.code)
        else:
            peft.add_adapter(spec.code, config)
    return peft.to(device).eval()


def peft_generate_fn(model, batch, beams: int, new_tokens: int):
    def run() -> None:
        with torch.inference_mode():
            model.generate(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                decoder_input_ids=batch["decoder_input_ids"],
                num_beams=beams,
                do_sample=False,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                adapter_names=batch["tgt"],
            )

    return run


def run(device: torch.device, dtype: torch.dtype, quick: bool) -> dict[str, Any]:
    size = "m2m124" if device.type == "cuda" else ("demo" if quick else "mid")
    work = build(size, device, dtype, layer_map="all-tgt")
    peft = peft_model(work, device)
    merged = peft_model(work, device).merge_and_unload(adapter_names=[work.languages[0]])
    batches = [8, 32] if quick else [1, 8, 32]
    decodes = [("greedy", 1)] if quick else [("greedy", 1), ("beam5", 5)]
    new_tokens = 16 if quick else 32
    repeats = 3 if quick else 5
    rows, ratios = [], {}
    for decode, beams in decodes:
        for n in batches:
            batch = mixed_batch(work, n, 24, seed=n, device=device)
            times = interleaved(
                {
                    "lslo": generate_fn(work.model, batch, beams, new_tokens, work.lslo),
                    "peft": peft_generate_fn(peft, batch, beams, new_tokens),
                    "merged": generate_fn(merged, batch, beams, new_tokens),
                },
                repeats,
                device,
            )
            tps = {k: n * new_tokens / median(v) for k, v in times.items()}
            rows.append(
                {
                    "model": size,
                    "decode": decode,
                    "batch": n,
                    "lslo tok/s": tps["lslo"],
                    "peft tok/s": tps["peft"],
                    "merged tok/s": tps["merged"],
                    "lslo/peft": tps["lslo"] / tps["peft"],
                    "lslo/merged": tps["lslo"] / tps["merged"],
                    "times": times,
                }
            )
            if n == 32:
                ratios[f"lslo_vs_peft_throughput[{size},{decode},batch32]"] = tps["lslo"] / tps["peft"]
                ratios[f"lslo_vs_merged_throughput[{size},{decode},batch32]"] = tps["lslo"] / tps["merged"]
    ratios["lslo_vs_peft_throughput"] = min(v for k, v in ratios.items() if k.startswith("lslo_vs_peft"))
    print(
        table(
            rows,
            ["model", "decode", "batch", "lslo tok/s", "peft tok/s", "merged tok/s", "lslo/peft", "lslo/merged"],
            "LSLo (all-tgt) vs PEFT per-sample adapters vs one merged adapter",
        )
    )
    print(f"\nlslo_vs_peft_throughput (worst at batch 32) = {ratios['lslo_vs_peft_throughput']:.3f} (target >= 1.5)")
    import peft as peft_pkg

    return {
        "rows": rows,
        "ratios": ratios,
        "models": {size: work.dims()},
        "params": {
            "new_tokens": new_tokens,
            "repeats": repeats,
            "peft": peft_pkg.__version__,
            "layer_map": "all-tgt",
            "target": 1.5,
        },
    }
