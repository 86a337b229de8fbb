"""Soak: mixed traffic with adapter swaps against a real server process for a bounded time (loopback only).

Records requests served, errors, swaps and the server's memory at start and end.
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

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import proc_status_mib  # noqa: E402
from bench.loadgen import demo_args, demo_languages, sentence_pool, start_server  # noqa: E402
from bench.suites.swap import variant_file  # noqa: E402
from bench.workloads import DEMO  # noqa: E402


def rss_mib(pid: int) -> float:
    return proc_status_mib("VmRSS", pid)


async def soak(url: str, pid: int, minutes: float, clients: int, token: str) -> dict:
    languages = demo_languages()
    pool = sentence_pool(languages)
    files = {c: [variant_file(DEMO / "bundle", c, s) for s in (1.02, 0.98)] for c in languages[:4]}
    deadline = time.monotonic() + 60 * minutes
    counts = {"requests": 0, "errors": 0, "items": 0, "swaps": 0, "swap_errors": 0}
    statuses: dict[int, int] = {}
    memory = [(0.0, rss_mib(pid))]
    start = time.monotonic()

    async def client(i: int) -> None:
        rng = random.Random(i)
        async with httpx.AsyncClient(timeout=120) as http:
            while time.monotonic() < deadline:
                src, tgt = rng.sample(languages, 2)
                n = rng.choice([1, 1, 1, 2, 4])
                body = {"q": [rng.choice(pool[src]) for _ in range(n)] if n > 1 else rng.choice(pool[src]),
                        "source": src, "target": tgt, "alternatives": rng.choice([0, 0, 0, 1])}
                try:
                    status = (await http.post(url + "/translate", json=body)).status_code
                except httpx.HTTPError:
                    status = -1
                counts["requests"] += 1
                counts["items"] += n
                statuses[status] = statuses.get(status, 0) + 1
                if status != 200:
                    counts["errors"] += 1

    async def swapper() -> None:
        rng = random.Random(99)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(timeout=120) as http:
            while time.monotonic() < deadline:
                await asyncio.sleep(2.0)
                code = rng.choice(list(files))
                if rng.random() < 0.2:
                    response = await http.put(f"{url}/adapters/{code}", headers=headers)  # reload from the bundle
                else:
                    response = await http.put(f"{url}/adapters/{code}", content=rng.choice(files[code]),
                                              headers={**headers, "content-type": "application/octet-stream"})
                counts["swaps"] += 1
                if response.status_code != 200:
                    counts["swap_errors"] += 1

    async def sampler() -> None:
        while time.monotonic() < deadline:
            await asyncio.sleep(15)
            memory.append((round(time.monotonic() - start), rss_mib(pid)))

    await asyncio.gather(*(client(i) for i in range(clients)), swapper(), sampler())
    memory.append((round(time.monotonic() - start), rss_mib(pid)))
    seconds = time.monotonic() - start
    return {**counts, "statuses": statuses, "seconds": round(seconds, 1), "rps": counts["requests"] / seconds,
            "rss_mib_start": memory[0][1], "rss_mib_end": memory[-1][1],
            "rss_mib_max": max(m for _, m in memory), "memory_samples": memory}


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
