"""The benchmarks' own tools, tested: the only tests that import ``bench`` (the others use the project's public
APIs and fixtures of their own)."""

import asyncio

import pytest
from test_reliability_process import serve, stop

pytestmark = pytest.mark.slow


def test_load_generator_and_swap_loop_count_what_the_server_answered(service_dirs):
    """The loops the benchmarks and the soak share: every request and text counted, every refused swap seen."""
    from bench.loadgen import run_load, swap_loop

    base, bundle = service_dirs
    server = serve(base, bundle, env={"LSLO_ADMIN_TOKEN": "tok"})
    pool = {"en": ["The cat sleeps.", "Good morning."], "fr": ["Le chat dort."], "de": ["Guten Morgen."]}

    def two_texts(rng, pool):
        src, tgt = rng.sample(list(pool), 2)
        return {"q": [pool[src][0], pool[src][-1]], "source": src, "target": tgt}, 2

    files = {"fr": [(bundle / "fr.safetensors").read_bytes()], "de": [(bundle / "de.safetensors").read_bytes()]}

    async def scenario(token):
        stop = asyncio.Event()
        swaps = asyncio.create_task(swap_loop(server.url, files, token, every=0.05, stop=stop, reload_share=0.5))
        load = await run_load(server.url, pool, clients=3, requests=15, max_seconds=60, body=two_texts)
        stop.set()
        return load, await swaps

    try:
        load, swaps = asyncio.run(scenario("tok"))
        _, refused = asyncio.run(scenario("wrong"))
    finally:
        code, output = stop(server)
    assert (load.requests, load.items, load.failures, load.statuses) == (15, 30, 0, {200: 15}), output
    assert swaps.swaps >= 1 and swaps.failures == [] and len(swaps.latencies) == swaps.swaps
    # a wrong token: every PUT refused, while the probe still answers 200
    assert refused.swaps >= 1 and refused.failures == [403] * refused.swaps
    assert code == 0, output
