"""``finetune``: the full fine-tuning baseline (Ft-all) and LSLo with the gradual pruning schedule.

setup -> train -> outputs. LSLo writes an adapter bundle to ``<out>/bundle/``; full fine-tuning writes a model
directory to ``<out>/model/``. ``pretrain`` is full fine-tuning with defaults for training a base from scratch.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from lslo.adapters.config import LSLoConfig
from lslo.adapters.handle import LSLoHandle
from lslo.errors import ConfigError
from lslo.io import save_bundle
from lslo.languages.tables import TIERS
from lslo.pruning import PruningSchedule, language_pools
from training.corpora import DataReport, read_flores_split
from training.distributed import barrier, leaving_together
from training.evaluation import evaluate_split
from training.loop import TrainingRun, read_log, train
from training.plots import plot_curves, plot_training_curve
from training.prepare import Inputs
from training.recipes.common import LSLoSettings, attach_pruning, start_run
from training.settings import TrainSettings
from training.validation import Validator, attach_validation, validation_line


class FinetuneSettings(LSLoSettings):
    method: Literal["full", "lslo"] = Field("lslo", description="lslo adapters, or full fine-tuning (Ft-all)")
    prune: float = Field(0.0, description="target pruning ratio P of the gradual pruning schedule (0: off)")
    prune_tiers: str = Field("H,M", description="tiers whose languages are pruned (each language its own pool)")
    prune_start: int = Field(2, description="E: last epoch without pruning")
    prune_epochs: int = Field(8, description="k: epochs over which the ratio rises to P")

    def problems(self) -> list[str]:
        problems = super().problems()
        if self.method == "lslo" and self.prune > 0:
            try:
                PruningSchedule(self.prune, self.prune_start, self.prune_epochs, self.epochs)
            except ConfigError as err:
                problems += err.problems
            bad = [t for t in self.prune_tiers.split(",") if t.strip() and t.strip() not in TIERS]
            if bad:
                problems.append(f"--prune-tiers {self.prune_tiers!r}: unknown tier(s) {bad}; tiers are H, M, L, V")
        if not 0 <= self.prune < 1:
            problems.append(f"--prune {self.prune} must be in [0, 1)")
        return problems

    @property
    def prune_tier_set(self) -> set[str]:
        return {t.strip() for t in self.prune_tiers.split(",") if t.strip()}


class PretrainSettings(FinetuneSettings):
    method: Literal["full", "lslo"] = "full"
    split: str = "train"
    epochs: int = Field(20, ge=1)
    lr: float | None = Field(1e-3, gt=0)
    warmup_steps: int | None = Field(None, ge=0)


def per_epoch_evaluator(
    settings: TrainSettings,
    run: TrainingRun,
    tokenizer: Any,
    languages: list[str],
    tiers: dict[str, str | None],
    history: list[dict[str, Any]],
):
    """Figure 3's curves: evaluate the chosen direction groups after each epoch (rank 0; others wait)."""
    if not settings.eval_groups:
        return None
    groups = [g.strip() for g in settings.eval_groups.split(",") if g.strip()]
    split = read_flores_split(settings.data, settings.eval_split, DataReport(), languages)
    spm_model = Path(settings.base) / "sentencepiece.bpe.model"

    def hook(epoch: int) -> None:
        if run.info.is_main:
            result = evaluate_split(
                run.model,
                tokenizer,
                split,
                languages,
                tiers,
                spm_model,
                run.lslo,
                groups,
                settings.eval_max_sents,
                settings.eval_beam,
                progress=settings.progress,
            )
            history[:] = [h for h in history if h["epoch"] < epoch]  # an epoch re-run after a resume
            history.append({"epoch": epoch, **result.groups})
            run.log.write("eval", epoch=epoch, split=settings.eval_split, groups=result.groups)
        barrier(run.info)

    return hook


