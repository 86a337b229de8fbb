"""``export``: pack a base model and an adapter bundle for serving, optionally in fp16 / bf16.

Writes ``<out>/base`` (model + tokenizer) and ``<out>/bundle``. The bundle keeps the fingerprint of the
base it was trained on; the fingerprint tolerates the cast (see ``lslo.io.fingerprint``).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field

from lslo.devices import DTYPES
from lslo.errors import raise_if_problems
from lslo.io import load_bundle, read_manifest, save_bundle
from training.prepare import load_base_model, read_base
from training.settings import Settings


class ExportSettings(Settings):
    base: Path = Field(description="base model directory the bundle was trained on")
    bundle: Path = Field(description="adapter bundle to pack")
    out: Path = Field(description="writes <out>/base and <out>/bundle")
    dtype: Literal["fp32", "fp16", "bf16"] = Field("fp16", description="storage dtype of base and adapters")


def run_export(settings: ExportSettings) -> Path:
    problems: list[str] = settings.problems()
    tokenizer, _ = read_base(settings.base, problems)
    if settings.out.exists() and any(settings.out.iterdir()):
        problems.append(f"{settings.out} exists and is not empty")
    raise_if_problems(problems, "inputs")
    manifest = read_manifest(settings.bundle)
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
