"""``finetune``: the full fine-tuning baseline (Ft-all) and LSLo with the gradual pruning schedule.

setup -> train -> outputs. LSLo writes an adapter bundle to ``<out>/bundle/``; full fine-tuning writes a model
directory to ``<out>/model/``. ``pretrain`` is full fine-tuning with defaults for training a base from scratch.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field

from lslo.config import LSLoConfig
from lslo.errors import ConfigError, raise_if_problems
from lslo.handle import LSLoHandle
from lslo.inject import inject
from lslo.io import save_bundle
from lslo.languages import TIERS, tier_assignment
from lslo.layer_map import LAYER_MAP_PRESETS, LayerMap
from lslo.pruning import Pruner, PruningSchedule, language_pools
from training.distributed import barrier, init_distributed, leaving_together, shutdown
from training.evaluation import evaluate_split
from training.flores import read_split
from training.loop import TrainingRun, train
from training.pairs import build_examples
from training.plots import plot_curves
from training.prepare import Inputs, gather_inputs, load_base_model, prepare_run
from training.settings import TrainSettings


class LSLoSettings(TrainSettings):
    """Options of every recipe that trains LSLo adapters."""

    tiers: str | None = Field(None, description="tier assignment like 'H:en,fr;M:zh;V:oc' (default: lang30 table)")
    ranks: str = Field("2;2;8", description="tier pattern (2;2;8 = H;M;V, 2;2;8;8 = H;M;L;V), a rank, or code=rank,...")
    modules: str = Field("all", description="all, fc, attn or a comma list of q,k,v,c-q,c-k,c-v,fc1,fc2")
    fc_mode: Literal["full", "square"] = Field("full", description="full matrices, or the released code's d x d slice")
    layer_map: str = Field("paper", description="paper, all-src, all-tgt, src-encoder or a layer_map.json file")
    scaling: float = Field(1.0, gt=0)
    lora_dropout: float = Field(0.0, ge=0, lt=1)


class FinetuneSettings(LSLoSettings):
    method: Literal["full", "lslo"] = Field("lslo", description="lslo adapters, or full fine-tuning (Ft-all)")
    prune: float = Field(0.0, description="target pruning ratio P of the gradual pruning schedule (0: off)")
    prune_tiers: str = Field("H,M", description="tiers whose languages are pruned (each language its own pool)")
    prune_start: int = Field(2, description="E: last epoch without pruning")
    prune_epochs: int = Field(8, description="k: epochs over which the ratio rises to P")

    def problems(self) -> list[str]:
        problems = []
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


DEFAULT_LR = {"lslo": 3e-3, "full": 1e-4}  # the paper's learning rates


def read_layer_map(spec: str, n_encoder: int, n_decoder: int, problems: list[str]) -> LayerMap | str:
    """A preset name, or a layer_map.json file (as written by weight-learning)."""
    if spec in LAYER_MAP_PRESETS:
        return spec
    path = Path(spec)
    if not path.is_file():
        problems.append(f"--layer-map {spec!r} is neither a preset ({', '.join(LAYER_MAP_PRESETS)}) nor a file")
        return "paper"
    try:
        layer_map = LayerMap.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, ConfigError, TypeError) as err:
        problems.append(f"--layer-map {spec}: not a valid layer map ({err})")
        return "paper"
    problems.extend(f"--layer-map {spec}: {p}" for p in layer_map.check_depth(n_encoder, n_decoder))
    return layer_map


def lslo_config(
    settings: LSLoSettings, inputs: Inputs | None, problems: list[str], **overrides: Any
) -> LSLoConfig | None:
    layer_map: LayerMap | str = "paper"
    if inputs is not None:
        layer_map = read_layer_map(settings.layer_map, inputs.model_config.encoder_layers,
                                   inputs.model_config.decoder_layers, problems)
    values = dict(tiers=settings.tiers, modules=settings.modules, fc_mode=settings.fc_mode, layer_map=layer_map,
                  scaling=settings.scaling, dropout=settings.lora_dropout, init_seed=settings.seed)
    values.update(overrides)
    ranks = values.pop("ranks", settings.ranks)
    try:
        return LSLoConfig.from_strings(settings.languages, ranks, **values)
    except ConfigError as err:
        problems.extend(err.problems)
        return None


def per_epoch_evaluator(settings: TrainSettings, run: TrainingRun, tokenizer: Any, languages: list[str],
                        tiers: dict[str, str | None], history: list[dict[str, Any]]):
    """Figure 3's curves: evaluate the chosen direction groups after each epoch (rank 0; others wait)."""
    if not settings.eval_groups:
        return None
    groups = [g.strip() for g in settings.eval_groups.split(",") if g.strip()]
    split = read_split(settings.data, settings.eval_split, languages)
    spm_model = Path(settings.base) / "sentencepiece.bpe.model"

    def hook(epoch: int) -> None:
        if run.info.is_main:
            result = evaluate_split(run.model, tokenizer, split, languages, tiers, spm_model, run.lslo, groups,
                                    settings.eval_max_sents, settings.eval_beam, progress=settings.progress)
            history[:] = [h for h in history if h["epoch"] < epoch]  # an epoch re-run after a resume
            history.append({"epoch": epoch, **result.groups})
            run.log.write("eval", epoch=epoch, split=settings.eval_split, groups=result.groups)
        barrier(run.info)

    return hook


