"""Reliability: odd input never breaks a batch, device faults split batches, broken or racing adapter files
are refused while traffic continues, access rules hold, and nothing leaks internals."""

import concurrent.futures as cf
import json
import pathlib
import re
import threading
import time

import pytest
import torch
from fastapi.testclient import TestClient

from server_helpers import crashing_once, make_app, two_requests_fit

ODD = [
    "",
    "   ",
    "\n\t ",
    "a\x00b\x07c",
    "😀🎉 emoji only",
    "שלום עולם",
    "مرحبا بالعالم and English mixed",
    "日本語とEnglishの混在",
    "x" * 1999,
    "Ζ\u0301alg\u0338o \u202etext\u202c",
    "\ud800 lone surrogate",
]
NORMAL = ["The cat sleeps.", "We are going to the market.", "Where is the station?"]


@pytest.fixture(scope="module")
def app_client(service_dirs):
    base, bundle = service_dirs
    app = make_app(base, bundle, admin_token="tok", max_wait_ms=50)
    with TestClient(app) as client:
        yield app, client


def _t(client, q, source="en", target="fr"):
    # ASCII-escaped JSON, as clients send it: "\ud800" escapes carry lone surrogates
    body = json.dumps({"q": q, "source": source, "target": target}, ensure_ascii=True)
    return client.post("/translate", content=body, headers={"content-type": "application/json"})


def test_odd_inputs_are_translated_cleanly_and_do_not_disturb_others(app_client):
    _, c = app_client
    alone = [_t(c, t).json()["translatedText"] for t in NORMAL]
    with cf.ThreadPoolExecutor(16) as pool:
        odd = [pool.submit(_t, c, q) for q in ODD]
        normal = [pool.submit(_t, c, q) for q in NORMAL]
        as_list = pool.submit(_t, c, ODD + NORMAL)
    for response in odd:
        assert response.result().status_code == 200
        assert isinstance(response.result().json()["translatedText"], str)
    assert [r.result().json()["translatedText"] for r in normal] == alone
    listed = as_list.result().json()["translatedText"]
    assert listed[len(ODD) :] == alone and listed[:3] == ODD[:3]  # blank texts come back as they were


def test_invalid_utf8_bodies_are_400(app_client):
    _, c = app_client
    bad = b'{"q": "\xff\xfe broken", "source": "en", "target": "fr"}'
    response = c.post("/translate", content=bad, headers={"content-type": "application/json"})
    assert response.status_code == 400 and set(response.json()) == {"error"}
    form = c.post(
        "/translate",
        content=b"q=%FF%FE&source=en&target=fr",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    # Form fields are percent-decoded with U+FFFD for invalid bytes (as browsers do), then translated.
    assert form.status_code == 200 and isinstance(form.json()["translatedText"], str)


def test_cuda_out_of_memory_splits_the_batch_and_loses_nothing(service_dirs):
    base, bundle = service_dirs
    with TestClient(make_app(base, bundle, max_wait_ms=200, max_batch_size=16)) as c:
        expected = {q: _t(c, q).json()["translatedText"] for q in NORMAL}
    # The same service on a device that cannot hold more than two requests at a time.
    with TestClient(make_app(base, bundle, core_target=two_requests_fit, max_wait_ms=200, max_batch_size=16)) as c:
        with cf.ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(lambda q: _t(c, q), NORMAL * 4))
        assert [r.status_code for r in responses] == [200] * 12
        assert [r.json()["translatedText"] for r in responses] == [expected[q] for q in NORMAL * 4]
        text = c.get("/metrics").text  # a large batch failed and was split
        assert re.search(r'^lslo_batch_splits_total\{reason="OutOfMemoryError"\} [1-9]', text, re.M)


def test_bundle_file_rewritten_during_reload_is_refused_or_whole(service_dirs, tmp_path, monkeypatch):
    import server.http.routes.adapters as routes

    base, bundle = service_dirs
    copy = tmp_path / "bundle"
    copy.mkdir()
    for f in bundle.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    good = (copy / "fr.safetensors").read_bytes()
    app = make_app(base, copy, admin_token="tok")
    stop = threading.Event()
    reads = []  # per reload: whether the server read the whole file (else a prefix of it, mid-rewrite)
    parse = routes.parse_language_file

    def recording_parse(data, label):
        reads.append(data == good)
        return parse(data, label)

    monkeypatch.setattr(routes, "parse_language_file", recording_parse)

    def rewrite():  # rewrites the file in place, a few bytes at a time, over and over
        while not stop.is_set():
            with open(copy / "fr.safetensors", "wb") as f:
                for i in range(0, len(good), 4096):
                    f.write(good[i : i + 4096])
                    f.flush()
                    time.sleep(0.0005)

    with TestClient(app) as c:
        writer = threading.Thread(target=rewrite)
        writer.start()
        try:
            outcomes = []
            traffic = []
            for _ in range(25):
                response = c.put("/adapters/fr", headers={"Authorization": "Bearer tok"})
                outcomes.append(response.status_code)
                if response.status_code != 200:
                    assert "adapter refused" in response.json()["error"]
                    assert str(copy) not in response.json()["error"]  # no server paths in answers
                traffic.append(_t(c, NORMAL[0]).status_code)
        finally:
            stop.set()
            writer.join()
        assert set(outcomes) <= {200, 400} and set(traffic) == {200}
        assert not all(reads), "the rewrite never overlapped a reload: the race was not exercised"
        assert outcomes == [200 if whole else 400 for whole in reads]  # a partial file is always refused
        (copy / "fr.safetensors").write_bytes(good)
        assert c.put("/adapters/fr", headers={"Authorization": "Bearer tok"}).status_code == 200


