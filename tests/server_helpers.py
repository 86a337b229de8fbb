"""Helpers for the tests: the demo's paths and texts, app construction, reference translations computed without
the server, a server process's memory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import torch
from transformers import AutoTokenizer, M2M100ForConditionalGeneration

from lslo.engine.generation import GenerationSettings, translate_reference
from lslo.io import load_bundle
from server.core.client import spawn_core
from server.http.app import create_app
from server.launch import free_port
from server.settings import ServerSettings

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "adapters" / "demo"
DEMO_BUNDLE = DEMO / "bundle-paper"  # the demo's 12-language bundle as trained (bundle/, served, holds fewer)


def demo_texts(languages: list[str], n: int, seed: int = 0) -> dict[str, list[str]]:
    """``n`` short real texts per language, the same ``n`` messages in every language: Django's interface
    strings and CLDR names (the demo's domain), through the training package's corpus sources."""
    import random

    from training.corpus import merge
    from training.corpus_sources import cldr_segments, django_segments

    aligned = merge([django_segments(languages)[0], cldr_segments(languages)[0]])
    keys = sorted(key for key, texts in aligned.items() if set(languages) <= set(texts))
    random.Random(seed).shuffle(keys)
    return {code: [aligned[key][code] for key in keys[:n]] for code in languages}


def rss_mib(pid: int) -> float:
    """The resident memory of process ``pid`` in MiB (Linux's /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


FAST = dict(beam=2, max_new_tokens=10, max_batch_size=8, max_wait_ms=30, log_format="text", log_level="warning")


def make_app(base, bundle, core_target=None, **overrides):
    """The app over a tiny model; ``core_target``: the engine core's entry point (a fault-injecting wrapper of
    ``core_main``), started here."""
    settings = ServerSettings(base=base, bundle=bundle, **{**FAST, **overrides})
    return create_app(settings, spawn_core(settings, target=core_target) if core_target else None)


def failing_on_boom(settings, address, journal):
    """``core_main`` whose decoding steps fail (RuntimeError naming a secret) while a row of the text "boom"
    runs, whatever else they hold: the core's isolation of a failing row, seen from outside."""
    from lslo.engine.engine import DecodingEngine
    from server.core.process import core_main

    boom = AutoTokenizer.from_pretrained(settings["base"])("boom", add_special_tokens=False)["input_ids"]
    execute = DecodingEngine.execute

    def flaky(self, plan):
        if any(list(r.request.source_ids[1:-1]) == boom for r in self.running):
            raise RuntimeError("secret internal detail /etc/passwd")
        return execute(self, plan)

    DecodingEngine.execute = flaky
    core_main(settings, address, journal)


def reference(base, bundle, texts, source, target, beam=2, max_new_tokens=10):
    """Translations of ``texts`` computed directly with the library, one text at a time (a language without an
    adapter in ``bundle`` passes through the base alone, as the server does)."""
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = M2M100ForConditionalGeneration.from_pretrained(base, dtype=torch.float32).eval()
    lslo = load_bundle(model, bundle)
    settings = GenerationSettings(num_beams=beam, max_new_tokens=max_new_tokens, fallback_to_base=True)  # as served
    return [translate_reference(model, tokenizer, [t], [source], [target], settings, lslo)[0][0] for t in texts]


@contextmanager
def server_process(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Iterator[str]:
    """``python -m server ARGS --port P`` as a real process; yields its URL once ``/ready`` answers, stops it
    with SIGTERM afterwards and checks that it exited cleanly."""
    port = free_port()
    environment = {**os.environ, "LSLO_LOG_LEVEL": "warning", **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", *args, "--port", str(port), "--log-format", "text"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment,
        cwd=cwd,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(url + "ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        else:
            pytest.fail("server did not become ready")
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, output


def failing_installs(settings, address, journal):
    """``core_main`` whose adapter installs fail (a RuntimeError, as running out of memory would)."""
    from server.core.model import ServedModel
    from server.core.process import core_main

    def failing(*args, **kwargs):
        raise RuntimeError("out of memory")

    ServedModel.install = failing
    core_main(settings, address, journal)


def two_requests_fit(settings, address, journal):
    """``core_main`` on a device that holds no more than two requests at a time: a step over more raises CUDA's
    out-of-memory error."""
    from lslo.engine.engine import DecodingEngine
    from server.core.process import core_main

    execute = DecodingEngine.execute

    def fragile(self, plan):
        if len(self.running) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        return execute(self, plan)

    DecodingEngine.execute = fragile
    core_main(settings, address, journal)


def crashing_once(settings, address, journal):
    """``core_main`` whose loop has a bug that ends the process at its first step (the first core only: a
    restarted one finds the marker its predecessor left)."""
    from server.core.process import EngineCore, core_main

    marker = Path(journal).parent / "crashed-once"
    if not marker.exists():
        step = EngineCore.step

        def broken(self):
            marker.touch()
            raise RuntimeError("a bug in the core's loop (injected)")

        EngineCore.step = broken
        del step
    core_main(settings, address, journal)
