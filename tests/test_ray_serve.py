"""The service on Ray Serve (``python -m server.ray_serve``): a local Ray cluster on loopback, two replicas; requests
are served by both, an adapter persisted through either reaches both, nothing fails meanwhile, and SIGTERM
drains the replicas and exits 0."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import httpx
import pytest
from test_bundle_store import variant

from server.launch import free_port
from server_helpers import reference

pytest.importorskip("ray.serve", reason="Ray Serve is the ray extra (part of the test extra)")
pytestmark = pytest.mark.slow

TEXTS = ["The cat sleeps.", "Where is the station?"]
AUTH = {"Authorization": "Bearer tok"}


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except httpx.TransportError:
            value = None
        if value:
            return value
        time.sleep(0.3)
    pytest.fail(f"{what}: not within {timeout} s")


def test_two_ray_serve_replicas_serve_and_follow_the_bundle(service_dirs, tmp_path):
    base, original = service_dirs
    bundle = tmp_path / "bundle"
    shutil.copytree(original, bundle)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "LSLO_ADMIN_TOKEN": "tok", "LSLO_LOG_LEVEL": "warning"}
    cmd = [
        sys.executable,
        "-m",
        "server.ray_serve",
        "--base",
        str(base),
        "--bundle",
        str(bundle),
        "--bundle-poll-s",
        "1",
        "--replicas",
        "2",
        "--cpus-per-replica",
        "0.5",
        "--threads",
        "1",
        "--port",
        str(port),
        "--beam",
        "2",
        "--max-new-tokens",
        "10",
        "--log-format",
        "text",
    ]
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
    )  # SIGTERM goes to the driver alone, as Kubernetes sends it
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        wait_until(lambda: httpx.get(url + "ready", timeout=5).status_code == 200, 240, "Ray Serve ready")
        ready_s = time.monotonic() - started
        statuses, replicas, stop = [], Counter(), threading.Event()

        def traffic() -> None:
            with httpx.Client(timeout=60) as client:
                while not stop.is_set():
                    r = client.post(url + "translate", json={"q": TEXTS[0], "source": "en", "target": "fr"})
                    statuses.append(r.status_code)
                    replicas[r.headers.get("x-lslo-replica")] += 1

        clients = [threading.Thread(target=traffic) for _ in range(4)]
        for t in clients:
            t.start()
        try:
            wait_until(lambda: len(replicas) >= 2, 60, "requests served by both replicas")
            new = variant(bundle, "fr", 3.0)
            response = httpx.put(url + "adapters/fr?persist=true", content=new, headers=AUTH, timeout=60)
            assert response.status_code == 200 and response.json()["persisted"], response.text
            changed = time.monotonic()
            seen: dict[str, str] = {}

            def both_new() -> bool:
                r = httpx.get(url + "adapters", timeout=10)
                seen[r.headers["x-lslo-replica"]] = {a["code"]: a["sha256"] for a in r.json()["languages"]}["fr"]
                return len(seen) >= 2 and set(seen.values()) == {response.json()["sha256"]}

            wait_until(both_new, 30, "the new adapter on both replicas")
            converged_s = time.monotonic() - changed
            expected = reference(base, bundle, TEXTS, "en", "fr")
            answers: dict[str, list[str]] = {}
            wait_until(lambda: len(answers) >= 2 or answers.update(ask(url)), 30, "answers from both replicas")
            assert all(a == expected for a in answers.values())
        finally:
            stop.set()
            for t in clients:
                t.join()
        assert statuses and set(statuses) == {200}, Counter(statuses)
        assert min(replicas.values()) > 0 and len(replicas) == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            code = None
        reader.join(timeout=5)
    assert code == 0, "".join(output[-40:])
    print(
        f"\nRay Serve, 2 replicas: ready after {ready_s:.0f} s; a persisted adapter on both after "
        f"{converged_s:.1f} s (--bundle-poll-s 1); {len(statuses)} requests ({dict(replicas)}), 0 failed"
    )


def ask(url: str) -> dict[str, list[str]]:
    r = httpx.post(url + "translate", json={"q": TEXTS, "source": "en", "target": "fr"}, timeout=60)
    assert r.status_code == 200, r.text
    return {r.headers["x-lslo-replica"]: r.json()["translatedText"]}
