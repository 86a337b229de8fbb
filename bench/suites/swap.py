"""``swap``: adapter swap latency (PUT until the first request served with the new weights) for a demo-sized
adapter through a real server, and for an M2M-124-sized adapter in the engine; p99 latency of ongoing
traffic while adapters are swapped repeatedly versus without swaps; failed requests (must be 0).
Ratio ``p99_during_swaps_vs_steady``."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import torch

from bench.common import median, percentile, table
from bench.loadgen import (
    LoadResult,
    SwapLog,
    demo_args,
    demo_languages,
    device_args,
    run_load,
    sentence_pool,
    swap_loop,
)
from bench.workloads import DEMO_BUNDLE, build
from lslo.io.adapter_file import encode_language_file, parse_language_file
from lslo.io.bundle import adapter_config, install_adapter, model_fingerprint
from server.launch import start_server


def variant_file(bundle: Path, code: str, scale: float) -> bytes:
    """The bundle's adapter of ``code`` with B scaled: same shapes, other weights."""
    adapter = parse_language_file((bundle / f"{code}.safetensors").read_bytes())
    tensors = {k: (v * scale if k.endswith("lora_B") else v) for k, v in adapter.tensors.items()}
    return encode_language_file(code, tensors, adapter.fingerprint, adapter.config)


async def _traffic(url: str, pool, clients: int, seconds: float, swap: dict | None) -> tuple[LoadResult, SwapLog]:
    stop = asyncio.Event()
    swaps = None
    if swap is not None:
        swaps = asyncio.create_task(swap_loop(url, {swap["code"]: swap["files"]}, swap["token"], swap["every"], stop))
    load = await run_load(url, pool, clients, requests=10**9, max_seconds=seconds)
    stop.set()
    return load, (await swaps if swaps is not None else SwapLog())


def engine_swap_m2m124(quick: bool) -> dict[str, float]:
    """Parse + install of an M2M-124-sized adapter (lang12 2;2;8, all modules) in place and with a new rank."""
    work = build("m2m124", torch.device("cpu"), torch.float32)
    lslo = work.lslo
    fingerprint, config = model_fingerprint(lslo), adapter_config(lslo)
    same = encode_language_file("oc", lslo.language_state_dict("oc"), fingerprint, config)
    bigger_state = {
        k: torch.randn(16, v.shape[1]) * 0.02 if k.endswith("lora_A") else torch.randn(v.shape[0], 16) * 0.02
        for k, v in lslo.language_state_dict("oc").items()
    }
    bigger = encode_language_file("oc", bigger_state, fingerprint, config)
    out: dict[str, Any] = {"file_mb_rank8": len(same) / 2**20, "file_mb_rank16": len(bigger) / 2**20}
    for name, data in (("same_rank", same), ("new_rank", bigger), ("back_to_rank8", same)):
        times = []
        for _ in range(1 if quick else 3):
            start = time.perf_counter()
            install_adapter(lslo, parse_language_file(data), "oc")
            times.append(time.perf_counter() - start)
        out[f"{name}_s"] = median(times)
    return out


def run(device: torch.device, dtype: torch.dtype, quick: bool) -> dict[str, Any]:
    languages = demo_languages()
    pool = sentence_pool(languages)
    token = "bench-token"
    code = languages[1]
    files = [variant_file(DEMO_BUNDLE, code, s) for s in (1.05, 0.95)]
    server = start_server(demo_args(device_args(device, dtype)), env={"LSLO_ADMIN_TOKEN": token})
    seconds = 10 if quick else 40
    repeats = 1 if quick else 3
    rows, ratios = [], {}
    try:
        steady, swapping = [], []
        swap_latency: list[float] = []
        failures = 0
        for _ in range(repeats):
            load, _ = asyncio.run(_traffic(server.url, pool, 8, seconds, None))
            steady.append(load)
            load, swaps = asyncio.run(
                _traffic(server.url, pool, 8, seconds, {"files": files, "code": code, "token": token, "every": 0.5})
            )
            swapping.append(load)
            swap_latency += swaps.latencies
            failures += len(swaps.failures) + load.failures
        failures += sum(s.failures for s in steady)
        p99 = {
            name: median([percentile(r.latencies, 99) for r in runs])
            for name, runs in (("steady", steady), ("swaps", swapping))
        }
        ratios["p99_during_swaps_vs_steady"] = p99["swaps"] / p99["steady"]
        rows.append(
            {
                "case": "traffic without swaps",
                "p99_ms": 1000 * p99["steady"],
                "rps": median([r.rps for r in steady]),
                "requests": sum(r.requests for r in steady),
            }
        )
        rows.append(
            {
                "case": "traffic with a swap every 0.5 s",
                "p99_ms": 1000 * p99["swaps"],
                "rps": median([r.rps for r in swapping]),
                "requests": sum(r.requests for r in swapping),
            }
        )
        demo_swap = {
            "swaps": len(swap_latency),
            "median_ms": 1000 * median(swap_latency),
            "p99_ms": 1000 * percentile(swap_latency, 99),
        }
    finally:
        exit_code = server.stop()
    m2m124 = engine_swap_m2m124(quick)
    print(table(rows, ["case", "rps", "p99_ms", "requests"], "demo server, 8 clients"))
    print(
        f"\ndemo adapter swap (PUT upload -> first request served with it), under load: median "
        f"{demo_swap['median_ms']:.0f} ms, p99 {demo_swap['p99_ms']:.0f} ms over {demo_swap['swaps']} swaps"
    )
    print(
        f"M2M-124-sized adapter ({m2m124['file_mb_rank8']:.1f} MiB) parse + install in the engine: same rank "
        f"{1000 * m2m124['same_rank_s']:.0f} ms, new rank {1000 * m2m124['new_rank_s']:.0f} ms"
    )
    print(
        f"p99_during_swaps_vs_steady = {ratios['p99_during_swaps_vs_steady']:.2f} (target <= 1.5); "
        f"failed requests: {failures}"
    )
    return {
        "rows": rows,
        "ratios": ratios,
        "failures": failures,
        "demo_swap": demo_swap,
        "m2m124_engine_swap": m2m124,
        "server_exit_code": exit_code,
        "params": {"clients": 8, "seconds": seconds, "repeats": repeats, "swap_every_s": 0.5},
    }
