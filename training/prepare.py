"""Set-up shared by the recipes: checking every input before work starts, loading the base, building the run."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoTokenizer, M2M100Config, M2M100ForConditionalGeneration

from lslo.adapters.handle import LSLoHandle
from lslo.devices import autocast_dtype, resolve_device
from lslo.errors import ConfigError
from training.checkpoint import checkpoint_exists, load_checkpoint
from training.corpora import DataReport, read_flores_split
from training.data import TrainingData, training_data
from training.distributed import DistInfo
from training.loop import JsonlLog, TrainingRun
from training.pairs import Example
from training.settings import TrainSettings

# Settings that may differ between an interrupted run and its resumption.
RESUMABLE_CHANGES = {"resume", "stop_after_steps", "progress", "threads", "save_every", "log_every", "device"}


@dataclass
class Inputs:
    """What the checks read. A part is None where it could not be read; a problem then says why, and the
    recipe raises before using it."""

    tokenizer: Any
    model_config: M2M100Config | None
    data: TrainingData | None

    @property
    def languages(self) -> list[str]:  # the base model's codes
        return self.data.languages if self.data is not None else []

    @property
    def complete(self) -> bool:
        return self.tokenizer is not None and self.model_config is not None and self.data is not None


def read_base(base: Path, problems: list[str]) -> tuple[Any, M2M100Config | None]:
    if not base.is_dir():
        problems.append(f"base model directory {base} does not exist or is not readable")
        return None, None
    if not (base / "config.json").is_file():
        problems.append(f"base model directory {base} has no config.json (is it a Hugging Face model directory?)")
        return None, None
    if not any((base / name).is_file() for name in ("model.safetensors", "model.safetensors.index.json")):
        problems.append(
            f"base model directory {base} has no model.safetensors: only safetensors weights are loaded "
            "(pickled pytorch_model.bin files never are; convert them in an environment you trust)"
        )
    try:
        config = M2M100Config.from_pretrained(base)
    except (OSError, ValueError, TypeError) as err:
        problems.append(f"cannot read {base / 'config.json'}: {err}")
        config = None
    try:
        tokenizer = AutoTokenizer.from_pretrained(base)
    except (OSError, ValueError, TypeError, KeyError) as err:
        problems.append(f"cannot load the tokenizer from {base}: {err}")
        tokenizer = None
    return tokenizer, config


def check_device(choice: str, problems: list[str]) -> None:
    try:
        resolve_device(choice)
    except ValueError as err:
        problems.append(f"--device: {err}")


def gather_inputs(settings: TrainSettings, problems: list[str], validates: bool = False) -> Inputs:
    """Check the base directory, the data (read whole: every problem of every file), the languages against the
    tokenizer, and the output directory.

    Problems are appended (after the settings' own cross-field problems); the recipe adds its own checks and
    raises them all together. What the data reader skipped (empty lines, duplicates...) is printed here.
    """
    problems.extend(settings.problems())
    check_device(settings.device, problems)
    tokenizer, config = read_base(settings.base, problems)
    data = training_data(settings, tokenizer, problems, validates)
    if data is not None and data.notes:
        print("data: " + "; ".join(data.notes), file=sys.stderr)
    if settings.eval_groups and data is not None:
        report = DataReport()
        read_flores_split(settings.data, settings.eval_split, report, data.languages)
        problems.extend(report.problems)
    has_checkpoint = checkpoint_exists(settings.out)
    if has_checkpoint and not settings.resume:
        problems.append(
            f"{settings.out} already holds a checkpoint: pass --resume to continue it, or choose another --out"
        )
    if settings.resume and not has_checkpoint:
        problems.append(f"--resume given, but {settings.out} holds no checkpoint")
    return Inputs(tokenizer, config, data)


def load_base_model(base: Path, device: torch.device) -> M2M100ForConditionalGeneration:
    # use_safetensors: never fall back to pickled pytorch_model.bin weights
    model = M2M100ForConditionalGeneration.from_pretrained(base, dtype=torch.float32, use_safetensors=True)
    return model.to(device)


def settings_record(settings: TrainSettings, recipe: str) -> dict[str, Any]:
    return {"recipe": recipe, **json.loads(settings.model_dump_json())}


def prepare_run(
    settings: TrainSettings,
    recipe: str,
    model: nn.Module,
    tokenizer: Any,
    examples: list[Example],
    info: DistInfo,
    device: torch.device,
    peak_lr: float,
    lslo: LSLoHandle | None = None,
) -> TrainingRun:
    """Optimizer (AdamW, fairseq's betas), mixed precision, DDP and, with --resume, the checkpoint."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=peak_lr, betas=(0.9, 0.98), eps=1e-8, weight_decay=settings.weight_decay)
    amp = autocast_dtype(settings.precision, device)
    scaler = torch.amp.GradScaler("cuda") if amp == torch.float16 else None
    trained: nn.Module = model
    if info.enabled:
        layerdrop = float(getattr(model.config, "encoder_layerdrop", 0) or 0) + float(
            getattr(model.config, "decoder_layerdrop", 0) or 0
        )
        trained = nn.parallel.DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=layerdrop > 0,
            # M2M-100's only buffers are its sinusoidal positions, which grow on the rank that translates a
            # long text (per-epoch evaluation, validation chrF++ run on rank 0): broadcasting them would send
            # tensors of different sizes. They are a pure function of their size, so nothing needs syncing.
            broadcast_buffers=False,
        )
    settings.out.mkdir(parents=True, exist_ok=True)
    record = settings_record(settings, recipe)
    run = TrainingRun(
        settings=settings,
        model=model,
        trained=trained,
        examples=examples,
        optimizer=optimizer,
        pad_id=tokenizer.pad_token_id,
        device=device,
        info=info,
        log=JsonlLog(settings.out / "log.jsonl", enabled=info.is_main),
        peak_lr=peak_lr,
        lslo=lslo,
        autocast=amp,
        scaler=scaler,
        settings_record=record,
    )
    if settings.resume:
        position, saved = load_checkpoint(settings.out, model, optimizer, info, scaler)
        changed = sorted(k for k in record if k not in RESUMABLE_CHANGES and saved.get(k) != record[k])
        if changed:
            raise ConfigError(
                [f"{k}: checkpoint has {saved.get(k)!r}, now {record[k]!r}" for k in changed],
                "resume (settings differ from the interrupted run)",
            )
        run.position = position
    return run
