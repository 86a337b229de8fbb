"""``engine``: sentences/s of ``lslo.engine`` (with and without adapters; on the CPU also with int8 weights), of
Hugging Face ``generate()`` and of CTranslate2 (fp32, and int8 on the CPU; fp16 on CUDA) on the same base: the same
sentences of the demo's domain in random pairs of 8 languages, beam 4, batches of 32 (the engine: 32 x 4 rows,
continuous).

Models: the demo (base and bundle as shipped, at most 200 new tokens) and a random mid-sized M2M100 (d_model
512, 6+6 layers, ffn 2048, the demo's tokenizer) with random adapters of the demo's ranks, which decodes random
tokens: at most 48 new tokens, 128 sentences; on CUDA also a random model of M2M-124's shape (d_model 1024,
12+12 layers, ffn 4096; the demo's vocabulary), 64 sentences. Each engine runs in a process of its own (two
OpenMP runtimes in one process slow CTranslate2 down); the repeats go round the engines (each engine once per
round, after its own warm-up), so that a machine whose speed drifts does not favour whichever ran first.
CTranslate2 is optional (``pip install -e .[bench]``); without it its rows are skipped. Headline ratio
``engine_adapters_vs_ct2_fp32``."""

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
from bench.workloads import DEMO, DEMO_BUNDLE, SIZES
from lslo import LSLoConfig, inject
from lslo.io import read_manifest, save_bundle

LANGUAGES = ["en", "fr", "de", "it", "nl", "ja", "ko", "zh"]


def workload(n: int, threads: int, dtype: str, seed: int = 0, base: Path = DEMO / "base",
             bundle: Path = DEMO_BUNDLE, max_new: int = 200) -> dict[str, Any]:
    pool = sentence_pool(LANGUAGES, n=n)
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        src, tgt = rng.sample(LANGUAGES, 2)
        rows.append((pool[src][i], src, tgt))
    return {"rows": rows, "settings": {"base": str(base), "bundle": str(bundle), "beam": 4, "batch": 32,
                                       "max_new": max_new, "threads": threads, "dtype": dtype}}


def random_model(out: Path, size: str, seed: int = 0) -> tuple[Path, Path]:
    """A random M2M100 of ``SIZES[size]``'s shape with the demo's tokenizer (and vocabulary), and random adapters for
    the demo's languages at the demo bundle's ranks and modules (layer map ``paper``), written as a base directory
    and a bundle."""
    from transformers import AutoTokenizer, M2M100Config, M2M100ForConditionalGeneration

    demo_config = M2M100Config.from_pretrained(DEMO / "base")
    config = M2M100Config(**{**demo_config.to_dict(), **SIZES[size], "vocab_size": demo_config.vocab_size})
    torch.manual_seed(seed)
    model = M2M100ForConditionalGeneration(config).eval()
    base, bundle = out / f"{size}-base", out / f"{size}-bundle"
    model.save_pretrained(base, safe_serialization=True)
    AutoTokenizer.from_pretrained(DEMO / "base").save_pretrained(base)
    manifest = read_manifest(DEMO_BUNDLE)
    ranks = {code: int(entry["rank"]) for code, entry in manifest.languages.items()}
    lslo = inject(model, LSLoConfig.from_strings(list(ranks), ranks, modules=manifest.modules,
                                                 fc_mode=manifest.fc_mode, layer_map="paper"))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in lslo.trainable_parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.02)
    save_bundle(lslo, bundle, base_name=f"random M2M100 of the {size} shape")
    return base, bundle


def convert_for_ctranslate2(base: Path, out: Path) -> bool:
    try:
        import ctranslate2  # noqa: F401
        from ctranslate2.converters import TransformersConverter
    except ImportError:
        return False
    TransformersConverter(str(base)).convert(str(out), force=True)
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


def measure(tmp: Path, label: str, work: dict[str, Any], device: torch.device, repeats: int
            ) -> dict[str, dict[str, Any]]:
    """Every engine on one workload, each in its own process: {engine: {"rates": [...], "texts": [...]}}."""
    path, ct2 = tmp / f"{label}-workload.json", tmp / f"{label}-ct2"
    path.write_text(json.dumps(work), encoding="utf-8")
    engines = ["lslo-adapters", "lslo-base", "generate-adapters"]
    if device.type == "cpu" and work["settings"]["dtype"] == "fp32":
        engines[2:2] = ["lslo-adapters-int8", "lslo-base-int8"]
    if convert_for_ctranslate2(Path(work["settings"]["base"]), ct2):
        engines = ["ct2-float32", "ct2-int8" if device.type == "cpu" else "ct2-float16", *engines]
    results: dict[str, dict[str, Any]] = {}
    for round_ in range(repeats):  # one repeat of every engine per round
        for e in engines:
            if round_ and e.startswith("generate"):  # one repeat is enough for the old path
                continue
            out = worker(path, e, 1, device, ct2)
            results.setdefault(e, {"rates": [], "texts": out["texts"]})["rates"] += out["rates"]
    return results


