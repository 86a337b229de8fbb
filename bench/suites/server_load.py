"""``server``: requests per second and latency percentiles of a real server process (demo bundle) under 1, 8
and 32 concurrent loopback clients sending random pairs, batching on (max batch 32) and off (max batch 1).
Runs alternate between the two servers. Ratio ``batched_vs_unbatched_throughput`` at 32 clients."""

from __future__ import annotations

import asyncio
from typing import Any

import torch

from bench.common import median, table
from bench.loadgen import demo_args, demo_languages, device_args, run_load, sentence_pool
from server.launch import start_server


def run(device: torch.device, dtype: torch.dtype, quick: bool) -> dict[str, Any]:
    pool = sentence_pool(demo_languages())
    common = device_args(device, dtype)
    modes = {"batched": ["--max-batch-size", "32", "--max-wait-ms", "5"], "unbatched": ["--max-batch-size", "1"]}
    servers: dict[str, Any] = {}
    clients_list = [1, 8, 32]
    repeats = 1 if quick else 3
    requests = {1: 20, 8: 60, 32: 120} if quick else {1: 60, 8: 200, 32: 400}
    rows, raw, ratios = [], {}, {}
    try:
        for mode, flags in modes.items():  # inside the try: a failed start stops the one already running
            servers[mode] = start_server(demo_args([*common, *flags]))
        for clients in clients_list:
            runs: dict[str, list] = {"batched": [], "unbatched": []}
            for rep in range(repeats):
                for mode, server in servers.items():
                    result = asyncio.run(
                        run_load(
                            server.url, pool, clients, requests[clients], max_seconds=60 if quick else 180, seed=rep
                        )
                    )
                    runs[mode].append(result.summary())
            for mode, summaries in runs.items():
                row = {
                    "mode": mode,
                    "clients": clients,
                    **{k: median([s[k] for s in summaries]) for k in ("rps", "p50_ms", "p95_ms", "p99_ms")},
                    "requests": sum(s["requests"] for s in summaries),
                    "failures": sum(s["failures"] for s in summaries),
                }
                rows.append(row)
                raw[f"{mode}/{clients}"] = summaries
            ratios[f"batched_vs_unbatched_throughput[{clients}clients]"] = (
                rows[-2]["rps"] / rows[-1]["rps"] if rows[-1]["rps"] else float("nan")
            )
    finally:
        exits = {mode: s.stop() for mode, s in servers.items()}
    ratios["batched_vs_unbatched_throughput"] = ratios["batched_vs_unbatched_throughput[32clients]"]
    failures = sum(r["failures"] for r in rows)
    print(
        table(
            rows,
            ["mode", "clients", "rps", "p50_ms", "p95_ms", "p99_ms", "requests", "failures"],
            "demo bundle, random pairs of 12 languages, one text per request, loopback",
        )
    )
    print(
        f"\nbatched_vs_unbatched_throughput at 32 clients = {ratios['batched_vs_unbatched_throughput']:.2f} "
        f"(target >= 3); failed requests: {failures}"
    )
    return {
        "rows": rows,
        "raw": raw,
        "ratios": ratios,
        "failures": failures,
        "server_exit_codes": exits,
        "params": {"repeats": repeats, "requests": requests, "beam": 4, "max_wait_ms": 5},
    }
