"""The engine core in its own process (``server.core``), driven through ``CoreClient`` as the front end drives
it: outputs token for token those of ``DecodingEngine`` in this process (itself checked against ``generate()`` in
test_engine.py), a cancelled caller's rows aborted, adapter changes as calls, and the core killed under load:
every row in flight fails with 503 within seconds, the core comes back on its own, serving exactly the adapters
its predecessor served."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
import torch
from transformers import AutoTokenizer, M2M100ForConditionalGeneration

from lslo.engine import DecodingEngine
from lslo.engine.generation import GenerationSettings, requests_for
from lslo.errors import AdapterFileError
from lslo.io import load_bundle
from server.core.client import CoreClient, CoreStopped
from server.settings import ServerSettings
from server_helpers import DEMO, DEMO_BUNDLE
from tests.test_engine import sentence_rows

SETTINGS = dict(
    base=DEMO / "base",
    bundle=str(DEMO_BUNDLE),
    beam=2,
    max_new_tokens=24,
    max_batch_size=8,
    max_wait_ms=5,
    threads=1,
    log_level="warning",
)


def requests(rows, beams=2, max_new_tokens=24):
    tokenizer = AutoTokenizer.from_pretrained(DEMO / "base")
    settings = GenerationSettings(num_beams=beams, max_new_tokens=max_new_tokens, fallback_to_base=True)
    return requests_for(tokenizer, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], settings, 2)


def in_process(reqs):
    model = M2M100ForConditionalGeneration.from_pretrained(DEMO / "base", dtype=torch.float32).eval()
    engine = DecodingEngine(model, load_bundle(model, DEMO_BUNDLE), max_rows=64, max_new_tokens=24)
    return [[list(s) for s in o.sequences] for o in engine.run(reqs)]


def run(coro_fn):
    async def main():
        client = CoreClient(ServerSettings(**SETTINGS), start_timeout_s=120)
        await client.start()
        try:
            return await coro_fn(client)
        finally:
            await client.stop(timeout_s=10)
            assert client.process is not None and not client.process.is_alive()

    return asyncio.run(main())


def test_the_core_process_decodes_token_for_token_as_the_engine_in_process():
    reqs = requests(sentence_rows(40, seed=3))
    expected = in_process(reqs)

    async def body(client):
        # three callers at once, so that their rows share steps in the core
        parts = await asyncio.gather(*(client.decode(reqs[i::3]) for i in range(3)))
        got = [None] * len(reqs)
        for i, part in enumerate(parts):
            for j, out in enumerate(part):
                got[i + 3 * j] = [list(s) for s in out.sequences]
        stats = await client.call("stats")
        return got, stats

    got, stats = run(body)
    assert got == expected
    assert stats["queued"] == 0 and stats["running"] == 0 and stats["steps"] > 0


def test_a_cancelled_caller_has_its_rows_aborted_and_others_are_unaffected():
    reqs = requests(sentence_rows(12, seed=5))
    expected = in_process(reqs[6:])

    async def body(client):
        slow = asyncio.create_task(client.decode(reqs[:6]))
        await asyncio.sleep(0.05)
        slow.cancel()
        got = await client.decode(reqs[6:])
        for _ in range(50):  # the abort reaches the core and its rows leave at its next step
            stats = await client.call("stats")
            if stats["running"] == 0 and stats["queued"] == 0:
                break
            await asyncio.sleep(0.02)
        return [[list(s) for s in o.sequences] for o in got], stats

    got, stats = run(body)
    assert got == expected and stats["running"] == 0 and stats["queued"] == 0


def test_killing_the_core_under_load_fails_in_flight_rows_fast_and_the_core_comes_back_with_its_adapters():
    reqs = requests(sentence_rows(48, seed=9), max_new_tokens=24)
    nl = (DEMO_BUNDLE / "nl.safetensors").read_bytes()

    async def body(client):
        assert await client.call("remove", code="de") is True
        changed = await client.call("install", code="nl", data=nl, label="upload for nl", source="upload")
        assert changed["replaced"] is True
        with pytest.raises(AdapterFileError):  # a refused file changes nothing
            await client.call("install", code="fr", data=b"not a safetensors file", label="upload", source="upload")
        before = client.state
        assert "de" not in before.languages and "nl" in before.languages
        flights = [asyncio.create_task(client.decode(reqs[i : i + 4])) for i in range(0, 48, 4)]
        await asyncio.sleep(0.3)  # decoding
        os.kill(client.process.pid, signal.SIGKILL)
        killed = time.monotonic()
        results = await asyncio.gather(*flights, return_exceptions=True)
        failed_within = time.monotonic() - killed
        stopped = [r for r in results if isinstance(r, CoreStopped)]
        assert stopped and all(isinstance(r, list) for r in results if r not in stopped), results  # none hangs
        assert failed_within < 10
        assert not client.ready  # /ready is false until the new core has loaded
        with pytest.raises(CoreStopped.__mro__[1]):  # Overloaded (503) meanwhile
            await client.decode(reqs[:1])
        for _ in range(600):
            if client.ready:
                break
            await asyncio.sleep(0.1)
        assert client.ready and client.restarts == 1
        after = client.state
        assert after.languages == before.languages
        assert [(r["code"], r["sha256"], r["source"]) for r in after.adapters] == [
            (r["code"], r["sha256"], r["source"]) for r in before.adapters
        ]
        out = await client.decode(reqs[:4])
        return [[list(s) for s in o.sequences] for o in out]

    got = run(body)
    model = M2M100ForConditionalGeneration.from_pretrained(DEMO / "base", dtype=torch.float32).eval()
    lslo = load_bundle(model, DEMO_BUNDLE)
    lslo.remove_language("de")
    engine = DecodingEngine(model, lslo, max_rows=64, max_new_tokens=24)
    assert got == [[list(s) for s in o.sequences] for o in engine.run(reqs[:4])]