@pytest.mark.parametrize("name", ["fr.safetensors", "FR", "e", "abcd", "fr..", "en_latn", "%2E%2E"])
def test_language_names_are_validated(app_client, name):
    _, c = app_client
    response = c.put(f"/adapters/{name}", headers={"Authorization": "Bearer tok"})
    assert response.status_code == 400 and "is not a language code" in response.json()["error"]


@pytest.mark.parametrize(
    "name",
    [
        "..",
        "..%2F..%2Fetc%2Fpasswd",
        "%2E%2E%2Fmanifest",
        "..%2Fvictim%2Ffr",
        "%2Fetc%2Fpasswd",
        "%2e%2e%5cvictim%5cfr",
        "fr%00",
    ],
)
def test_traversal_paths_never_reach_a_file(app_client, service_dirs, name, monkeypatch):
    """A PUT without a body loads ``<bundle>/<lang>.safetensors``: no name may make it read another file. Every
    file read during the request is recorded; a valid adapter outside the bundle is the bait."""
    app, c = app_client
    _, bundle = service_dirs
    bait = bundle.parent / "victim" / "fr.safetensors"
    bait.parent.mkdir(exist_ok=True)
    bait.write_bytes((bundle / "fr.safetensors").read_bytes())
    reads = []
    real_read_bytes, real_open = pathlib.Path.read_bytes, pathlib.Path.open
    monkeypatch.setattr(pathlib.Path, "read_bytes", lambda self: reads.append(self) or real_read_bytes(self))
    monkeypatch.setattr(pathlib.Path, "open", lambda self, *a, **k: reads.append(self) or real_open(self, *a, **k))
    before = c.get("/adapters").json()["languages"]
    response = c.put(f"/adapters/{name}", headers={"Authorization": "Bearer tok"})
    assert response.status_code in (400, 404, 405) and set(response.json()) == {"error"}
    outside = [p for p in reads if not p.resolve().is_relative_to(bundle.resolve())]
    assert outside == [] and not any(p.name.endswith(".safetensors") for p in reads)
    assert c.get("/adapters").json()["languages"] == before  # nothing loaded or replaced
    assert c.put("/adapters/fr", headers={"Authorization": "Bearer tok"}).status_code == 200
    # The recording does see a real read: the bundle's own file (and its manifest), nothing else.
    assert {p.name for p in reads} == {"manifest.json", "fr.safetensors"}
    assert all(p.resolve().is_relative_to(bundle.resolve()) for p in reads)


def test_upload_size_limit(service_dirs):
    base, bundle = service_dirs
    with TestClient(make_app(base, bundle, admin_token="tok", max_upload_bytes=1000)) as c:
        data = (bundle / "fr.safetensors").read_bytes()
        response = c.put("/adapters/fr", content=data, headers={"Authorization": "Bearer tok"})
        assert response.status_code == 413 and "1000" in response.json()["error"]


def test_cors_off_by_default_and_on_when_configured(service_dirs, app_client):
    _, c = app_client
    preflight = {"Origin": "https://example.org", "Access-Control-Request-Method": "POST"}
    assert "access-control-allow-origin" not in c.options("/translate", headers=preflight).headers
    base, bundle = service_dirs
    with TestClient(make_app(base, bundle, cors_origins="https://example.org")) as on:
        response = on.options("/translate", headers=preflight)
        assert response.headers["access-control-allow-origin"] == "https://example.org"


def test_errors_never_leak_traces_or_paths(app_client, service_dirs):
    app, c = app_client
    base, bundle = service_dirs
    responses = [
        c.post("/translate", content=b"\x00\x01", headers={"content-type": "application/json"}),
        c.put("/adapters/fr", content=b"garbage", headers={"Authorization": "Bearer tok"}),
        c.put("/adapters/xh", headers={"Authorization": "Bearer tok"}),
        c.get("/does-not-exist"),
    ]
    for response in responses:
        body = response.text
        assert response.status_code < 500 and "Traceback" not in body
        assert str(base) not in body and str(bundle) not in body and "/site-packages/" not in body


