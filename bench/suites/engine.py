"""``engine``: sentences/s of ``lslo.engine`` (demo base with and without its bundle), of Hugging Face
``generate()`` and of CTranslate2 (fp32, int8) on the same base: the same sentences of the demo's domain in
random pairs of 8 languages, beam 4, batches of 32 (the engine: 32 x 4 rows, continuous), at most 200 new tokens.

Each engine runs in a process of its own, one after the other (two OpenMP runtimes in one process slow
CTranslate2 down). CTranslate2 is optional (``pip install -e .[bench]``); without it its rows are skipped.
Headline ratio ``engine_adapters_vs_ct2_fp32``."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from bench.common import table
from bench.loadgen import demo_args, device_args, run_load, sentence_pool, start_server
from bench.workloads import DEMO

LANGUAGES = ["en", "fr", "de", "it", "nl", "ja", "ko", "zh"]


def workload(n: int, threads: int, dtype: str, seed: int = 0) -> dict[str, Any]:
    pool = sentence_pool(LANGUAGES, n=n)
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        src, tgt = rng.sample(LANGUAGES, 2)
        rows.append((pool[src][i], src, tgt))
    return {"rows": rows, "settings": {"base": str(DEMO / "base"), "bundle": str(DEMO / "bundle"), "beam": 4,
                                       "batch": 32, "max_new": 200, "threads": threads, "dtype": dtype}}


def convert_for_ctranslate2(out: Path, device: torch.device) -> bool:
    try:
        import ctranslate2  # noqa: F401
        from ctranslate2.converters import TransformersConverter
    except ImportError:
        return False
    TransformersConverter(str(DEMO / "base")).convert(str(out), force=True)
    return True


def worker(path: Path, engine: str, repeats: int, device: torch.device, ct2_model: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.engine_worker", str(path), engine, "--repeats", str(repeats),
           "--device", str(device), "--ct2-model", str(ct2_model)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    if done.returncode != 0:
        raise RuntimeError(f"{engine} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def serve_load(device: torch.device, dtype: torch.dtype, quick: bool) -> dict[str, dict[str, float]]:
    """The server over HTTP (demo bundle, beam 4): 1 and 32 closed-loop clients, one sentence per request."""
    pool = sentence_pool(LANGUAGES)
    server = start_server(demo_args([*device_args(device, dtype), "--max-batch-size", "32", "--beam", "4"]))
    out = {}
    try:
        for clients, requests in ((1, 40 if quick else 150), (32, 128 if quick else 512)):
            asyncio.run(run_load(server.url, pool, clients, 16, max_seconds=60, seed=99))  # warm-up
            out[str(clients)] = asyncio.run(run_load(server.url, pool, clients, requests, max_seconds=300,
                                                     seed=clients)).summary()
    finally:
        server.stop()
    return out


def run(device: torch.device, dtype: torch.dtype, quick: bool) -> dict[str, Any]:
    threads = torch.get_num_threads()
    name = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}[dtype]
    n, repeats = (64, 1) if quick else (256, 3)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "workload.json"
        path.write_text(json.dumps(workload(n, threads, name)), encoding="utf-8")
        ct2 = Path(tmp) / "ct2"
        engines = ["lslo-adapters", "lslo-base", "generate-adapters"]
        if convert_for_ctranslate2(ct2, device):
            engines = ["ct2-float32", "ct2-int8" if device.type == "cpu" else "ct2-float16", *engines]
        for engine in engines:
            reps = 1 if engine.startswith("generate") else repeats
            results[engine] = worker(path, engine, reps, device, ct2)
    load = serve_load(device, dtype, quick)
    best = {e: max(r["rates"]) for e, r in results.items()}
    best["server over HTTP, 32 clients"] = load["32"]["rps"]
    reference = best.get("ct2-float32")
    rows = [{"engine": e, "sentences/s": rate, "vs CTranslate2 fp32": rate / reference if reference else float("nan")}
            for e, rate in best.items()]
    print(table(rows, ["engine", "sentences/s", "vs CTranslate2 fp32"],
                f"{n} sentences, 8 languages in random pairs, beam 4, batch 32, {threads} threads, {device}"))
    ratios = {"engine_adapters_vs_engine_base": best["lslo-adapters"] / best["lslo-base"],
              "engine_adapters_vs_generate": best["lslo-adapters"] / best["generate-adapters"]}
    ratios["p50_32_vs_1_client"] = load["32"]["p50_ms"] / load["1"]["p50_ms"]
    if reference:
        ratios["engine_adapters_vs_ct2_fp32"] = best["lslo-adapters"] / reference
        ratios["server_32_clients_vs_ct2_fp32"] = best["server over HTTP, 32 clients"] / reference
        ratios["engine_base_vs_ct2_fp32"] = best["lslo-base"] / reference
        same = sum(a == b for a, b in zip(results["lslo-base"]["texts"], results["ct2-float32"]["texts"]))
        ratios["same_output_as_ct2_fp32"] = same / n
    for key, value in ratios.items():
        print(f"{key} = {value:.2f}")
    print(f"server p50 latency: 1 client {load['1']['p50_ms']:.0f} ms, 32 clients {load['32']['p50_ms']:.0f} ms; "
          f"failed requests {sum(v['failures'] for v in load.values())}")
    return {"rows": rows, "ratios": ratios, "rates": {e: r["rates"] for e, r in results.items()}, "server": load,
            "params": {"sentences": n, "repeats": repeats, "beam": 4, "batch": 32, "max_new_tokens": 200}}
