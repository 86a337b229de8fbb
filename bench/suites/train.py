"""``train``: optimizer-step time and peak memory of LSLo (2;2;8) versus full fine-tuning on the same batches.
Step times are interleaved in one process; peak memory is measured in a fresh process per variant (CPU:
peak RSS; CUDA: peak allocated). Ratios ``lslo_vs_full_step_time`` and ``lslo_vs_full_peak_memory``."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from transformers.models.m2m_100.modeling_m2m_100 import shift_tokens_right

from bench.common import interleaved, median, proc_status_mib, table
from bench.workloads import build, mixed_batch


def step_fn(model, params, batch, lslo=None):
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    labels = batch["input_ids"].clone()
    decoder_input_ids = shift_tokens_right(labels, 1, 2)

    def run() -> None:
        def forward():
            out = model(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                decoder_input_ids=decoder_input_ids,
            ).logits
            return F.cross_entropy(out.float().view(-1, out.size(-1)), labels.view(-1))

        if lslo is not None:
            with lslo.route(batch["src"], batch["tgt"]):
                loss = forward()
                loss.backward()
        else:
            loss = forward()
            loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return run


def prepare(size: str, device: torch.device, dtype: torch.dtype, rows: int):
    work = build(size, device, dtype)
    work.model.train()
    work.base.train()
    for p in work.base.parameters():
        p.requires_grad_(True)
    batch = mixed_batch(work, rows, 24, seed=0, device=device)
    return work, batch


def peak_memory(size: str, variant: str, device: str, rows: int) -> float:
    """Peak memory (MiB) of three training steps of one variant, in a fresh process."""
    # A fixed mmap threshold makes glibc return freed tensors to the OS at once, so the copy of the model that
    # the variant does not use, freed before the steps, does not linger in RSS and get reused unseen.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}
    out = subprocess.run(
        [sys.executable, "-m", "bench.suites.train", size, variant, device, str(rows)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    child = json.loads(out.stdout.strip().splitlines()[-1])
    if device == "cpu" and not child["peak_reset"]:  # the peak may include the freed model copy
        raise RuntimeError("cannot reset the peak RSS (/proc/self/clear_refs): CPU peak memory is not measurable here")
    return float(child["peak_mib"])


def _reset_peak_rss() -> bool:
    """Linux resets VmHWM to the current RSS on ``echo 5 > /proc/self/clear_refs``."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _child(size: str, variant: str, device_name: str, rows: int) -> None:
    """Peak memory of the training state (weights, gradients, optimizer, activations) of one variant: on CPU
    the peak RSS over three steps minus the RSS of the process before any model existed (torch and its
    libraries); on CUDA the peak allocated bytes."""
    device = torch.device(device_name)
    dtype = torch.float32
    before = proc_status_mib("VmRSS")
    work, batch = prepare(size, device, dtype, rows)
    if variant == "lslo":
        del work.base
        fn = step_fn(work.model, work.lslo.trainable_parameters(), batch, work.lslo)
    else:
        work.lslo.remove()
        del work.model
        fn = step_fn(work.base, list(work.base.parameters()), batch)
    work.__dict__.clear()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    reset = _reset_peak_rss()
    for _ in range(3):
        fn()
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak = proc_status_mib("VmHWM") - before
    print(json.dumps({"peak_mib": peak, "peak_reset": reset}))


def run(device: torch.device, dtype: torch.dtype, quick: bool) -> dict[str, Any]:
    # The M2M-124-sized model runs on CPU too (about ten minutes on 2 cores): the memory target is about a
    # model whose weights, not its activations, dominate, as at the paper's scale.
    sizes = ["demo"] if quick else ["demo", "mid", "m2m124"]
    rows, ratios, models = [], {}, {}
    for size in sizes:
        big_on_cpu = size == "m2m124" and device.type == "cpu"
        rows_per_batch = 16 if big_on_cpu else 32
        repeats = 3 if quick or big_on_cpu else 7
        work, batch = prepare(size, device, torch.float32, rows_per_batch)
        models[size] = work.dims()
        times = interleaved(
            {
                "lslo": step_fn(work.model, work.lslo.trainable_parameters(), batch, work.lslo),
                "full": step_fn(work.base, list(work.base.parameters()), batch),
            },
            repeats,
            device,
        )
        del work
        memory = {v: peak_memory(size, v, str(device), rows_per_batch) for v in ("lslo", "full")}
        step = {k: median(v) for k, v in times.items()}
        rows.append(
            {
                "model": size,
                "batch rows": rows_per_batch,
                "lslo step s": step["lslo"],
                "full step s": step["full"],
                "time lslo/full": step["lslo"] / step["full"],
                "lslo peak MiB": memory["lslo"],
                "full peak MiB": memory["full"],
                "memory lslo/full": memory["lslo"] / memory["full"],
                "times": times,
            }
        )
        ratios[f"lslo_vs_full_step_time[{size}]"] = step["lslo"] / step["full"]
        ratios[f"lslo_vs_full_peak_memory[{size}]"] = memory["lslo"] / memory["full"]
    largest = sizes[-1]
    ratios["lslo_vs_full_step_time"] = ratios[f"lslo_vs_full_step_time[{largest}]"]
    ratios["lslo_vs_full_peak_memory"] = ratios[f"lslo_vs_full_peak_memory[{largest}]"]
    print(
        table(
            rows,
            [
                "model",
                "batch rows",
                "lslo step s",
                "full step s",
                "time lslo/full",
                "lslo peak MiB",
                "full peak MiB",
                "memory lslo/full",
            ],
            "training step, 24 source tokens per row, AdamW, fp32",
        )
    )
    print(
        f"\nlslo_vs_full_step_time ({largest}) = {ratios['lslo_vs_full_step_time']:.2f} (target <= 0.8); "
        f"lslo_vs_full_peak_memory ({largest}) = {ratios['lslo_vs_full_peak_memory']:.2f} (target <= 0.6)"
    )
    memory_note = (
        "torch.cuda.max_memory_allocated"
        if device.type == "cuda"
        else (
            "peak RSS over three steps minus the RSS before the model was built (fresh process per variant; the "
            "peak is reset after the unused model copy is freed)"
        )
    )
    return {"rows": rows, "ratios": ratios, "models": models, "params": {"source_tokens": 24, "memory": memory_note}}


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
