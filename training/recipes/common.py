"""What every recipe that trains does first: check every input (one ConfigError with every problem), build
the LSLo configuration in the base model's language codes, load and inject, read the data into examples, and
set up the run; and the pruning hook the pruning recipes attach."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field
from transformers import M2M100Config

from lslo.adapters.config import LSLoConfig
from lslo.adapters.handle import LSLoHandle
from lslo.adapters.inject import inject
from lslo.adapters.layer_map import LAYER_MAP_PRESETS, LayerMap
from lslo.errors import ConfigError, raise_if_problems
from lslo.languages.tables import known_tiers, parse_tier_assignment
from lslo.languages.tokens import LanguageVocabulary
from lslo.pruning import Pruner, PruningSchedule
from training.distributed import init_distributed, shutdown
from training.loop import TrainingRun
from training.pairs import DirectionSampler, build_examples
from training.prepare import Inputs, gather_inputs, load_base_model, prepare_run
from training.settings import TrainSettings

DEFAULT_LR = {"lslo": 3e-3, "full": 1e-4}  # the paper's learning rates


class LSLoSettings(TrainSettings):
    """Options of every recipe that trains LSLo adapters."""

    tiers: str | None = Field(None, description="tier assignment like 'H:en,fr;M:zh;V:oc' (default: lang30 table)")
    ranks: str = Field("2;2;8", description="tier pattern (2;2;8 = H;M;V, 2;2;8;8 = H;M;L;V), a rank, or code=rank,...")
    modules: str = Field("all", description="all, fc, attn or a comma list of q,k,v,c-q,c-k,c-v,fc1,fc2")
    fc_mode: Literal["full", "square"] = Field("full", description="full matrices, or the released code's d x d slice")
    layer_map: str = Field("paper", description="paper, all-src, all-tgt, src-encoder or a layer_map.json file")
    scaling: float = Field(1.0, gt=0)
    lora_dropout: float = Field(0.0, ge=0, lt=1)


def read_layer_map(spec: str, model_config: M2M100Config | None, problems: list[str]) -> LayerMap | str:
    """A preset name, or a layer_map.json file (as written by weight-learning) checked against the base's depth
    (when its config could be read)."""
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
    if model_config is not None:
        depth = layer_map.check_depth(model_config.encoder_layers, model_config.decoder_layers)
        problems.extend(f"--layer-map {spec}: {p}" for p in depth)
    return layer_map


def model_code_tiers(spec: str | None, vocabulary: LanguageVocabulary, problems: list[str]) -> dict[str, str]:
    """The tier of each language in the base model's codes: ``--tiers`` (any codes), else the paper's tables."""
    if spec is None:
        table = known_tiers()
        return {m: tier for code, tier in table.items() if (m := vocabulary.model_code(code)) is not None}
    given = parse_tier_assignment(spec, problems)
    out = {}
    for code, tier in given.items():
        model = vocabulary.model_code(code)
        if model is None:
            problems.append(f"--tiers: the base model has no language token for {code!r}")
        else:
            out[model] = tier
    return out


def model_code_ranks(spec: str, vocabulary: LanguageVocabulary, problems: list[str]) -> str | dict[str, int]:
    """``--ranks`` with explicit ``code=rank`` items in the base model's codes; patterns and numbers as given."""
    if "=" not in spec:
        return spec
    out: dict[str, int] = {}
    for item in (i.strip() for i in spec.split(",") if i.strip()):
        code, _, value = item.partition("=")
        model = vocabulary.model_code(code.strip())
        try:
            rank = int(value)
        except ValueError:
            problems.append(f"rank {item!r} must look like 'en=2'")
            continue
        if model is None:
            problems.append(f"--ranks: the base model has no language token for {code.strip()!r}")
        else:
            out[model] = rank
    return out


