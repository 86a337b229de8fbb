"""``export``: pack a base model and an adapter bundle for serving, optionally in fp16 / bf16.

Writes ``<out>/base`` (model + tokenizer) and ``<out>/bundle``. The bundle keeps the fingerprint of the
base it was trained on; the fingerprint tolerates the cast (see ``lslo.io.fingerprint``).

The gate: a bundle that did worse than its base alone on validation is refused (``--force`` exports it anyway).
The measure is the one recorded in training, or, with ``--valid``, chrF++ measured here on the data given:
that is how a subset of the adapters (``--languages``; the other languages are served by the base alone) is
judged, since the training record measured all of them together.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field

from lslo.devices import DTYPES
from lslo.errors import AdapterFileError, ConfigError, raise_if_problems
from lslo.io import BundleManifest, load_bundle, read_manifest, save_bundle
from lslo.languages.tokens import LanguageVocabulary
from training.adapter_weights import GRID, Weights, apply_weights, choose_weights, parse_weights, scan_table
from training.corpora import DataReport, read_test_data
from training.data import in_model_codes, wanted_languages
from training.flores import ParallelSplit
from training.prepare import load_base_model, read_base
from training.settings import Settings
from training.ship_gate import measure_against_base, measure_weightings, measured_problem, ship_problem, worse_languages


class ExportSettings(Settings):
    base: Path = Field(description="base model directory the bundle was trained on")
    bundle: Path = Field(description="adapter bundle to pack")
    out: Path = Field(description="writes <out>/base and <out>/bundle")
    dtype: Literal["fp32", "fp16", "bf16"] = Field("fp16", description="storage dtype of base and adapters")
    languages: str | None = Field(
        None,
        description="export only these languages' adapters (ISO or the model's "
        "codes); the server translates the others with the base alone. "
        "Needs --valid: training validated all adapters together",
    )
    valid: Path | None = Field(
        None,
        description="validation data (any form finetune --valid reads): chrF++ of "
        "the exported adapters against the base alone, measured here, "
        "is what the gate judges",
    )
    valid_beam: int = Field(1, ge=1, description="beam size for --valid")
    valid_max_sents: int | None = Field(200, ge=1, description="segments per direction of --valid")
    device: str = Field("auto", description="device for --valid's translations")
    threads: int | None = Field(None, ge=1)
    adapter_weight: str = Field(
        "1",
        description="scale each exported adapter towards the base (its B times w, "
        "0 < w <= 1; needs --valid, or --force): one weight, "
        "'fr=0.25,de=0.5' (the others 1), or 'auto': per language the "
        "best of 1, 0.5, 0.25, 0.125 on --valid that is not worse than "
        "the base alone; languages worse at every weight, or worse when "
        "all are measured together, are left out",
    )
    force: bool = Field(
        False,
        description="export even a bundle that did worse than its base alone on validation "
        "(by the loss or chrF++ recorded in training, or --valid's chrF++)",
    )


def kept_languages(
    spec: str | None, manifest: BundleManifest, vocabulary: LanguageVocabulary, problems: list[str]
) -> list[str]:
    """The model codes of the adapters to export: ``spec``'s (ISO or model codes), else all of the bundle's."""
    kept = wanted_languages(spec or "auto", vocabulary, list(manifest.languages), problems)
    absent = [c for c in kept if c not in manifest.languages]
    if absent:
        problems.append(f"the bundle has no adapter for {', '.join(absent)} (it has {', '.join(manifest.languages)})")
    return [c for c in kept if c in manifest.languages]


def read_validation_data(path: Path, vocabulary: LanguageVocabulary, problems: list[str]) -> ParallelSplit | None:
    report = DataReport()
    data = read_test_data(path, "valid", report)
    problems.extend(report.problems)
    if report.notes:
        print(f"{path}: " + "; ".join(report.notes), file=sys.stderr)
    return in_model_codes(data, vocabulary) if data is not None else None


def _measure(
    settings: ExportSettings, kept: list[str], tokenizer: Any, valid_data: ParallelSplit, weights: Weights | None
) -> dict[str, Any]:
    """The kept adapters, weighted, against the base alone on the validation data (``measure_against_base``)."""
    return measure_against_base(
        settings.base,
        settings.bundle,
        kept,
        tokenizer,
        valid_data,
        settings.valid_beam,
        settings.valid_max_sents,
        settings.device,
        weights,
    )


def weigh_on_validation(
    settings: ExportSettings, kept: list[str], tokenizer: Any, valid_data: ParallelSplit
) -> tuple[Weights, list[str], dict[str, Any]]:
    """``--adapter-weight auto``: every kept adapter at each weight of ``GRID`` on the validation data, each
    language's best weight (``training.adapter_weights.choose_weights``), then the chosen weights measured
    together, leaving out the languages worse there until none is. Returns (weights, the languages kept, their
    joint measurement); refuses when no language is left."""
    scans = measure_weightings(
        settings.base,
        settings.bundle,
        kept,
        tokenizer,
        valid_data,
        [{c: w for c in kept} for w in GRID],
        settings.valid_beam,
        settings.valid_max_sents,
        settings.device,
    )
    by_weight = {w: scan["per_language"] for w, scan in zip(GRID, scans)}
    chosen = choose_weights(by_weight)
    print(
        "chrF++ on the validation data through each adapter, change against the base alone, by weight\n\n"
        + scan_table(by_weight, chosen)
        + "\n",
        file=sys.stderr,
    )
    if scans[0]["unmeasured"]:
        print(
            f"left out, no validation direction passes through their adapters: {', '.join(scans[0]['unmeasured'])}",
            file=sys.stderr,
        )
    measured = None
    while chosen:
        kept = [c for c in kept if c in chosen]
        weights = {c: chosen[c] for c in kept}
        measured = _measure(settings, kept, tokenizer, valid_data, weights)
        measured["weights_chosen_on_this_data"] = True
        worse = worse_languages(measured["per_language"])
        if not worse:
            return weights, kept, measured
        # Chosen one by one, measured together: leave out who is worse now, measure the others again.
        print(
            measured["table"] + "\n\nleft out, worse than the base alone together with the others: "
            f"{', '.join(worse)}\n",
            file=sys.stderr,
        )
        chosen = {c: w for c, w in chosen.items() if c not in worse}
    raise ConfigError(
        [
            "no adapter weight tried (" + ", ".join(f"{w:g}" for w in GRID) + ") keeps the directions "
            "through any adapter from doing worse than the base alone on the validation data: serve the "
            "base alone"
        ],
        "inputs",
    )


@dataclass
class _Plan:
    """What an export was asked for, checked: the inputs read and the languages and weights to export."""

    tokenizer: Any
    manifest: BundleManifest
    kept: list[str]
    subset: bool  # fewer languages than the bundle has
    weights: Weights | None  # None: chosen on the validation data (--adapter-weight auto)
    weighted: bool
    valid_data: ParallelSplit | None
    recorded: dict[str, Any] | None  # the bundle's own validation record
    problem: str | None  # what the ship gate says of that record (exported anyway with --force)


def _plan(settings: ExportSettings) -> _Plan:
    """The checked inputs; ConfigError naming every problem at once."""
    problems: list[str] = settings.problems()
    tokenizer, _ = read_base(settings.base, problems)
    if settings.out.exists() and any(settings.out.iterdir()):
        problems.append(f"{settings.out} exists and is not empty")
    manifest = None
    try:
        manifest = read_manifest(settings.bundle)
    except AdapterFileError as err:
        problems.append(str(err))
    vocabulary = LanguageVocabulary(tokenizer) if tokenizer is not None else LanguageVocabulary.of_table()
    kept = kept_languages(settings.languages, manifest, vocabulary, problems) if manifest is not None else []
    subset = manifest is not None and len(kept) < len(manifest.languages)
    if subset and settings.valid is None and not settings.force:
        assert manifest is not None
        problems.append(
            f"--languages keeps {len(kept)} of the bundle's {len(manifest.languages)} adapters, and its "
            "validation record measured all of them together: give --valid to measure these"
        )
    weights = parse_weights(settings.adapter_weight, kept, vocabulary, problems)
    weighted = weights is None or any(w != 1.0 for w in weights.values())
    problems += _weight_problems(settings, weights, weighted)
    valid_data = read_validation_data(settings.valid, vocabulary, problems) if settings.valid is not None else None
    recorded = manifest.extra.get("validation") if manifest is not None else None
    problem = ship_problem(recorded) if settings.valid is None and not subset and not weighted else None
    if problem and not settings.force:
        problems.append(problem)
    raise_if_problems(problems, "inputs")
    assert manifest is not None
    return _Plan(tokenizer, manifest, kept, subset, weights, weighted, valid_data, recorded, problem)


def _weight_problems(settings: ExportSettings, weights: Weights | None, weighted: bool) -> list[str]:
    if weights is None and settings.valid is None:
        return ["--adapter-weight auto chooses the weights on validation data: give --valid"]
    if weighted and settings.valid is None and not settings.force:
        return [
            "--adapter-weight changes the adapters that training validated: give --valid to measure them (or --force)"
        ]
    return []


def run_export(settings: ExportSettings) -> Path:
    plan = _plan(settings)
    manifest = plan.manifest
    if settings.threads:
        torch.set_num_threads(settings.threads)
    extra = dict(manifest.extra)
    # A bundle that is itself a weighted export: the weights written compose with its own.
    previous: dict[str, float] = extra.pop("adapter_weights", None) or {}
    extra.pop("adapter_weight_grid", None)
    measured = None
    if plan.weights is None:
        assert plan.valid_data is not None
        plan.weights, plan.kept, measured = weigh_on_validation(settings, plan.kept, plan.tokenizer, plan.valid_data)
        extra["adapter_weight_grid"] = list(GRID)
        plan.subset = len(plan.kept) < len(manifest.languages)
    weights = plan.weights
    if plan.weighted or previous:
        extra["adapter_weights"] = {c: previous.get(c, 1.0) * weights.get(c, 1.0) for c in plan.kept}
    _validate(settings, plan, extra, measured)
    _write(settings, plan, extra)
    size = sum(f.stat().st_size for f in settings.out.rglob("*") if f.is_file())
    if plan.weighted:
        print("adapter weights: " + ", ".join(f"{c} {w:g}" for c, w in weights.items()), file=sys.stderr)
    print(
        f"exported {settings.dtype} base + {len(plan.kept)}-language bundle: {size / 2**20:.1f} MiB -> {settings.out}"
    )
    return settings.out


def _validate(settings: ExportSettings, plan: _Plan, extra: dict[str, Any], measured: dict[str, Any] | None) -> None:
    """Measure the exported adapters against the base on --valid (into ``extra``), or say why nothing did."""
    recorded, problem = plan.recorded, plan.problem
    if plan.valid_data is not None:
        if measured is None:
            measured = _measure(settings, plan.kept, plan.tokenizer, plan.valid_data, plan.weights)
        measured["data"] = str(settings.valid)
        print(measured.pop("table"), file=sys.stderr)
        if recorded:
            extra["training_validation"] = recorded
        extra["validation"] = recorded = measured
        problem = measured_problem(measured)
        if problem and not settings.force:
            raise ConfigError([problem], "inputs")
    elif (plan.subset or plan.weighted) and recorded:  # --force without --valid: the record measured other adapters
        extra["training_validation"] = extra.pop("validation")
        recorded = None
        print(
            f"warning (--force): the validation record measured all {len(plan.manifest.languages)} adapters "
            "together, at full weight; nothing measured these",
            file=sys.stderr,
        )
    if problem:
        print(f"warning (--force): {problem.split('. Serving')[0]}", file=sys.stderr)
    elif not recorded and not plan.subset and not plan.weighted:
        print(
            "note: the bundle was trained without validation data; nothing shows it beats its base alone",
            file=sys.stderr,
        )


def _write(settings: ExportSettings, plan: _Plan, extra: dict[str, Any]) -> None:
    """The base cast to --dtype and the kept adapters, weighted, into --out."""
    manifest, kept = plan.manifest, plan.kept
    pruning = manifest.pruning
    if plan.subset:
        extra["languages_left_out"] = [c for c in manifest.languages if c not in kept]
        if pruning and isinstance(pruning.get("languages"), list):
            pruning = {**pruning, "languages": [c for c in pruning["languages"] if c in kept]}
    model = load_base_model(settings.base, torch.device("cpu")).eval()
    model.to(DTYPES[settings.dtype])
    model.save_pretrained(settings.out / "base")
    plan.tokenizer.save_pretrained(settings.out / "base")
    if (settings.base / "base_info.json").is_file():
        shutil.copy(settings.base / "base_info.json", settings.out / "base" / "base_info.json")
    lslo = load_bundle(model, settings.bundle, languages=kept)  # into the cast model: banks take its dtype
    assert plan.weights is not None
    apply_weights(lslo, plan.weights)
    # The fingerprint stays the one of the weights the adapters were trained with, before the cast.
    save_bundle(
        lslo,
        settings.out / "bundle",
        base_name=manifest.base.get("name", ""),
        pruning=pruning,
        extra={**extra, "exported_dtype": settings.dtype},
        fingerprint=manifest.base["fingerprint"],
    )
