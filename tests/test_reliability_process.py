"""Reliability against a real server process: graceful SIGTERM, disconnecting clients, load at twice the
capacity with bounded memory, and a short schemathesis run over the OpenAPI schema (no 5xx, every error
body is {"error": ...})."""

import asyncio
import concurrent.futures as cf
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from test_bundle_store import variant

from server.launch import ServerProcess, start_server
from server_helpers import reference, rss_mib

pytestmark = pytest.mark.slow


def serve(base, bundle, *flags, env=None) -> ServerProcess:
    """A real server process on a free port, its output captured to a file."""
    return start_server(
        ["--base", str(base), "--bundle", str(bundle), "--beam", "2", "--max-new-tokens", "10", *flags],
        env=env,
        timeout=120,
    )


def stop(server: ServerProcess) -> tuple[int, str]:
    return server.stop(), server.output()


def queued_rows(server: ServerProcess) -> float:
    metrics = httpx.get(server.url + "/metrics", timeout=5).text
    return float(re.search(r"^lslo_queue_rows (\S+)$", metrics, re.M).group(1))


def _sample_sum(metrics: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` carrying ``labels`` in a Prometheus text exposition (parsed here)."""
    total, found = 0.0, False
    for line in metrics.splitlines():
        sample = re.match(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$", line)
        if sample is None or sample.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', sample.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total, found = total + float(sample.group(3)), True
    assert found, f"no sample {name} {labels}"
    return total


def _post(url, text, timeout=60.0):
    return httpx.post(url + "/translate", json={"q": text, "source": "en", "target": "fr"}, timeout=timeout)


def _rows(prefix: str, n: int) -> list[str]:
    """n distinct rows for one request. The random base may stop a row after one token, so a one-row request
    can be answered before the next arrives; many rows per request keep the worker busy for a while."""
    return [f"{prefix} {j}." for j in range(n)]


def test_sigterm_finishes_in_flight_requests_then_exits_0(service_dirs):
    base, bundle = service_dirs
    server = serve(base, bundle, "--max-batch-size", "1", "--graceful-timeout-s", "60")
    requests = [_rows(f"The cat sleeps, request {i}, row", 16) for i in range(12)]  # 192 rows, one per batch
    with cf.ThreadPoolExecutor(12) as pool:
        futures = [pool.submit(_post, server.url, q, 120.0) for q in requests]
        deadline = time.time() + 30
        while queued_rows(server) < 2 and time.time() < deadline:  # rows are queued behind a running one
            time.sleep(0.01)
        assert queued_rows(server) >= 2
        server.proc.send_signal(signal.SIGTERM)
        assert not all(f.done() for f in futures)
        responses = [f.result() for f in futures]
    code, output = stop(server)
    assert [r.status_code for r in responses] == [200] * 12, output
    assert [len(r.json()["translatedText"]) for r in responses] == [16] * 12
    assert code == 0, output
    with pytest.raises(httpx.TransportError):
        httpx.get(server.url + "/health", timeout=2)


def test_disconnecting_clients_do_not_stall_the_worker(service_dirs):
    base, bundle = service_dirs
    server = serve(base, bundle)
    try:
        for i in range(20):  # clients that connect and send, then give up waiting for the answer
            with pytest.raises(httpx.ReadTimeout):
                _post(
                    server.url,
                    _rows(f"A sentence that the client {i} will not wait for, row", 16),
                    timeout=httpx.Timeout(10, read=0.005),
                )
        start = time.time()
        assert _post(server.url, "The cat sleeps.").status_code == 200
        assert time.time() - start < 30
        deadline = time.time() + 30
        while queued_rows(server) > 0 and time.time() < deadline:
            time.sleep(0.2)
        assert queued_rows(server) == 0
    finally:
        code, output = stop(server)
    assert code == 0, output


def test_twice_the_capacity_gets_quick_503s_bounded_memory_and_finished_accepted_requests(service_dirs):
    base, bundle = service_dirs
    capacity = 16
    server = serve(base, bundle, "--max-queue", str(capacity), "--max-batch-size", "8")
    try:
        for _ in range(3):
            _post(server.url, "warm up")
        rss_before = rss_mib(server.proc.pid)

        async def flood():
            async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=200)) as http:

                async def one(i):
                    start = time.perf_counter()
                    r = await http.post(
                        server.url + "/translate",
                        json={"q": [f"Sentence {i} to translate.", f"And {i} more."], "source": "en", "target": "de"},
                    )  # two distinct rows
                    return r, time.perf_counter() - start

                results = []
                for _ in range(4):  # four waves of twice the queue capacity (in rows)
                    results += await asyncio.gather(*(one(i) for i in range(capacity)))
                return results

        results = asyncio.run(flood())
        rss_after = rss_mib(server.proc.pid)
    finally:
        code, output = stop(server)
    statuses = [r.status_code for r, _ in results]
    assert set(statuses) <= {200, 503}, statuses
    assert statuses.count(200) > 0 and statuses.count(503) > 0
    for response, seconds in results:
        if response.status_code == 503:
            assert int(response.headers["retry-after"]) >= 1 and seconds < 5
        else:
            assert len(response.json()["translatedText"]) == 2
    assert rss_after - rss_before < 200, (rss_before, rss_after)
    assert code == 0, output


def test_schemathesis_finds_no_server_errors(service_dirs, tmp_path):
    """A short property-based run over every operation; the long run is scripts/fuzz.sh."""
    base, bundle = service_dirs
    server = serve(base, bundle, env={"LSLO_ADMIN_TOKEN": "tok"})
    try:
        out = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "run",
                f"{server.url}/openapi.json",
                "--checks",
                "not_a_server_error,content_type_conformance,response_schema_conformance,status_code_conformance",
                "--max-examples",
                "25",
                "--phases",
                "examples,coverage,fuzzing",
                "--workers",
                "1",
                "--header",
                "Authorization: Bearer tok",
                "--seed",
                "1",
                "--suppress-health-check",
                "all",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
        )
    finally:
        code, output = stop(server)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "Internal Server Error" not in output and "Traceback" not in output, output[-3000:]


def test_two_front_end_workers_share_one_core_that_comes_back_after_being_killed(service_dirs, tmp_path):
    """``--workers 2``: both front-end processes answer (X-LSLO-Replica) with the translations of one process,
    and /metrics from either counts the requests of both;
    a file translated through one is downloaded through either; an upload through one is served by both (the core
    announces it); the core killed with SIGKILL under load:
    the rows in flight get 503, the main process starts a new core, which serves the uploaded adapter; SIGTERM
    then ends everything with status 0."""
    base, bundle = service_dirs
    texts = [f"The cat sleeps, number {i}." for i in range(6)]
    expected = reference(base, bundle, texts, "en", "fr", beam=2, max_new_tokens=10)
    server = serve(
        base, bundle, "--workers", "2", "--admin-token", "tok", "--max-batch-size", "1", env={"TMPDIR": str(tmp_path)}
    )  # one row a step: slow enough to kill the core mid-load
    try:
        replicas, got = set(), {}
        for _ in range(4):
            for text in texts:
                response = _post(server.url, text)
                assert response.status_code == 200, response.text
                replicas.add(response.headers["x-lslo-replica"])
                got[text] = response.json()["translatedText"]
        assert len(replicas) == 2 and [got[t] for t in texts] == expected
        # /metrics, whichever worker answers: the requests of both (24 translations), the queue of both (empty)
        answers = [httpx.get(server.url + "/metrics", timeout=5) for _ in range(12)]
        assert len({a.headers["x-lslo-replica"] for a in answers}) == 2
        for answer in answers:
            assert _sample_sum(answer.text, "lslo_http_requests_total", route="/translate", status="200") == 24
            assert _sample_sum(answer.text, "lslo_queue_rows") == 0
            assert _sample_sum(answer.text, "lslo_loaded_languages") > 0
        posted = httpx.post(
            server.url + "/translate_file",
            data={"source": "en", "target": "fr"},
            timeout=60,
            files={"file": ("note.txt", f"{texts[0]}\n".encode(), "text/plain")},
        )
        assert posted.status_code == 200, posted.text
        link = "/" + posted.json()["translatedFileUrl"].split("/", 3)[3]
        downloads = [httpx.get(server.url + link, timeout=10) for _ in range(16)]
        assert [d.status_code for d in downloads] == [200] * 16  # whichever worker answers
        assert {d.content for d in downloads} == {f"{expected[0]}\n".encode()}
        assert len({d.headers["x-lslo-replica"] for d in downloads}) == 2
        new = variant(bundle, "fr", 2.5)
        put = httpx.put(server.url + "/adapters/fr", content=new, headers={"Authorization": "Bearer tok"}, timeout=30)
        assert put.status_code == 200, put.text
        sha = put.json()["sha256"]

        def served_fr() -> set[str]:
            seen = set()
            for _ in range(12):
                rows = httpx.get(server.url + "/adapters", timeout=5).json()["languages"]
                seen.add(next(r["sha256"] for r in rows if r["code"] == "fr"))
            return seen

        assert served_fr() == {sha}  # both workers
        core_pid = int(next(tmp_path.glob("lslo-core-*/core.pid")).read_text())
        with cf.ThreadPoolExecutor(8) as pool:
            flights = [pool.submit(_post, server.url, _rows(f"Request {i}, row", 64), 60.0) for i in range(8)]
            time.sleep(0.3)
            subprocess.run(["kill", "-9", str(core_pid)], check=True)
            killed = time.monotonic()
            statuses = [f.result().status_code for f in flights]
            assert time.monotonic() - killed < 10
        assert 503 in statuses and set(statuses) <= {200, 503}
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            ready = [httpx.get(server.url + "/ready", timeout=5).status_code for _ in range(4)]
            if ready == [200] * 4:
                break
            time.sleep(0.2)
        assert ready == [200] * 4
        assert served_fr() == {sha}  # the upload replayed into the new core
        assert _post(server.url, texts[0]).status_code == 200
    finally:
        code, output = stop(server)
    assert code == 0, output[-3000:]
