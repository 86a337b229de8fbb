"""``evaluate``: spBLEU and chrF++ for every direction of a split, and the paper's group table.

Evaluates a bundle (``--bundle``), a fully fine-tuned model (``--model``) or the base alone (the paper's
"Pretrain" row). Languages and tiers default to the bundle's.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import Field

from lslo.devices import resolve_device
from lslo.errors import AdapterFileError, raise_if_problems
from lslo.io import BundleManifest, load_bundle, read_manifest
from lslo.languages import parse_language_list, tier_assignment
from training.evaluation import evaluate_split
from training.flores import missing_languages, read_split
from training.metrics import group_order, markdown_table
from training.prepare import check_device, check_languages_in_tokenizer, load_base_model, read_base
from training.settings import Settings


class EvaluateSettings(Settings):
    base: Path = Field(description="base model directory")
    bundle: Path | None = Field(None, description="LSLo adapter bundle to evaluate")
    model: Path | None = Field(None, description="fully fine-tuned model directory to evaluate instead of the base")
    data: Path = Field(description="data directory (FLORES-101 or FLORES-200 layout)")
    split: str = Field("devtest")
    languages: str | None = Field(None, description="default: the bundle's languages")
    tiers: str | None = Field(None, description="tier assignment; default: the bundle's tiers, else the lang30 table")
    beam: int = Field(5, ge=1)
    max_sents: int | None = Field(None, ge=1, description="segments per direction (default: all)")
    max_tokens: int = Field(6000, ge=64, description="token budget of one generation batch (divided by the beam)")
    spm: Path | None = Field(None, description="SentencePiece model for spBLEU (default: the base model's; give "
                                               "the FLORES-101 SPM model to match the paper)")
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
    codes: list[str]
    tiers: dict[str, str | None]
    spm_model: Path


def evaluation_languages(
    settings: EvaluateSettings, manifest: BundleManifest | None, problems: list[str]
) -> tuple[list[str], dict[str, str | None]]:
    """Languages (given, else the bundle's) and their tiers (given, else the bundle's, else the lang30 table)."""
    if settings.languages:
        codes = parse_language_list(settings.languages, problems)
    elif manifest is not None:
        codes = list(manifest.languages)
    else:
        codes = []
        problems.append("--languages is required when no --bundle is given")
    if settings.tiers is not None or manifest is None:
        tiers: dict[str, str | None] = dict(tier_assignment(settings.tiers, problems))
    else:
        tiers = {c: v.get("tier") for c, v in manifest.languages.items()}
    if manifest is not None:
        extra = [c for c in codes if c not in manifest.languages]
        if extra:
            problems.append(f"the bundle has no adapter for {extra}")
    missing_tier = [c for c in codes if tiers.get(c) is None]
    if missing_tier:
        problems.append(f"no resource tier for {missing_tier}: give --tiers like 'H:en,fr;V:oc'")
    return codes, tiers


def check_inputs(settings: EvaluateSettings) -> EvaluationInputs:
    """Every input checked before any model is loaded; one ConfigError with every problem."""
    problems: list[str] = settings.problems()
    check_device(settings.device, problems)
    tokenizer, _ = read_base(settings.base, problems)
    if settings.model is not None:
        tokenizer, _ = read_base(settings.model, problems)
    manifest = None
    if settings.bundle is not None:
        try:
            manifest = read_manifest(settings.bundle)
        except AdapterFileError as err:
            problems.append(str(err))
    codes, tiers = evaluation_languages(settings, manifest, problems)
    if not (settings.data / settings.split).is_dir():
        problems.append(f"data directory {settings.data} has no {settings.split!r} split")
    else:
        problems.extend(missing_languages(settings.data, settings.split, codes))
    if tokenizer is not None:
        check_languages_in_tokenizer(tokenizer, codes, problems)
    spm_model = settings.spm or (settings.base / "sentencepiece.bpe.model")
    if not Path(spm_model).is_file():
        problems.append(f"SentencePiece model for spBLEU not found at {spm_model} (give --spm)")
    raise_if_problems(problems, "inputs")
    return EvaluationInputs(tokenizer, codes, tiers, Path(spm_model))


def run_evaluate(settings: EvaluateSettings) -> dict:
    started = time.time()
    inputs = check_inputs(settings)
    codes, tiers = inputs.codes, inputs.tiers
    if settings.threads:
        torch.set_num_threads(settings.threads)
    device = resolve_device(settings.device)
    model = load_base_model(settings.model or settings.base, device).eval()
    lslo = load_bundle(model, settings.bundle, languages=codes) if settings.bundle is not None else None
    split = read_split(settings.data, settings.split, codes)
    result = evaluate_split(model, inputs.tokenizer, split, codes, tiers, inputs.spm_model, lslo,
                            max_sents=settings.max_sents, beam=settings.beam, max_tokens=settings.max_tokens,
                            progress=settings.progress)
    name = settings.name or ("Ft-all" if settings.model else
                             f"LSLo ({settings.bundle.name})" if settings.bundle else "Pretrain")
    columns = [*group_order({c: tiers[c] for c in codes}), "AVG"]
    table = markdown_table({name: result.groups}, columns)
    chrf_table = markdown_table({name: result.chrf_groups}, columns)
    seconds = round(time.time() - started, 1)
    print(f"spBLEU on {settings.data}/{settings.split}, beam {settings.beam}, "
          f"{result.segments} segments per direction, {len(result.spbleu)} directions "
          f"(SentencePiece model: {result.spm_model})\n")
    print(table)
    print(f"\nchrF++\n\n{chrf_table}\n\n({seconds}s)")
    payload = {"name": name, "table_markdown": table, "chrf_table_markdown": chrf_table, "seconds": seconds,
               "bundle": str(settings.bundle) if settings.bundle else None,
               "model": str(settings.model) if settings.model else None, **result.to_json()}
    for path, text in ((settings.json_out, json.dumps(payload, indent=1, ensure_ascii=False)),
                       (settings.markdown, table + "\n")):
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    return payload