def _bad_uploads(good: bytes) -> dict[str, tuple[bytes, str]]:
    """Broken variants of a valid adapter file, each with the reason the server must give."""
    from safetensors.torch import save as st_save

    from lslo.io.adapter_file import parse_language_file

    adapter = parse_language_file(good)
    meta = {
        "format": "lslo-adapter",
        "format_version": "1",
        "language": adapter.language,
        "rank": str(adapter.rank),
        "dtype": "float32",
        "base_fingerprint": json.dumps(adapter.fingerprint),
        "config": json.dumps(adapter.config),
    }
    t = adapter.tensors
    key = next(k for k in t if k.endswith("lora_B"))
    other_fp = json.loads(json.dumps(adapter.fingerprint))
    first = next(iter(other_fp["stats"]))
    other_fp["stats"][first] = [v * 1.5 for v in other_fp["stats"][first]]

    def raw(tensors, **changes):
        return st_save({k: v.contiguous() for k, v in tensors.items()}, metadata={**meta, **changes})

    return {
        "truncated": (good[: len(good) // 2], "not a readable safetensors file"),
        "empty": (b"", None),  # an empty body means "reload from the bundle"
        "not safetensors": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "not a readable safetensors file"),
        "wrong shape": (raw({**t, key: torch.zeros(t[key].shape[0] + 2, t[key].shape[1])}), "shape"),
        "wrong dtype": (raw({k: v.to(torch.int16) for k, v in t.items()}), "dtype"),
        "NaN": (raw({**t, key: torch.full_like(t[key], float("nan"))}), "NaN or Inf"),
        "Inf": (raw({**t, key: torch.full_like(t[key], float("inf"))}), "NaN or Inf"),
        "other base model": (raw(t, base_fingerprint=json.dumps(other_fp)), "another base model"),
        "future format": (raw(t, format_version="3"), "newer format version 3"),
        "odd format version": (raw(t, format_version="\u00b2"), "format_version '\u00b2' is not valid"),
        "future fingerprint": (
            raw(t, base_fingerprint=json.dumps({**adapter.fingerprint, "version": 3})),
            "fingerprint version 3 is newer",
        ),
        "fingerprint version text": (
            raw(t, base_fingerprint=json.dumps({**adapter.fingerprint, "version": "x"})),
            "malformed base-model fingerprint",
        ),
        "fingerprint without sample rows": (
            raw(t, base_fingerprint=json.dumps({k: v for k, v in adapter.fingerprint.items() if k != "sample_rows"})),
            "malformed base-model fingerprint",
        ),
        "fingerprint not an object": (raw(t, base_fingerprint="[1, 2]"), "malformed base-model fingerprint"),
    }


def test_each_bad_upload_is_refused_while_traffic_flows(service_dirs):
    base, bundle = service_dirs
    app = make_app(base, bundle, admin_token="tok", max_wait_ms=20)
    good = (bundle / "fr.safetensors").read_bytes()
    with TestClient(app) as c:
        before = _t(c, NORMAL[0]).json()["translatedText"]
        stop, statuses = threading.Event(), []

        def traffic():
            while not stop.is_set():
                statuses.append(_t(c, NORMAL[len(statuses) % 3], "de", "fr").status_code)

        worker = threading.Thread(target=traffic)
        worker.start()
        try:
            for name, (data, reason) in _bad_uploads(good).items():
                response = c.put("/adapters/fr", content=data, headers={"Authorization": "Bearer tok"})
                if reason is None:
                    assert response.status_code == 200, name
                    continue
                assert response.status_code == 400, name
                assert reason in response.json()["error"], (name, response.json())
                assert _t(c, NORMAL[0]).json()["translatedText"] == before, name  # the old adapter serves
        finally:
            stop.set()
            worker.join()
        assert statuses and set(statuses) == {200}
        refused = 'lslo_adapter_swaps_total{action="load",result="refused"}'
        expected = sum(reason is not None for _, reason in _bad_uploads(good).values())
        assert expected == 13 and f"{refused} {expected}.0" in c.get("/metrics").text


def test_a_bug_that_ends_the_core_answers_503_and_the_restarted_core_serves(service_dirs):
    """A bug in the core's own loop (here: its step raises outside the engine) ends the core process: the
    request it held is answered 503 with Retry-After at once, /ready is false until a new core has loaded,
    and the new core translates as the first did."""
    base, bundle = service_dirs
    with TestClient(make_app(base, bundle, max_wait_ms=50)) as c:
        expected = _t(c, NORMAL[0]).json()["translatedText"]
    with TestClient(make_app(base, bundle, core_target=crashing_once, max_wait_ms=50)) as c:
        failed = _t(c, NORMAL[0])
        assert failed.status_code == 503 and int(failed.headers["retry-after"]) >= 1
        assert "engine core stopped" in failed.json()["error"]
        deadline = time.monotonic() + 60
        while c.get("/ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert c.get("/ready").status_code == 200
        assert _t(c, NORMAL[0]).json()["translatedText"] == expected