@dataclass
class Started:
    """A run ready to train: model (with LSLo when configured), examples, optimizer, resume position."""

    run: TrainingRun
    inputs: Inputs
    lslo: LSLoHandle | None
    config: LSLoConfig | None

    tiers: dict[str, str | None]  # {code: tier} of every trained language, None where it has none


def run_tiers(settings: TrainSettings, config: LSLoConfig | None, languages: list[str],
              problems: list[str]) -> dict[str, str | None]:
    """The languages' resource tiers: the LSLo config's, or for full fine-tuning ``--tiers`` (default: the
    shipped tables). Per-epoch evaluation groups directions by tier, so there every language needs one."""
    if config is not None:
        tiers: dict[str, str | None] = {s.code: s.tier for s in config.languages}
    else:
        assigned = tier_assignment(getattr(settings, "tiers", None), problems)
        tiers = {code: assigned.get(code) for code in languages}
    missing = [code for code, tier in tiers.items() if tier is None]
    if settings.eval_groups and missing:
        problems.append(f"--eval-groups needs a resource tier for every language; none for {missing}: "
                        "give --tiers like 'H:en,fr;V:oc'")
    return tiers


def start_run(
    settings: TrainSettings,
    recipe: str,
    method: str,
    config_overrides: dict[str, Any] | None = None,
    check: Callable[[LSLoConfig | None, list[str]], None] | None = None,
) -> Started:
    """Check every input (raising one ConfigError), join the process group, load, inject, build the run.

    The caller owns the process group: wrap the rest in
    ``with leaving_together(started.run.info, started.run.release):``.
    """
    problems: list[str] = []
    splits = [settings.split] + ([settings.eval_split] if settings.eval_groups else [])
    inputs = gather_inputs(settings, problems, splits)
    config = None
    if method == "lslo":
        assert isinstance(settings, LSLoSettings)
        config = lslo_config(settings, inputs, problems, **(config_overrides or {}))
    if check is not None:
        check(config, problems)
    tiers = run_tiers(settings, config, inputs.languages if inputs is not None else [], problems)
    raise_if_problems(problems, "inputs")
    assert inputs is not None

    info, device = init_distributed(settings.device)
    try:
        if settings.threads:
            torch.set_num_threads(settings.threads)
        torch.manual_seed(settings.seed)
        model = load_base_model(settings.base, device)
        lslo = inject(model, config) if config is not None else None
        model.train()
        split = read_split(settings.data, settings.split, inputs.languages)
        examples = build_examples(inputs.tokenizer, split, inputs.languages, settings.max_len)
        peak = settings.lr or DEFAULT_LR[method]
        run = prepare_run(settings, recipe, model, inputs.tokenizer, examples, info, device, peak, lslo)
    except BaseException:
        shutdown(info)
        raise
    return Started(run, inputs, lslo, config, tiers)


