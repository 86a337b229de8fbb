"""``export``: pack a base model and an adapter bundle for serving, optionally in fp16 / bf16.

Writes ``<out>/base`` (model + tokenizer) and ``<out>/bundle``. The bundle keeps the fingerprint of the
base it was trained on; the fingerprint tolerates the cast (see ``lslo.io.fingerprint``).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field

from lslo.devices import DTYPES
from lslo.errors import AdapterFileError, raise_if_problems
from lslo.io import load_bundle, read_manifest, save_bundle
from training.prepare import load_base_model, read_base
from training.settings import Settings


class ExportSettings(Settings):
    base: Path = Field(description="base model directory the bundle was trained on")
    bundle: Path = Field(description="adapter bundle to pack")
    out: Path = Field(description="writes <out>/base and <out>/bundle")
    dtype: Literal["fp32", "fp16", "bf16"] = Field("fp16", description="storage dtype of base and adapters")
    force: bool = Field(False, description="export even a bundle that did worse than its base alone on validation "
                                           "(by the measure its epoch was chosen by)")


def ship_problem(validation: dict[str, Any] | None) -> str | None:
    """Why a bundle should not ship: on its validation data it did worse than the base alone by the measure
    its epoch was chosen by (``select_by``: the loss, or chrF++ on a sample). None when it did not, or when it
    was trained without validation."""
    if not validation:
        return None
    by = validation.get("select_by", "loss")
    loss, base_loss = validation.get("loss"), validation.get("base_loss")
    chrf, base_chrf = validation.get("chrf"), validation.get("base_chrf")
    scores = []
    if loss is not None and base_loss is not None:
        scores.append(f"loss {loss:.4f} against {base_loss:.4f} ({loss - base_loss:+.4f})")
    if chrf is not None and base_chrf is not None:
        scores.append(f"chrF++ {chrf:.2f} against {base_chrf:.2f} ({chrf - base_chrf:+.2f})")
    if by == "chrf":
        worse = chrf is not None and base_chrf is not None and chrf < base_chrf
    else:
        worse = loss is not None and base_loss is not None and loss > base_loss
    if not worse:
        return None
    return (f"the bundle is worse than its base alone on its validation data by {by} ({validation.get('pairs')} "
            f"pairs, epoch {validation.get('selected_epoch')}): {'; '.join(scores)}. Serving the base alone "
            "would translate better; pass --force to export it anyway")


def run_export(settings: ExportSettings) -> Path:
    problems: list[str] = settings.problems()
    tokenizer, _ = read_base(settings.base, problems)
    if settings.out.exists() and any(settings.out.iterdir()):
        problems.append(f"{settings.out} exists and is not empty")
    manifest = None
    try:
        manifest = read_manifest(settings.bundle)
    except AdapterFileError as err:
        problems.append(str(err))
    validation = manifest.extra.get("validation") if manifest is not None else None
    problem = ship_problem(validation)
    if problem and not settings.force:
        problems.append(problem)
    raise_if_problems(problems, "inputs")
    assert manifest is not None
    if problem:
        print(f"warning (--force): {problem.split('. Serving')[0]}", file=sys.stderr)
    elif not validation:
        print("note: the bundle was trained without validation data; nothing shows it beats its base alone",
              file=sys.stderr)
    model = load_base_model(settings.base, torch.device("cpu")).eval()
    model.to(DTYPES[settings.dtype])
    model.save_pretrained(settings.out / "base")
    tokenizer.save_pretrained(settings.out / "base")
    for extra in ("base_info.json",):
        if (settings.base / extra).is_file():
            shutil.copy(settings.base / extra, settings.out / "base" / extra)
    lslo = load_bundle(model, settings.bundle)  # into the cast model: banks take its dtype
    # The fingerprint stays the one of the weights the adapters were trained with, before the cast.
    save_bundle(lslo, settings.out / "bundle", base_name=manifest.base.get("name", ""), pruning=manifest.pruning,
                extra={**manifest.extra, "exported_dtype": settings.dtype}, fingerprint=manifest.base["fingerprint"])
    size = sum(f.stat().st_size for f in settings.out.rglob("*") if f.is_file())
    print(f"exported {settings.dtype} base + {len(manifest.languages)}-language bundle: {size / 2**20:.1f} MiB "
          f"-> {settings.out}")
    return settings.out
