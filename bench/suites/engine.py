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
``engine_adapters_vs_ct2_fp32``.

The service over HTTP on the same rows of each model (32 closed-loop clients, one sentence per request, the
same length limit as the engines: ``--max-length-ratio 0``), with one and with two front-end processes on the
demo: ``server_32_clients_vs_engine_adapters`` (target >= 0.9; the mid-sized model's >= 0.95),
``server_32_clients_vs_ct2_fp32``, ``p50_32_vs_1_client``, ``server_2_front_ends_vs_1``, and the core's mean
decoding step under that load against the engine's alone (``step_ms_server_vs_engine``, from /metrics)."""

from __future__ import annotations

import asyncio
import json
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import torch

from bench.common import table
from bench.loadgen import device_args, run_load, sentence_pool
from bench.workloads import DEMO, DEMO_BUNDLE, SIZES
from lslo import LSLoConfig, inject
from lslo.io import read_manifest, save_bundle
from server.launch import start_server

LANGUAGES = ["en", "fr", "de", "it", "nl", "ja", "ko", "zh"]


def workload(
    n: int,
    threads: int,
    dtype: str,
    seed: int = 0,
    base: Path = DEMO / "base",
    bundle: Path = DEMO_BUNDLE,
    max_new: int = 200,
) -> dict[str, Any]:
    pool = sentence_pool(LANGUAGES, n=n)
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        src, tgt = rng.sample(LANGUAGES, 2)
        rows.append((pool[src][i], src, tgt))
    return {
        "rows": rows,
        "settings": {
            "base": str(base),
            "bundle": str(bundle),
            "beam": 4,
            "batch": 32,
            "max_new": max_new,
            "threads": threads,
            "dtype": dtype,
        },
    }


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
    lslo = inject(
        model,
        LSLoConfig.from_strings(
            list(ranks), ranks, modules=manifest.modules, fc_mode=manifest.fc_mode, layer_map="paper"
        ),
    )
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
    cmd = [
        sys.executable,
        "-m",
        "bench.engine_worker",
        str(path),
        engine,
        "--repeats",
        str(repeats),
        "--device",
        str(device),
        "--ct2-model",
        str(ct2_model),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    if done.returncode != 0:
        raise RuntimeError(f"{engine} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def rows_body(rows: list[tuple[str, str, str]]):
    """A request body maker sending the workload's rows in turn, one sentence per request."""
    turn = iter(range(10**9))

    def body(rng, pool) -> tuple[dict[str, Any], int]:
        text, src, tgt = rows[next(turn) % len(rows)]
        return {"q": text, "source": src, "target": tgt}, 1

    return body


def step_totals(url: str) -> tuple[float, float]:
    """(seconds, steps) of the core's decoding steps so far, from /metrics (lslo_batch_seconds)."""
    text = httpx.get(url + "/metrics", timeout=10).text
    total = re.search(r"^lslo_batch_seconds_sum (\S+)$", text, re.M)
    count = re.search(r"^lslo_batch_seconds_count (\S+)$", text, re.M)
    return (float(total.group(1)), float(count.group(1))) if total and count else (0.0, 0.0)


def serve_load(
    work: dict[str, Any],
    device: torch.device,
    dtype: torch.dtype,
    quick: bool,
    workers: int = 1,
    one_client: bool = True,
) -> dict[str, dict[str, float]]:
    """The server over HTTP on the workload's model (beam 4, translations as long as the engines may make them):
    1 and 32 closed-loop clients sending the workload's rows, one sentence per request; with the core's mean
    step time under the 32 clients."""
    settings = work["settings"]
    rows = [tuple(r) for r in work["rows"]]
    flags = [
        "--base",
        settings["base"],
        "--bundle",
        settings["bundle"],
        "--max-batch-size",
        "32",
        "--beam",
        "4",
        "--max-new-tokens",
        str(settings["max_new"]),
        "--max-length-ratio",
        "0",
        "--workers",
        str(workers),
    ]
    server = start_server([*flags, *device_args(device, dtype)])
    out = {}
    try:
        for clients in (1, 32) if one_client else (32,):
            requests = len(rows) if clients == 32 else min(len(rows), 40 if quick else 150)
            asyncio.run(run_load(server.url, {}, clients, 16, max_seconds=60, body=rows_body(rows)))  # warm-up
            before = step_totals(server.url)
            out[str(clients)] = asyncio.run(
                run_load(server.url, {}, clients, requests, max_seconds=600, body=rows_body(rows))
            ).summary()
            after = step_totals(server.url)
            steps = after[1] - before[1]
            out[str(clients)]["step_ms"] = 1000 * (after[0] - before[0]) / steps if steps else float("nan")
    finally:
        server.stop()
    return out


def measure(
    tmp: Path, label: str, work: dict[str, Any], device: torch.device, repeats: int
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
            entry = results.setdefault(e, {"rates": [], "texts": out["texts"], "step_ms": []})
            entry["rates"] += out["rates"]
            if out.get("step_ms") is not None:
                entry["step_ms"].append(out["step_ms"])
    return results


def ratios_of(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    best = {e: max(r["rates"]) for e, r in results.items()}
    texts = {e: r["texts"] for e, r in results.items()}

    def same(a: str, b: str) -> float:
        return sum(x == y for x, y in zip(texts[a], texts[b])) / len(texts[a])

    out = {
        "engine_adapters_vs_engine_base": best["lslo-adapters"] / best["lslo-base"],
        "engine_adapters_vs_generate": best["lslo-adapters"] / best["generate-adapters"],
    }
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
    randoms, loads = {}, {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        demo_work = workload(n, threads, name)
        demo = measure(tmp, "demo", demo_work, device, repeats)
        loads["demo"] = serve_load(demo_work, device, dtype, quick)
        loads["demo, 2 front ends"] = serve_load(demo_work, device, dtype, quick, workers=2, one_client=False)
        for size, count in sizes.items():
            base, bundle = random_model(tmp, size)
            work = workload(count, threads, name, base=base, bundle=bundle, max_new=48)
            randoms[size] = measure(tmp, size, work, device, repeats)
            loads[size] = serve_load(work, device, dtype, quick, one_client=False)
    load = loads["demo"]
    ratios = ratios_of(demo)
    engine_rate = max(demo["lslo-adapters"]["rates"])
    ratios["server_32_clients_vs_engine_adapters"] = load["32"]["rps"] / engine_rate
    ratios["server_2_front_ends_vs_1"] = loads["demo, 2 front ends"]["32"]["rps"] / load["32"]["rps"]
    ratios["p50_32_vs_1_client"] = load["32"]["p50_ms"] / load["1"]["p50_ms"]
    ratios["step_ms_server_vs_engine"] = load["32"]["step_ms"] / min(demo["lslo-adapters"]["step_ms"])
    reference = max(demo["ct2-float32"]["rates"]) if "ct2-float32" in demo else None
    if reference:
        ratios["server_32_clients_vs_ct2_fp32"] = load["32"]["rps"] / reference
    for size, results in randoms.items():
        ratios.update({f"{size}_{key}": value for key, value in ratios_of(results).items()})
        ratios[f"{size}_server_32_clients_vs_engine_adapters"] = loads[size]["32"]["rps"] / max(
            results["lslo-adapters"]["rates"]
        )
    rows = []
    for label, results in (("demo", demo), *randoms.items()):
        best = {e: max(r["rates"]) for e, r in results.items()}
        for server_label, server_load in loads.items():
            if server_label.split(",")[0] == label:
                best[f"server over HTTP, 32 clients{server_label[len(label) :]}"] = server_load["32"]["rps"]
        ct2 = best.get("ct2-float32")
        rows += [
            {
                "model": label,
                "engine": e,
                "sentences/s": rate,
                "vs CTranslate2 fp32": rate / ct2 if ct2 else float("nan"),
                "vs lslo-adapters": rate / best["lslo-adapters"],
            }
            for e, rate in best.items()
        ]
    print(
        table(
            rows,
            ["model", "engine", "sentences/s", "vs CTranslate2 fp32", "vs lslo-adapters"],
            f"demo: {n} sentences, at most 200 new tokens; "
            + "; ".join(f"{size}: {count} sentences, at most 48" for size, count in sizes.items())
            + "; 8 languages in "
            f"random pairs, beam 4, batch 32, {threads} threads, {device}",
        )
    )
    for key, value in ratios.items():
        print(f"{key} = {value:.2f}")
    print(
        f"server p50 latency: 1 client {load['1']['p50_ms']:.0f} ms, 32 clients {load['32']['p50_ms']:.0f} ms; "
        f"decoding step: engine alone {min(demo['lslo-adapters']['step_ms']):.1f} ms, in the server under 32 "
        f"clients {load['32']['step_ms']:.1f} ms; failed requests "
        f"{sum(v['failures'] for one in loads.values() for v in one.values())}"
    )
    return {
        "rows": rows,
        "ratios": ratios,
        "server": loads,
        "rates": {
            f"{label}/{e}": r["rates"] for label, res in (("demo", demo), *randoms.items()) for e, r in res.items()
        },
        "params": {
            "sentences": {"demo": n, **sizes},
            "repeats": repeats,
            "beam": 4,
            "batch": 32,
            "max_new_tokens": {"demo": 200, **{size: 48 for size in sizes}},
        },
    }
