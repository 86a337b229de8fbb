"""Soak: mixed traffic with adapter swaps against a real server process for a bounded time (loopback only).

Records requests served, errors, swaps and the memory of the server's processes (the front end and the engine
core's process) at start and end.
    python scripts/soak.py --minutes 10 [--clients 8] [--json docs/soak.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import percentile, proc_status_mib  # noqa: E402
from bench.loadgen import demo_args, demo_languages, run_load, sentence_pool, swap_loop  # noqa: E402
from bench.suites.swap import variant_file  # noqa: E402
from bench.workloads import DEMO_BUNDLE  # noqa: E402
from server.launch import start_server  # noqa: E402


def processes(pid: int) -> dict[str, int]:
    """The server's processes by role: the front end (``pid``) and its children but multiprocessing's resource
    tracker (with one front end, the engine core alone)."""
    found = {"front end": pid}
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return found
    others = []
    for child in children:
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "resource_tracker" not in command:
            others.append(int(child))
    for i, child in enumerate(others):
        found["core" if len(others) == 1 else f"child {i + 1}"] = child
    return found


def rss_mib(pid: int) -> dict[str, float]:
    """RSS in MiB of each of the server's processes."""
    return {role: proc_status_mib("VmRSS", p) for role, p in processes(pid).items()}


def mixed_body(rng: random.Random, pool: dict[str, list[str]]) -> tuple[dict, int]:
    """Mostly single sentences, some lists of 2 or 4, a quarter asking for an alternative."""
    src, tgt = rng.sample(list(pool), 2)
    n = rng.choice([1, 1, 1, 2, 4])
    q = [rng.choice(pool[src]) for _ in range(n)] if n > 1 else rng.choice(pool[src])
    return {"q": q, "source": src, "target": tgt, "alternatives": rng.choice([0, 0, 0, 1])}, n


async def soak(url: str, pid: int, minutes: float, clients: int, token: str) -> dict:
    languages = demo_languages()
    pool = sentence_pool(languages)
    files = {c: [variant_file(DEMO_BUNDLE, c, s) for s in (1.02, 0.98)] for c in languages[:4]}
    memory: list[tuple[float, dict[str, float]]] = [(0.0, rss_mib(pid))]
    start = time.monotonic()
    stop = asyncio.Event()

    async def sampler() -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), 15)
            except asyncio.TimeoutError:
                memory.append((round(time.monotonic() - start), rss_mib(pid)))

    background = [
        asyncio.create_task(swap_loop(url, files, token, every=2.0, stop=stop, seed=99, reload_share=0.2, probe=False)),
        asyncio.create_task(sampler()),
    ]
    load = await run_load(url, pool, clients, requests=10**12, max_seconds=60 * minutes, body=mixed_body)
    stop.set()
    swaps, _ = await asyncio.gather(*background)
    memory.append((round(time.monotonic() - start), rss_mib(pid)))
    return {
        "requests": load.requests,
        "errors": load.failures,
        "items": load.items,
        "swaps": swaps.swaps,
        "swap_errors": len(swaps.failures),
        "statuses": load.statuses,
        "seconds": round(load.seconds, 1),
        "rps": load.rps,
        "p99_ms": 1000 * percentile(load.latencies, 99),
        "rss_mib_start": memory[0][1],
        "rss_mib_after_15_s": memory[1][1] if len(memory) > 2 else None,
        "rss_mib_end": memory[-1][1],
        "rss_mib_max": {role: max(m.get(role, 0.0) for _, m in memory) for role in memory[-1][1]},
        "memory_samples": memory,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    token = "soak-token"
    server = start_server(demo_args(), env={"LSLO_ADMIN_TOKEN": token})
    try:
        result = asyncio.run(soak(server.url, server.proc.pid, args.minutes, args.clients, token))
    finally:
        result_exit = server.stop()
    result["server_exit_code"] = result_exit
    print(json.dumps({k: v for k, v in result.items() if k != "memory_samples"}, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    return 0 if result["errors"] == 0 and result["swap_errors"] == 0 and result_exit == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
