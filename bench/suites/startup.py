"""``startup``: seconds from process start to ready for the demo bundle, and for an M2M-124-sized random model
(fp16 on disk) with a random lang12 2;2;8 bundle saved locally."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer

from bench.common import median, table
from bench.loadgen import demo_args, device_args
from bench.workloads import DEMO, build
from lslo.io import save_bundle
from server.launch import start_server


def m2m124_dirs(root: Path) -> tuple[Path, Path]:
    work = build("m2m124", torch.device("cpu"), torch.float32)
    save_bundle(work.lslo, root / "bundle", dtype=torch.float16)
    work.lslo.remove()
    work.model.half().save_pretrained(root / "base")
    tokenizer = AutoTokenizer.from_pretrained(DEMO / "base")  # has every lang12 language token
    tokenizer.save_pretrained(root / "base")
    return root / "base", root / "bundle"


def run(device: torch.device, dtype: torch.dtype, quick: bool) -> dict[str, Any]:
    repeats = 1 if quick else 3
    common = device_args(device, dtype)
    rows, ratios = [], {}
    times = []
    for _ in range(repeats):
        server = start_server(demo_args(common))
        times.append(server.started_s)
        server.stop()
    rows.append({"model": "demo", "seconds to ready": median(times), "runs": repeats})
    ratios["startup_seconds[demo]"] = median(times)
    if not quick:
        tmp = Path(tempfile.mkdtemp(prefix="lslo-startup-"))
        try:
            base, bundle = m2m124_dirs(tmp)
            size_gb = sum(f.stat().st_size for f in tmp.rglob("*") if f.is_file()) / 2**30
            times = []
            for _ in range(repeats):
                server = start_server(["--base", str(base), "--bundle", str(bundle), *common])
                times.append(server.started_s)
                server.stop()
            rows.append(
                {
                    "model": f"m2m124-size random ({size_gb:.2f} GiB on disk)",
                    "seconds to ready": median(times),
                    "runs": repeats,
                }
            )
            ratios["startup_seconds[m2m124]"] = median(times)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print(table(rows, ["model", "seconds to ready", "runs"], "process start to /ready"))
    return {"rows": rows, "ratios": ratios, "params": {"repeats": repeats}}
