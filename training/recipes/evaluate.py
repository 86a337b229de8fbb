"""``evaluate``: spBLEU and chrF++ for every direction of the test data, and the paper's group table.

Evaluates a bundle (``--bundle``) or a fully fine-tuned model (``--model``) next to the base alone, or the base
alone (the paper's "Pretrain" row). Languages and tiers default to the bundle's; a language given that the
bundle has no adapter for passes through the base alone on its side, as the server's fallback does. Directions
are those of the languages with text on both sides in the data (every ordered pair for FLORES).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import Field

from lslo.adapters.handle import LSLoHandle
from lslo.devices import resolve_device
from lslo.errors import AdapterFileError, raise_if_problems
from lslo.io import BundleManifest, load_bundle, read_manifest
from lslo.languages.tables import parse_language_list, tier_assignment
from lslo.languages.tokens import LanguageVocabulary
from training.corpora import DataReport, read_test_data
from training.data import in_model_codes
from training.evaluation import EvaluationResult, evaluate_split
from training.flores import ParallelSplit
from training.metrics import group_order, markdown_table
from training.prepare import check_device, load_base_model, read_base
from training.settings import Settings

BASE_ROW = "Base alone"


class EvaluateSettings(Settings):
    base: Path = Field(description="base model directory")
    bundle: Path | None = Field(None, description="LSLo adapter bundle to evaluate")
    model: Path | None = Field(None, description="fully fine-tuned model directory to evaluate instead of the base")
    data: Path = Field(
        description="test data: a FLORES directory (--split), or any form finetune's --data takes "
        "(its test*/devtest* part when it has one, else all of it)"
    )
    split: str = Field(
        "auto",
        description="FLORES split (auto: devtest); other data: auto (the test part, else "
        "all), test, valid, train or all",
    )
    languages: str | None = Field(
        None,
        description="default: every language of the data that the base has (the bundle's languages the data "
        "lacks are named and skipped); a language without an adapter in the bundle is translated by the base "
        "alone on its side",
    )
    tiers: str | None = Field(
        None,
        description="tier assignment; default: the bundle's tiers, else the lang30 table "
        "(languages without a tier count in AVG only)",
    )
    base_row: bool = Field(True, description="evaluate the base alone too, next to a --bundle or --model")
    beam: int = Field(5, ge=1)
    max_sents: int | None = Field(None, ge=1, description="segments per direction (default: all)")
    max_tokens: int = Field(6000, ge=64, description="token budget of one generation batch (divided by the beam)")
    spm: Path | None = Field(
        None,
        description="SentencePiece model for spBLEU (default: the base model's; give "
        "the FLORES-101 SPM model to match the paper)",
    )
    name: str | None = Field(None, description="row label in the table")
    json_out: Path | None = Field(None, alias="json", description="write the full result as JSON here")
    markdown: Path | None = Field(None, description="write the group table as Markdown here")
    device: str = "auto"
    threads: int | None = Field(None, ge=1)
    progress: bool = True

    def problems(self) -> list[str]:
        if self.bundle is not None and self.model is not None:
            return ["give --bundle or --model, not both"]
        return []


@dataclass
class EvaluationInputs:
    tokenizer: Any
    base_tokenizer: Any
    codes: list[str]  # the model's codes
    adapters: list[str]  # the codes of those the bundle has an adapter for
    tiers: dict[str, str | None]
    spm_model: Path
    split: ParallelSplit


def evaluation_languages(
    settings: EvaluateSettings,
    manifest: BundleManifest | None,
    vocabulary: LanguageVocabulary,
    found: list[str],
    problems: list[str],
) -> tuple[list[str], dict[str, str | None]]:
    """Languages (given, else every language of the data, the bundle's ones first; the bundle's languages the data
    lacks are named and skipped) and tiers (given, else the bundle's, else the lang30 table), in the model's
    codes."""
    if settings.languages:
        codes = []
        for code in parse_language_list(settings.languages, problems):
            model = vocabulary.model_code(code)
            if model is None:
                problems.append(vocabulary.unknown(code))
            else:
                codes.append(model)
    else:  # what the data holds: the bundle's languages first, the others through the base alone on their side
        codes = [c for c in (manifest.languages if manifest is not None else []) if c in found]
        codes += [c for c in found if c not in codes]
        skipped = [c for c in (manifest.languages if manifest is not None else []) if c not in found]
        if skipped:
            print(
                f"note: the data has no text in {', '.join(skipped)}: their adapters are not evaluated", file=sys.stderr
            )
    if settings.tiers is not None or manifest is None:
        assigned = tier_assignment(settings.tiers, problems)
        tiers: dict[str, str | None] = {c: None for c in codes}
        tiers.update({m: t for c, t in assigned.items() if (m := vocabulary.model_code(c)) in tiers})
    else:
        tiers = {c: manifest.languages.get(c, {}).get("tier") for c in codes}
    missing = [c for c in codes if c not in found]
    if missing:
        problems.append(f"the data has no text in {', '.join(missing)} (it has {', '.join(found) or 'none'})")
    return codes, tiers


def check_inputs(settings: EvaluateSettings) -> EvaluationInputs:
    """Every input checked before any model is loaded; one ConfigError with every problem."""
    problems: list[str] = settings.problems()
    check_device(settings.device, problems)
    base_tokenizer, _ = read_base(settings.base, problems)
    tokenizer = base_tokenizer
    if settings.model is not None:
        tokenizer, _ = read_base(settings.model, problems)
    manifest = None
    if settings.bundle is not None:
        try:
            manifest = read_manifest(settings.bundle)
        except AdapterFileError as err:
            problems.append(str(err))
    report = DataReport()
    data = read_test_data(settings.data, settings.split, report)
    problems.extend(report.problems)
    if report.notes:
        print("data: " + "; ".join(report.notes), file=sys.stderr)
    vocabulary = LanguageVocabulary(tokenizer) if tokenizer is not None else LanguageVocabulary.of_table()
    split = ParallelSplit("none", (), {}, {})
    if data is not None:
        split = in_model_codes(data, vocabulary)
    codes, tiers = evaluation_languages(settings, manifest, vocabulary, list(split.languages), problems)
    spm_model = settings.spm or (settings.base / "sentencepiece.bpe.model")
    if not Path(spm_model).is_file():
        problems.append(f"SentencePiece model for spBLEU not found at {spm_model} (give --spm)")
    raise_if_problems(problems, "inputs")
    adapters = [c for c in codes if manifest is not None and c in manifest.languages]
    if manifest is not None and not adapters:
        raise_if_problems(
            [f"the bundle has no adapter for any of {', '.join(codes)}: evaluate the base alone (without --bundle)"],
            "inputs",
        )
    if manifest is not None and len(adapters) < len(codes):
        print(
            f"note: the bundle has no adapter for {', '.join(c for c in codes if c not in adapters)}: the base "
            "alone on their side (the server's fallback)",
            file=sys.stderr,
        )
    return EvaluationInputs(tokenizer, base_tokenizer, codes, adapters, tiers, Path(spm_model), split)


def direction_table(rows: dict[str, EvaluationResult], metric: str) -> str:
    """Per direction, each row's score (and, with a base-alone row, the difference to it) as Markdown."""
    names = list(rows)
    base = rows.get(BASE_ROW)
    others = [n for n in names if n != BASE_ROW]
    head = "| Direction | " + " | ".join(names) + (" | Δ" * len(others) if base else "") + " |"
    rule = "|---|" + "---:|" * (len(names) + (len(others) if base else 0))
    lines = [head, rule]
    for pair in next(iter(rows.values())).spbleu:
        scores = [getattr(rows[n], metric).get(pair) for n in names]
        cells = [f"{v:.2f}" if v is not None else "-" for v in scores]
        if base:
            cells += [f"{getattr(rows[n], metric)[pair] - getattr(base, metric)[pair]:+.2f}" for n in others]
        lines.append(f"| {pair[0]}→{pair[1]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_evaluate(settings: EvaluateSettings) -> dict:
    started = time.time()
    inputs = check_inputs(settings)
    codes, tiers, split = inputs.codes, inputs.tiers, inputs.split
    if settings.threads:
        torch.set_num_threads(settings.threads)
    device = resolve_device(settings.device)
    model = load_base_model(settings.model or settings.base, device).eval()
    lslo = load_bundle(model, settings.bundle, languages=inputs.adapters) if settings.bundle is not None else None

    def evaluate(model: Any, tokenizer: Any, lslo: LSLoHandle | None) -> EvaluationResult:
        return evaluate_split(
            model,
            tokenizer,
            split,
            codes,
            tiers,
            inputs.spm_model,
            lslo,
            max_sents=settings.max_sents,
            beam=settings.beam,
            max_tokens=settings.max_tokens,
            progress=settings.progress,
            fallback=True,
        )

    name = settings.name or (
        "Ft-all" if settings.model else f"LSLo ({settings.bundle.name})" if settings.bundle else "Pretrain"
    )
    rows: dict[str, EvaluationResult] = {}
    if settings.base_row and lslo is not None:
        with lslo.base_only():
            rows[BASE_ROW] = evaluate(model, inputs.tokenizer, lslo)
    elif settings.base_row and settings.model is not None:
        base = load_base_model(settings.base, device).eval()
        rows[BASE_ROW] = evaluate(base, inputs.base_tokenizer, None)
        del base
    rows[name] = evaluate(model, inputs.tokenizer, lslo)
    seconds = round(time.time() - started, 1)
    return _report(settings, name, rows, split.name, [*group_order({c: tiers[c] for c in codes}), "AVG"], seconds)


def _report(
    settings: EvaluateSettings,
    name: str,
    rows: dict[str, EvaluationResult],
    split_name: str,
    columns: list[str],
    seconds: float,
) -> dict[str, Any]:
    """The tables printed and written (--json, --markdown): the group tables and chrF++ by direction."""
    table = markdown_table({n: r.groups for n, r in rows.items()}, columns)
    chrf_table = markdown_table({n: r.chrf_groups for n, r in rows.items()}, columns)
    per_direction = direction_table(rows, "chrf")
    result = rows[name]
    most = max((len(rows) for rows in result.segment_rows.values()), default=0)
    print(
        f"spBLEU on {settings.data} ({split_name}), beam {settings.beam}, "
        f"up to {most} segments per direction, {len(result.spbleu)} directions "
        f"(SentencePiece model: {result.spm_model})\n"
    )
    print(table)
    print(f"\nchrF++\n\n{chrf_table}\n\nchrF++ by direction\n\n{per_direction}\n\n({seconds}s)")
    payload = {
        "name": name,
        "table_markdown": table,
        "chrf_table_markdown": chrf_table,
        "directions_markdown": per_direction,
        "seconds": seconds,
        "bundle": str(settings.bundle) if settings.bundle else None,
        "model": str(settings.model) if settings.model else None,
        **result.to_json(),
        "base_alone": rows[BASE_ROW].to_json() if BASE_ROW in rows else None,
    }
    for path, text in (
        (settings.json_out, json.dumps(payload, indent=1, ensure_ascii=False)),
        (settings.markdown, table + "\n"),
    ):
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    return payload