def run_finetune(settings: FinetuneSettings, recipe: str = "finetune") -> Path:
    """Train and write the outputs; returns the bundle or model directory."""
    started_at = time.time()
    prune_codes: list[str] = []

    def check(config: LSLoConfig | None, problems: list[str]) -> None:
        if config is not None and settings.prune > 0:
            prune_codes.extend(s.code for s in config.languages if s.tier in settings.prune_tier_set)
            if not prune_codes:
                problems.append(f"--prune {settings.prune} given, but no language is in tiers {settings.prune_tiers}")

    started = start_run(settings, recipe, settings.method, check=check, validates=True)
    run = started.run
    with leaving_together(run.info, run.release):
        schedule = None
        if started.lslo is not None and prune_codes:
            schedule = PruningSchedule(settings.prune, settings.prune_start, settings.prune_epochs, settings.epochs)
            attach_pruning(started, language_pools(started.lslo, prune_codes), schedule)
        # Resumed: the curves and the training time so far come from the log of the interrupted processes.
        history: list[dict[str, Any]] = run.log.earlier_evaluations() if settings.resume else []
        if settings.resume:
            started_at -= run.log.earlier_seconds()
        run.on_epoch_end = per_epoch_evaluator(
            settings, run, started.inputs.tokenizer, started.inputs.languages, started.tiers, history
        )
        data = started.inputs.data
        validator = attach_validation(
            run,
            started.inputs.tokenizer,
            data.valid,
            data.directions,
            schedule.start + schedule.duration if schedule else 1,
        )
        if not train(run):
            return settings.out
        return write_outputs(
            settings, recipe, run, started.inputs, started.lslo, schedule, prune_codes, history, started_at, validator
        )


def write_outputs(
    settings: FinetuneSettings,
    recipe: str,
    run: TrainingRun,
    inputs: Inputs,
    lslo: LSLoHandle | None,
    schedule: PruningSchedule | None,
    prune_codes: list[str],
    history: list[dict[str, Any]],
    started: float,
    validator: Validator | None = None,
) -> Path:
    out = settings.out
    if not run.info.is_main:
        return out
    summary: dict[str, Any] = {
        "recipe": recipe,
        "method": settings.method,
        "seconds": round(time.time() - started, 1),
        "steps": run.position.global_step,
        "examples_per_epoch": len(run.examples),
    }
    validation = validator.restore_best() if validator is not None else None
    if validation is not None:
        summary["validation"] = validation
        print(validation_line(validation), file=sys.stderr)
    if lslo is not None:
        target = _save_lslo(settings, recipe, run, lslo, schedule, prune_codes, validation, summary)
    else:
        target = out / "model"
        run.model.save_pretrained(target)
        inputs.tokenizer.save_pretrained(target)
        trained = [p for p in run.model.parameters() if p.requires_grad]  # tied embeddings counted once
        summary.update(
            model=str(target),
            parameters=sum(p.numel() for p in trained),
            nonzero=sum(int(p.count_nonzero()) for p in trained),
        )
        plot_training_curve(read_log(run.log.path), out / "training.png", title=f"{recipe}: {out.name}")
    if history:
        summary["per_epoch_eval"] = history
        plot_curves(history, out / "curves.png", title=f"{recipe}: spBLEU per epoch ({settings.eval_split})")
    (out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    run.log.write("outputs", **{k: v for k, v in summary.items() if k in ("bundle", "model", "seconds")})
    return target


def _save_lslo(
    settings: FinetuneSettings,
    recipe: str,
    run: TrainingRun,
    lslo: LSLoHandle,
    schedule: PruningSchedule | None,
    prune_codes: list[str],
    validation: dict[str, Any] | None,
    summary: dict[str, Any],
) -> Path:
    """The bundle into ``<out>/bundle`` with its pruning and validation record; its counts into ``summary``."""
    out = settings.out
    pruning = None
    if schedule is not None:
        pruning = {
            **schedule.to_dict(),
            "tiers": sorted(settings.prune_tier_set),
            "languages": prune_codes,
            "pool": "language",
            "method": "global L1 unstructured on B, mask at each epoch start",
        }
    target = out / "bundle"
    save_bundle(
        lslo,
        target,
        base_name=str(settings.base),
        pruning=pruning,
        extra={"recipe": recipe, "settings": run.settings_record, "validation": validation},
    )
    counts, nonzero = lslo.parameter_counts(), lslo.nonzero_counts()
    summary.update(
        bundle=str(target),
        parameters=sum(counts.values()),
        nonzero=sum(nonzero.values()),
        per_language={c: {"params": counts[c], "nonzero": nonzero[c]} for c in counts},
    )
    return target
