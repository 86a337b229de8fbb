"""``snapshot``: the model of a run's latest checkpoint as a Hugging Face model directory (fp32, fp16 or bf16).

For looking at a long full-training run (pretraining) before it ends, and for keeping its weights somewhere a
checkpoint cannot go: a checkpoint (parameters, optimizer state, RNG) is three times the model and resumes
exactly; a snapshot is the model alone. ``snapshot.json`` says where in the run it was taken and the learning
rate there, which is what continuing from it (``pretrain --base SNAPSHOT --lr ...``) needs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field
from safetensors.torch import load_file
from transformers import AutoTokenizer

from lslo.errors import raise_if_problems
from training.checkpoint import CHECKPOINT_DIR, checkpoint_exists, restore_trained
from training.loop import lr_at, read_log
from training.plots import plot_training_curve
from training.prepare import load_base_model
from training.settings import Settings

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class SnapshotSettings(Settings):
    run: Path = Field(description="output directory of a full-training run (pretrain, finetune --method full)")
    out: Path = Field(description="where to write the model directory")
    dtype: Literal["fp32", "fp16", "bf16"] = Field("fp16", description="dtype of the weights written")


def run_snapshot(settings: SnapshotSettings) -> Path:
    problems = settings.problems()
    state = settings.run / CHECKPOINT_DIR
    meta: dict = {}
    if not checkpoint_exists(settings.run):
        problems.append(f"{settings.run} holds no checkpoint ({state}/state.json)")
    else:
        meta = json.loads((state / "state.json").read_text(encoding="utf-8"))
        recorded = meta.get("settings", {})
        if recorded.get("method") != "full":
            problems.append(
                f"{settings.run} is a {recorded.get('recipe')} run of method {recorded.get('method')!r}: "
                "only full-training runs hold a whole model (LSLo runs write bundles)"
            )
    if settings.out.exists() and any(settings.out.iterdir()):
        problems.append(f"{settings.out} exists and is not empty")
    raise_if_problems(problems, "inputs")

    recorded = meta["settings"]
    base = Path(recorded["base"])
    model = load_base_model(base, torch.device("cpu"))
    restore_trained(model, load_file(str(state / "state.safetensors")), state)
    model.to(DTYPES[settings.dtype]).save_pretrained(settings.out)
    AutoTokenizer.from_pretrained(base).save_pretrained(settings.out)
    position = meta["position"]
    step = int(position["global_step"])
    warmup = recorded.get("warmup_steps")
    info = {
        "run": str(settings.run),
        "recipe": recorded.get("recipe"),
        "base": str(base),
        "dtype": settings.dtype,
        "global_step": step,
        "epoch": position["epoch"],
        "step_in_epoch": position["step_in_epoch"],
        "epochs": recorded.get("epochs"),
        "lr_schedule": recorded.get("lr_schedule"),
        "lr": lr_at(step, float(recorded["lr"]), int(warmup), 0, recorded["lr_schedule"])
        if warmup is not None and recorded.get("lr") and recorded.get("lr_schedule") != "linear"
        else None,
    }
    if (base / "base_info.json").is_file():  # the languages the base was built for go with it
        (settings.out / "base_info.json").write_bytes((base / "base_info.json").read_bytes())
    log = settings.run / "log.jsonl"
    if log.is_file():  # the run so far
        plot_training_curve(read_log(log), settings.out / "training.png", title=f"{settings.run.name} to step {step}")
    (settings.out / "snapshot.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    print(
        f"snapshot of {settings.run} at step {step} (epoch {position['epoch']}, step {position['step_in_epoch']} "
        f"in it) -> {settings.out}"
    )
    return settings.out
