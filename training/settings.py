"""Command settings as validated data.

Each command's options are one pydantic model. The same fields are the YAML keys of ``--config FILE`` and
the command-line flags (``prune_start`` <-> ``--prune-start``, made by ``lslo.cli.flags``); flags override the
file. Every problem -- type errors from pydantic and the cross-field checks of ``problems()`` -- is reported in
one ConfigError before any work starts.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lslo.cli.flags import validation_problems
from lslo.errors import ConfigError


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def problems(self) -> list[str]:
        """Cross-field checks; subclasses extend."""
        return []


class TrainSettings(Settings):
    """Options shared by every training recipe."""

    base: Path = Field(description="base model directory (Hugging Face format, with its tokenizer)")
    data: Path = Field(
        description="training data: a FLORES directory, aligned <stem>.<lang> files (OPUS/Moses "
        'style), a .jsonl of {"translation": {...}} lines, or a .tsv with a header row'
    )
    languages: str = Field("auto", description="auto (every language of the data), lang12, lang30 or a comma list")
    out: Path = Field(description="output directory (checkpoint, log.jsonl, results)")
    split: str = Field(
        "auto", description="FLORES split to train on (auto: train if there is one, else dev; the paper trains on dev)"
    )
    directions: str | None = Field(
        None, description="directions to train, like 'en>fr,fr>en' (default: both directions of every pair in the data)"
    )
    valid: Path | None = Field(
        None,
        description="validation data, in any of --data's forms (default: the data's "
        "own valid/dev part, FLORES dev when training on another split, "
        "else a held-out share)",
    )
    valid_share: float = Field(
        0.05,
        ge=0,
        lt=1,
        description="share of the training data held out for validation "
        "when none is given (0: no validation unless --valid is "
        "given, not even on the data's own valid part or "
        "FLORES dev)",
    )
    valid_max: int = Field(1000, ge=1, description="most segments held out for validation")
    valid_pairs: int | None = Field(
        None,
        ge=1,
        description="most validation pairs (segment and direction) scored "
        "for loss each epoch, a seeded sample (default: all)",
    )
    valid_chrf_sents: int = Field(100, ge=0, description="validation rows translated each epoch for chrF++ (0: off)")
    select: Literal["best", "last"] = Field("best", description="ship the best epoch (see --select-by) or the last one")
    select_by: Literal["loss", "chrf"] = Field(
        "loss", description="what 'best' means: the lowest validation loss, or the highest chrF++ on the sample"
    )
    patience: int | None = Field(
        None, ge=1, description="stop after this many epochs without a better one (by --select-by; default: never)"
    )
    pairs_per_segment: int | None = Field(
        None,
        ge=1,
        description="directions drawn afresh per segment each epoch (default: every direction, as the paper trains)",
    )
    epochs: int = Field(15, ge=1, description="training epochs T")
    lr: float | None = Field(None, gt=0, description="peak learning rate (default: per recipe)")
    lr_schedule: Literal["inverse_sqrt", "constant", "linear"] = Field(
        "inverse_sqrt", description="decay after warm-up"
    )
    warmup_steps: int | None = Field(None, ge=0, description="linear warm-up steps (default: 5% of all steps)")
    max_tokens: int = Field(4096, ge=16, description="token budget of one batch (rows x longest side)")
    accum: int = Field(1, ge=1, description="batches accumulated per optimizer step")
    max_len: int = Field(256, ge=4, description="longest source or target in tokens; longer ones are truncated")
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    clip_norm: float = Field(0.0, ge=0, description="gradient clipping norm (0: off)")
    seed: int = 0
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="auto: bf16 mixed precision on CUDA when supported, else fp16; fp32 on CPU"
    )
    threads: int | None = Field(None, ge=1, description="torch CPU threads")
    save_every: int = Field(200, ge=1, description="checkpoint every N optimizer steps (and at each epoch end)")
    resume: bool = Field(False, description="continue from <out>/checkpoint")
    log_every: int = Field(10, ge=1, description="log.jsonl line every N steps")
    eval_groups: str | None = Field(None, description="direction groups to evaluate after each epoch, e.g. H2H,V2V")
    eval_split: str = Field("devtest", description="split for per-epoch evaluation")
    eval_max_sents: int = Field(100, ge=1, description="segments per direction in per-epoch evaluation")
    eval_beam: int = Field(5, ge=1)
    stop_after_steps: int | None = Field(None, ge=1, description="stop (with a checkpoint) after N steps, as if killed")
    progress: bool = Field(True, description="progress bars")

    def problems(self) -> list[str]:
        if self.select_by == "chrf" and self.valid_chrf_sents == 0:
            return ["--select-by chrf needs a chrF++ sample: --valid-chrf-sents must be above 0"]
        return []


def build_settings(model: type[Settings], args: argparse.Namespace | dict[str, Any]) -> Any:
    """Config file + flags -> typed settings; ConfigError with every type problem.

    Cross-field checks (``Settings.problems()``) are left to the command, which reports them together with
    its input checks (missing files, unknown languages...).
    """
    given = dict(vars(args) if isinstance(args, argparse.Namespace) else args)
    config_path = given.pop("config", None)
    for key in ("command", "func"):
        given.pop(key, None)
    values: dict[str, Any] = {}
    problems: list[str] = []
    if config_path is not None:
        try:
            loaded = yaml.safe_load(Path(config_path).read_text(encoding="utf-8")) or {}
            if not isinstance(loaded, dict):
                problems.append(f"config file {config_path} must hold a mapping of option: value")
            else:
                values.update({str(k).replace("-", "_"): v for k, v in loaded.items()})
        except (OSError, yaml.YAMLError) as err:
            problems.append(f"cannot read config file {config_path}: {err}")
    values.update({k: v for k, v in given.items() if v is not None})
    try:
        settings = model(**values)
    except ValidationError as err:
        raise ConfigError(problems + validation_problems(err, as_flags=True, values=True), "options") from None
    if problems:
        raise ConfigError(problems, "options")
    return settings


__all__ = ["Settings", "TrainSettings", "build_settings"]
