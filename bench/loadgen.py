"""A bounded loopback load generator and server-process helpers for the server benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.common import percentile
from lslo.devices import dtype_name


@dataclass
class LoadResult:
    clients: int
    requests: int
    failures: int
    seconds: float
    items: int = 0  # texts sent (a request may carry several)
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return (self.requests - self.failures) / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, float]:
        lat = self.latencies
        return {
            "clients": self.clients,
            "requests": self.requests,
            "failures": self.failures,
            "rps": self.rps,
            "p50_ms": 1000 * percentile(lat, 50),
            "p95_ms": 1000 * percentile(lat, 95),
            "p99_ms": 1000 * percentile(lat, 99),
        }


def sentence_pool(languages: Sequence[str], n: int = 300, seed: int = 0) -> dict[str, list[str]]:
    """Short real texts per language (Django UI strings and CLDR names, as the demo was trained on)."""
    from training.corpus import merge
    from training.corpus_sources import cldr_segments, django_segments

    table = merge([django_segments(languages)[0], cldr_segments(languages)[0]])
    keys = sorted(k for k, v in table.items() if all(c in v for c in languages))
    random.Random(seed).shuffle(keys)
    return {c: [table[k][c] for k in keys[:n]] for c in languages}


# A request body maker: (rng, pool) -> (JSON body of one POST /translate, number of texts in it).
Body = Callable[[random.Random, dict[str, list[str]]], tuple[dict[str, Any], int]]


def one_text(rng: random.Random, pool: dict[str, list[str]]) -> tuple[dict[str, Any], int]:
    """One sentence of a random language pair."""
    src, tgt = rng.sample(list(pool), 2)
    return {"q": rng.choice(pool[src]), "source": src, "target": tgt}, 1


async def _client(
    http: httpx.AsyncClient,
    url: str,
    pool: dict[str, list[str]],
    rng: random.Random,
    budget: list[int],
    deadline: float,
    result: LoadResult,
    body: Body,
) -> None:
    while budget[0] > 0 and time.perf_counter() < deadline:
        budget[0] -= 1
        payload, items = body(rng, pool)
        start = time.perf_counter()
        try:
            response = await http.post(url + "/translate", json=payload)
            status = response.status_code
        except httpx.HTTPError:
            status = -1
        result.latencies.append(time.perf_counter() - start)
        result.statuses[status] = result.statuses.get(status, 0) + 1
        result.requests += 1
        result.items += items
        if status != 200:
            result.failures += 1


async def run_load(
    url: str,
    pool: dict[str, list[str]],
    clients: int,
    requests: int,
    max_seconds: float,
    seed: int = 0,
    body: Body = one_text,
) -> LoadResult:
    """``clients`` concurrent clients, each sending its next request when the last one returns; stops after
    ``requests`` requests or ``max_seconds``."""
    result = LoadResult(clients, 0, 0, 0.0)
    budget = [requests]
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        start = time.perf_counter()
        deadline = start + max_seconds
        await asyncio.gather(
            *(
                _client(http, url, pool, random.Random(seed * 1000 + i), budget, deadline, result, body)
                for i in range(clients)
            )
        )
        result.seconds = time.perf_counter() - start
    return result


@dataclass
class SwapLog:
    latencies: list[float] = field(default_factory=list)  # seconds from PUT to the probe's answer (or the PUT's)
    failures: list[int] = field(default_factory=list)  # status of each failed PUT or probe

    @property
    def swaps(self) -> int:
        return len(self.latencies)


async def swap_loop(
    url: str,
    files: dict[str, list[bytes]],
    token: str,
    every: float,
    stop: asyncio.Event,
    seed: int = 0,
    reload_share: float = 0.0,
    probe: bool = True,
) -> SwapLog:
    """Until ``stop``: every ``every`` seconds PUT an adapter of a random language in ``files`` (cycling through
    its variants), or with probability ``reload_share`` reload it from the bundle (PUT without a body); with
    ``probe``, each swap is timed to the first translation into that language served after it."""
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {token}"}
    log = SwapLog()
    async with httpx.AsyncClient(timeout=120) as http:
        while not stop.is_set():
            code = rng.choice(sorted(files))
            start = time.perf_counter()
            if rng.random() < reload_share:
                response = await http.put(f"{url}/adapters/{code}", headers=headers)
            else:
                variants = files[code]
                response = await http.put(
                    f"{url}/adapters/{code}",
                    content=variants[log.swaps % len(variants)],
                    headers={**headers, "content-type": "application/octet-stream"},
                )
            if probe:
                source = "en" if code != "en" else "fr"
                answer = await http.post(f"{url}/translate", json={"q": "Monday", "source": source, "target": code})
                if answer.status_code != 200:
                    log.failures.append(answer.status_code)
            if response.status_code != 200:
                log.failures.append(response.status_code)
            log.latencies.append(time.perf_counter() - start)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
    return log


DEMO_DIR = Path(__file__).resolve().parents[1] / "adapters" / "demo"


def demo_args(extra: Sequence[str] = ()) -> list[str]:
    return ["--base", str(DEMO_DIR / "base"), "--bundle", str(DEMO_DIR / "bundle-paper"), *extra]


def device_args(device, dtype) -> list[str]:
    """Server flags for the benchmark's device and dtype, so the JSON's dtype is the one served."""
    import torch

    return ["--device", str(device), "--dtype", dtype_name(dtype), "--threads", str(torch.get_num_threads())]


def demo_languages() -> list[str]:
    return list(json.loads((DEMO_DIR / "bundle-paper" / "manifest.json").read_text(encoding="utf-8"))["languages"])