def lslo_config(settings: LSLoSettings, inputs: Inputs, problems: list[str], **overrides: Any) -> LSLoConfig | None:
    """The LSLo configuration over the run's languages, with tiers and ranks given in any codes (checked as far
    as the inputs that could be read allow)."""
    if inputs.data is None:
        return None
    layer_map = read_layer_map(settings.layer_map, inputs.model_config, problems)
    vocabulary = inputs.data.vocabulary
    tiers = model_code_tiers(settings.tiers, vocabulary, problems)
    order = None
    if settings.tiers:
        named = (p.partition(":")[0].strip().upper() for p in settings.tiers.split(";") if p.strip())
        order = [t for t in dict.fromkeys(named) if t in ("H", "M", "L", "V")]
    values = dict(
        modules=settings.modules,
        fc_mode=settings.fc_mode,
        layer_map=layer_map,
        scaling=settings.scaling,
        dropout=settings.lora_dropout,
        init_seed=settings.seed,
    )
    values.update(overrides)
    ranks = values.pop("ranks", settings.ranks)
    if isinstance(ranks, str):
        ranks = model_code_ranks(ranks, vocabulary, problems)
    try:
        return LSLoConfig.from_strings(inputs.languages, ranks, tiers=tiers, tier_order=order, **values)
    except ConfigError as err:
        problems.extend(err.problems)
        return None


@dataclass
class Started:
    """A run ready to train: model (with LSLo when configured), examples, optimizer, resume position."""

    run: TrainingRun
    inputs: Inputs
    lslo: LSLoHandle | None
    config: LSLoConfig | None

    tiers: dict[str, str | None]  # {code: tier} of every trained language, None where it has none


def run_tiers(
    settings: TrainSettings, config: LSLoConfig | None, inputs: Inputs, problems: list[str]
) -> dict[str, str | None]:
    """The languages' resource tiers: the LSLo config's, or for full fine-tuning ``--tiers`` (default: the
    shipped tables). Per-epoch evaluation groups directions by tier, so there every language needs one."""
    if config is not None:
        tiers: dict[str, str | None] = {s.code: s.tier for s in config.languages}
    else:
        vocabulary = inputs.data.vocabulary if inputs.data is not None else None
        assigned = model_code_tiers(getattr(settings, "tiers", None), vocabulary, problems) if vocabulary else {}
        tiers = {code: assigned.get(code) for code in inputs.languages}
    missing = [code for code, tier in tiers.items() if tier is None]
    if settings.eval_groups and missing:
        problems.append(
            f"--eval-groups needs a resource tier for every language; none for {missing}: "
            "give --tiers like 'H:en,fr;V:oc'"
        )
    return tiers


def start_run(
    settings: TrainSettings,
    recipe: str,
    method: str,
    config_overrides: dict[str, Any] | None = None,
    check: Callable[[LSLoConfig | None, list[str]], None] | None = None,
    validates: bool = False,
) -> Started:
    """Check every input (raising one ConfigError), join the process group, load, inject, build the run.

    The caller owns the process group: wrap the rest in
    ``with leaving_together(started.run.info, started.run.release):``.
    """
    problems: list[str] = []
    inputs = gather_inputs(settings, problems, validates)
    config = None
    if method == "lslo":
        assert isinstance(settings, LSLoSettings)
        config = lslo_config(settings, inputs, problems, **(config_overrides or {}))
    if check is not None:
        check(config, problems)
    tiers = run_tiers(settings, config, inputs, problems)
    raise_if_problems(problems, "inputs")
    assert inputs.complete and inputs.data is not None

    info, device = init_distributed(settings.device)
    try:
        if settings.threads:
            torch.set_num_threads(settings.threads)
        torch.manual_seed(settings.seed)
        model = load_base_model(settings.base, device)
        lslo = inject(model, config) if config is not None else None
        model.train()
        sampler = None
        if settings.pairs_per_segment is not None:
            sampler = DirectionSampler(
                inputs.tokenizer,
                inputs.data.train,
                inputs.languages,
                settings.pairs_per_segment,
                settings.seed,
                settings.max_len,
                inputs.data.directions,
            )
            examples = sampler(1)
        else:
            examples = build_examples(
                inputs.tokenizer, inputs.data.train, inputs.languages, settings.max_len, inputs.data.directions
            )
        peak = settings.lr or DEFAULT_LR[method]
        run = prepare_run(settings, recipe, model, inputs.tokenizer, examples, info, device, peak, lslo)
        run.sample = sampler
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