def ratios_of(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    best = {e: max(r["rates"]) for e, r in results.items()}
    texts = {e: r["texts"] for e, r in results.items()}

    def same(a: str, b: str) -> float:
        return sum(x == y for x, y in zip(texts[a], texts[b])) / len(texts[a])

    out = {"engine_adapters_vs_engine_base": best["lslo-adapters"] / best["lslo-base"],
           "engine_adapters_vs_generate": best["lslo-adapters"] / best["generate-adapters"]}
    if "ct2-float32" in best:
        out["engine_adapters_vs_ct2_fp32"] = best["lslo-adapters"] / best["ct2-float32"]
        out["engine_base_vs_ct2_fp32"] = best["lslo-base"] / best["ct2-float32"]
        out["same_output_as_ct2_fp32"] = same("lslo-base", "ct2-float32")
    if "lslo-adapters-int8" in best:
        out["engine_int8_vs_fp32_adapters"] = best["lslo-adapters-int8"] / best["lslo-adapters"]
        out["same_output_int8_vs_fp32_adapters"] = same("lslo-adapters-int8", "lslo-adapters")
        if "ct2-int8" in best:
            out["engine_int8_adapters_vs_ct2_int8"] = best["lslo-adapters-int8"] / best["ct2-int8"]
            out["engine_int8_base_vs_ct2_int8"] = best["lslo-base-int8"] / best["ct2-int8"]
    return out


def run(device: torch.device, dtype: torch.dtype, quick: bool) -> dict[str, Any]:
    threads = torch.get_num_threads()
    name = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}[dtype]
    n, n_mid, repeats = (64, 32, 1) if quick else (256, 128, 3)
    sizes = {"mid": n_mid} if device.type == "cpu" else {"mid": n_mid, "m2m124": n_mid // 2}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        demo = measure(tmp, "demo", workload(n, threads, name), device, repeats)
        randoms = {}
        for size, count in sizes.items():
            base, bundle = random_model(tmp, size)
            randoms[size] = measure(tmp, size, workload(count, threads, name, base=base, bundle=bundle, max_new=48),
                                    device, repeats)
    load = serve_load(device, dtype, quick)
    ratios = ratios_of(demo)
    ratios["p50_32_vs_1_client"] = load["32"]["p50_ms"] / load["1"]["p50_ms"]
    reference = max(demo["ct2-float32"]["rates"]) if "ct2-float32" in demo else None
    if reference:
        ratios["server_32_clients_vs_ct2_fp32"] = load["32"]["rps"] / reference
    for size, results in randoms.items():
        ratios.update({f"{size}_{key}": value for key, value in ratios_of(results).items()})
    rows = []
    for label, results in (("demo", demo), *randoms.items()):
        best = {e: max(r["rates"]) for e, r in results.items()}
        if label == "demo":
            best["server over HTTP, 32 clients"] = load["32"]["rps"]
        ct2 = best.get("ct2-float32")
        rows += [{"model": label, "engine": e, "sentences/s": rate,
                  "vs CTranslate2 fp32": rate / ct2 if ct2 else float("nan")} for e, rate in best.items()]
    print(table(rows, ["model", "engine", "sentences/s", "vs CTranslate2 fp32"],
                f"demo: {n} sentences, at most 200 new tokens; "
                + "; ".join(f"{size}: {count} sentences, at most 48" for size, count in sizes.items())
                + "; 8 languages in "
                f"random pairs, beam 4, batch 32, {threads} threads, {device}"))
    for key, value in ratios.items():
        print(f"{key} = {value:.2f}")
    print(f"server p50 latency: 1 client {load['1']['p50_ms']:.0f} ms, 32 clients {load['32']['p50_ms']:.0f} ms; "
          f"failed requests {sum(v['failures'] for v in load.values())}")
    return {"rows": rows, "ratios": ratios, "server": load,
            "rates": {f"{label}/{e}": r["rates"] for label, res in (("demo", demo), *randoms.items())
                      for e, r in res.items()},
            "params": {"sentences": {"demo": n, **sizes}, "repeats": repeats, "beam": 4, "batch": 32,
                       "max_new_tokens": {"demo": 200, **{size: 48 for size in sizes}}}}