def attach_pruning(started: Started, pools: list, schedule: PruningSchedule) -> Pruner:
    """Prune ``pools`` to the schedule's ratio at the start of every epoch; masks survive optimizer steps."""
    run = started.run
    pruner = Pruner(started.lslo, pools)
    pruner.attach(run.optimizer)  # gradients of pruned entries are hooked by each prune_to (resumed runs too)

    def prune(epoch: int) -> None:
        ratio = schedule.ratio_at(epoch)
        if ratio > 0:
            pruned = pruner.prune_to(ratio)
            run.log.write("prune", epoch=epoch, ratio=ratio, pruned=sum(pruned.values()))

    run.on_epoch_start = prune
    return pruner


def run_finetune(settings: FinetuneSettings, recipe: str = "finetune") -> Path:
    """Train and write the outputs; returns the bundle or model directory."""
    started_at = time.time()
    prune_codes: list[str] = []

    def check(config: LSLoConfig | None, problems: list[str]) -> None:
        if config is not None and settings.prune > 0:
            prune_codes.extend(s.code for s in config.languages if s.tier in settings.prune_tier_set)
            if not prune_codes:
                problems.append(f"--prune {settings.prune} given, but no language is in tiers {settings.prune_tiers}")

    started = start_run(settings, recipe, settings.method, check=check)
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
        run.on_epoch_end = per_epoch_evaluator(settings, run, started.inputs.tokenizer, started.inputs.languages,
                                               started.tiers, history)
        if not train(run):
            return settings.out
        return write_outputs(settings, recipe, run, started.inputs, started.lslo, schedule, prune_codes, history,
                             started_at)


def write_outputs(settings: FinetuneSettings, recipe: str, run: TrainingRun, inputs: Inputs, lslo: LSLoHandle | None,
                  schedule: PruningSchedule | None, prune_codes: list[str], history: list[dict[str, Any]],
                  started: float) -> Path:
    out = settings.out
    if not run.info.is_main:
        return out
    summary: dict[str, Any] = {"recipe": recipe, "method": settings.method, "seconds": round(time.time() - started, 1),
                               "steps": run.position.global_step, "examples_per_epoch": len(run.examples)}
    if lslo is not None:
        pruning = None
        if schedule is not None:
            pruning = {**schedule.to_dict(), "tiers": sorted(settings.prune_tier_set), "languages": prune_codes,
                       "pool": "language", "method": "global L1 unstructured on B, mask at each epoch start"}
        target = out / "bundle"
        save_bundle(lslo, target, base_name=str(settings.base), pruning=pruning,
                    extra={"recipe": recipe, "settings": run.settings_record})
        counts, nonzero = lslo.parameter_counts(), lslo.nonzero_counts()
        summary.update(bundle=str(target), parameters=sum(counts.values()), nonzero=sum(nonzero.values()),
                       per_language={c: {"params": counts[c], "nonzero": nonzero[c]} for c in counts})
    else:
        target = out / "model"
        run.model.save_pretrained(target)
        inputs.tokenizer.save_pretrained(target)
        trained = [p for p in run.model.parameters() if p.requires_grad]  # tied embeddings counted once
        summary.update(model=str(target), parameters=sum(p.numel() for p in trained),
                       nonzero=sum(int(p.count_nonzero()) for p in trained))
    if history:
        summary["per_epoch_eval"] = history
        plot_curves(history, out / "curves.png", title=f"{recipe}: spBLEU per epoch ({settings.eval_split})")
    (out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    run.log.write("outputs", **{k: v for k, v in summary.items() if k in ("bundle", "model", "seconds")})
    return target
