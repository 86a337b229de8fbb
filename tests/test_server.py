"""The translation service: API, batching across pairs, hot swaps, errors, auth and metrics."""

import concurrent.futures as cf
import json
import logging
import re
import subprocess
import sys
import threading
import time

import pytest
import torch
from fastapi.testclient import TestClient
from safetensors.torch import load_file

from conftest import randomize_adapters, tiny_model
from lslo import LSLoConfig, inject
from lslo.io import save_bundle
from server.core.model import ServedModel, load_model
from server.errors import StartupError
from server.settings import ServerSettings
from server_helpers import failing_on_boom, make_app, reference, server_process

TEXTS = [
    "The cat sleeps.",
    "We are going to the market.",
    "Le train part à huit heures.",
    "Das Wetter ist kalt.",
    "Ce champ est obligatoire.",
    "Where is the station?",
]
PAIRS = [("en", "fr"), ("fr", "de"), ("de", "oc"), ("oc", "en"), ("en", "de"), ("fr", "oc")]


@pytest.fixture(scope="module")
def client(service_dirs):
    base, bundle = service_dirs
    with TestClient(make_app(base, bundle, admin_token="s3cret")) as c:
        yield c


def _translate(client, q, source, target, **extra):
    return client.post("/translate", json={"q": q, "source": source, "target": target, **extra})


def test_single_and_list_requests_match_the_library(client, service_dirs):
    base, bundle = service_dirs
    expected = reference(base, bundle, TEXTS[:3], "en", "fr")
    single = _translate(client, TEXTS[0], "en", "fr")
    assert single.status_code == 200 and single.json() == {"translatedText": expected[0]}
    listed = _translate(client, TEXTS[:3], "en", "fr")
    assert listed.json() == {"translatedText": expected}
    form = client.post("/translate", data={"q": TEXTS[0], "source": "en", "target": "fr"})
    assert form.json()["translatedText"] == expected[0]


def test_alternatives_and_shapes(client):
    one = _translate(client, TEXTS[0], "en", "oc", alternatives=1).json()
    assert isinstance(one["translatedText"], str) and len(one["alternatives"]) == 1
    many = _translate(client, TEXTS[:2], "en", "oc", alternatives=1).json()
    assert len(many["translatedText"]) == 2 and [len(a) for a in many["alternatives"]] == [1, 1]
    assert _translate(client, "", "en", "fr").json() == {"translatedText": ""}
    assert _translate(client, "same", "fr", "fr").json() == {"translatedText": "same"}


def test_languages(client):
    langs = client.get("/languages").json()
    assert [entry["code"] for entry in langs] == ["de", "en", "fr", "oc"]
    assert langs[1] == {"code": "en", "name": "English", "targets": ["de", "fr", "oc"], "adapter": True}


def test_concurrent_mixed_pairs_equal_one_at_a_time(client):
    alone = {(t, p): _translate(client, t, *p).json()["translatedText"] for t in TEXTS for p in PAIRS}
    before = client.get("/metrics").text
    with cf.ThreadPoolExecutor(12) as pool:
        futures = {pool.submit(_translate, client, t, *p): (t, p) for t in TEXTS for p in PAIRS}
        together = {futures[f]: f.result().json()["translatedText"] for f in cf.as_completed(futures)}
    assert together == alone
    count = _metric(client.get("/metrics").text, "lslo_batch_rows_count") - _metric(before, "lslo_batch_rows_count")
    rows = _metric(client.get("/metrics").text, "lslo_batch_rows_sum") - _metric(before, "lslo_batch_rows_sum")
    assert rows == len(alone) and count < rows  # several pairs shared generate() calls


def _metric(text, name, labels=""):
    pattern = re.escape(name) + (re.escape(labels) if labels else r"(\{[^}]*\})?") + r" ([0-9.e+-]+)"
    return sum(float(m.group(m.lastindex)) for m in re.finditer(r"^" + pattern + "$", text, re.M))


@pytest.mark.parametrize(
    "body,status,message",
    [
        (b"{not json", 400, "not valid JSON"),
        (b"", 400, "empty request: send JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (json.dumps({"source": "en", "target": "fr"}).encode(), 400, "q: missing"),
        (json.dumps({"q": "x", "source": "xx", "target": "fr"}).encode(), 400, "unsupported source 'xx'"),
        (json.dumps({"q": "x", "source": "auto", "target": "xx"}).encode(), 400, "unsupported target 'xx'"),
        (json.dumps({"q": "x", "source": "en", "target": "fr", "format": "pdf"}).encode(), 400, "format: "),
        (json.dumps({"q": [], "source": "en", "target": "fr"}).encode(), 400, "q is empty"),
        (json.dumps({"q": 5, "source": "en", "target": "fr"}).encode(), 400, "q"),
        (json.dumps({"q": "x", "source": "en", "target": "fr", "alternatives": 9}).encode(), 400, "limit is 3"),
        (json.dumps({"q": "x", "source": "en", "target": "fr", "alternatives": -1}).encode(), 400, "alternatives"),
        (json.dumps({"q": ["a"] * 65, "source": "en", "target": "fr"}).encode(), 400, "limit is 64"),
        (json.dumps({"q": "x" * 2001, "source": "en", "target": "fr"}).encode(), 413, "limit is 2000"),
        (json.dumps({"q": ["x" * 1500] * 14, "source": "en", "target": "fr"}).encode(), 413, "limit is 20000"),
    ],
)
def test_bad_requests_get_an_error_body(client, body, status, message):
    response = client.post("/translate", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert set(response.json()) == {"error"} and message in response.json()["error"]


def test_wrong_method_unknown_route_and_bad_path_are_error_bodies(client):
    response = client.get("/adapters/en")  # method not allowed on this path
    assert response.status_code == 405 and response.json() == {"error": "Method Not Allowed"}
    assert client.get("/nope").json() == {"error": "Not Found"}
    response = client.put("/adapters/bad..name", headers={"Authorization": "Bearer s3cret"})
    assert response.status_code == 400 and "not a language code" in response.json()["error"]


def test_field_validation_names_each_bad_field(client):
    response = _translate(client, 5, "en", "fr", alternatives="many")
    assert response.status_code == 400
    message = response.json()["error"]
    assert message.startswith("invalid request: ") and re.search(r"\bq(\.\w+)?: ", message)
    assert "alternatives: " in message
    assert "integer" in message  # pydantic's own reason, not a generic one


def test_api_keys_and_rate_limit(service_dirs):
    base, bundle = service_dirs
    with TestClient(make_app(base, bundle, api_keys="k1,k2", rate_limit_per_minute=2)) as c:
        assert _translate(c, "x", "en", "fr").status_code == 403
        assert _translate(c, "x", "en", "fr", api_key="nope").json() == {"error": "invalid API key"}
        assert _translate(c, "x", "en", "fr", api_key="k1").status_code == 200
        assert c.post("/translate", data={"q": "x", "source": "en", "target": "fr", "api_key": "k1"}).status_code == 200
        limited = _translate(c, "x", "en", "fr", api_key="k1")
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert _translate(c, "x", "en", "fr", api_key="k2").status_code == 200  # per key
        assert _metric(c.get("/metrics").text, "lslo_rejected_requests_total", '{reason="rate_limit"}') == 1


def test_overload_answers_503_with_retry_after(service_dirs):
    base, bundle = service_dirs
    with TestClient(make_app(base, bundle, max_queue=2, max_batch_size=1, max_wait_ms=0)) as c:
        with cf.ThreadPoolExecutor(16) as pool:
            responses = list(pool.map(lambda i: _translate(c, TEXTS[i % 6], "en", "fr"), range(32)))
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {200, 503} and 503 in statuses and 200 in statuses
        refused = next(r for r in responses if r.status_code == 503)
        assert int(refused.headers["retry-after"]) >= 1 and "capacity" in refused.json()["error"]


def test_unexpected_errors_are_500_logged_with_the_request_id_and_isolated(service_dirs, caplog):
    """A bug in a route: the client gets only a request id; the stack trace is in the server log under that id."""
    base, bundle = service_dirs
    app = make_app(base, bundle, core_target=failing_on_boom, max_wait_ms=200)
    server_log = logging.getLogger("lslo.server")
    server_log.addHandler(caplog.handler)  # independent of the logger's propagation settings
    try:
        with TestClient(app) as c:
            with cf.ThreadPoolExecutor(4) as pool:
                bad = pool.submit(_translate, c, "boom", "en", "fr")
                good = [pool.submit(_translate, c, t, "en", "fr") for t in TEXTS[:3]]
                assert bad.result().status_code == 500
                body = bad.result().json()
                assert set(body) == {"error", "request_id"} and body["error"] == "internal error"
                assert body["request_id"] == bad.result().headers["x-request-id"]
                assert all(g.result().status_code == 200 for g in good)
            assert _metric(c.get("/metrics").text, "lslo_batch_splits_total") >= 1
            # A client's own request id is the one logged and returned.
            mine = c.post(
                "/translate",
                json={"q": "boom", "source": "en", "target": "fr"},
                headers={"X-Request-ID": "trace-me-42"},
            )
            assert mine.json() == {"error": "internal error", "request_id": "trace-me-42"}
    finally:
        server_log.removeHandler(caplog.handler)
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR and getattr(r, "request_id", None)]
    ids = {r.request_id for r in logged}
    assert {body["request_id"], "trace-me-42"} <= ids
    for record in logged:
        assert record.request_id in record.getMessage()  # findable in the text log format too
        assert record.exc_info is not None and "secret internal detail" in str(record.exc_info[1])
        assert "Traceback" in logging.Formatter().formatException(record.exc_info)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_their_assets_from_the_service_not_a_cdn(client, page):
    html = client.get(page)
    assert html.status_code == 200
    # Nothing to fetch from outside (an offline deployment); links to documentation sites would be harmless,
    # but scripts, styles and icons must all be local.
    assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", html.text)
    assert assets and all(a.startswith("/") for a in assets), assets
    assert any(a.endswith(".js") for a in assets)
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200 and len(response.content) > 1000, asset
    assert client.get("/openapi.json").json()["info"]["title"] == "LSLo translation service"


def test_admin_endpoints_refuse_missing_and_wrong_tokens(client, service_dirs):
    _, bundle = service_dirs
    data = (bundle / "fr.safetensors").read_bytes()
    cases = (({}, 401), ({"Authorization": "Bearer wrong"}, 403), ({"Authorization": "Basic s3cret"}, 401))
    for headers, status in cases:
        for method in ("put", "delete"):
            body = {"content": data} if method == "put" else {}
            response = getattr(client, method)("/adapters/fr", headers=headers, **body)
            assert response.status_code == status and "error" in response.json()
    assert "fr" in [e["code"] for e in client.get("/languages").json()]


def test_admin_disabled_without_token(service_dirs):
    base, bundle = service_dirs
    with TestClient(make_app(base, bundle)) as c:
        response = c.delete("/adapters/fr", headers={"Authorization": "Bearer anything"})
        assert response.status_code == 403 and "disabled" in response.json()["error"]


def _new_fr_bundle(tokenizer, tmp_path, seed):
    from training.tokenizer import model_vocab_size

    model = tiny_model(seed=21, vocab_size=model_vocab_size(tokenizer))
    lslo = inject(model, LSLoConfig.from_strings("en,fr,de,oc", "2;2;8", tiers="H:en,fr;M:de;V:oc"))
    randomize_adapters(lslo, seed=seed, std=0.3)
    save_bundle(lslo, tmp_path)
    return tmp_path


def test_swap_under_load_has_no_failures_and_takes_effect(service_dirs, tokenizer, tmp_path):
    base, bundle = service_dirs
    new = _new_fr_bundle(tokenizer, tmp_path / "new", seed=99)
    # Expected results: the original bundle, and the original with fr replaced.
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for f in bundle.iterdir():
        (mixed / f.name).write_bytes(f.read_bytes())
    (mixed / "fr.safetensors").write_bytes((new / "fr.safetensors").read_bytes())
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["languages"]["fr"]["sha256"] = json.loads((new / "manifest.json").read_text())["languages"]["fr"]["sha256"]
    (mixed / "manifest.json").write_text(json.dumps(manifest))
    before = reference(base, bundle, TEXTS[:2], "en", "fr")
    after = reference(base, mixed, TEXTS[:2], "en", "fr")
    assert before != after

    app = make_app(base, bundle, admin_token="tok")
    with TestClient(app) as c:
        assert _translate(c, TEXTS[:2], "en", "fr").json()["translatedText"] == before
        stop, statuses = threading.Event(), []

        def load():
            while not stop.is_set():
                statuses.append(_translate(c, TEXTS[len(statuses) % 6], *PAIRS[len(statuses) % 6]).status_code)

        workers = [threading.Thread(target=load) for _ in range(4)]
        for w in workers:
            w.start()
        time.sleep(0.3)
        auth = {"Authorization": "Bearer tok"}
        bad = c.put("/adapters/fr", content=(new / "fr.safetensors").read_bytes()[:500], headers=auth)
        assert bad.status_code == 400 and "refused" in bad.json()["error"]
        assert _translate(c, TEXTS[:2], "en", "fr").json()["translatedText"] == before  # old one still serving
        swapped = c.put("/adapters/fr", content=(new / "fr.safetensors").read_bytes(), headers=auth)
        assert swapped.status_code == 200 and swapped.json()["action"] == "replaced"
        time.sleep(0.3)
        stop.set()
        for w in workers:
            w.join()
        assert len(statuses) > 10 and set(statuses) == {200}
        assert _translate(c, TEXTS[:2], "en", "fr").json()["translatedText"] == after
        table = {e["code"]: e for e in c.get("/adapters").json()["languages"]}
        assert table["fr"]["source"] == "upload" and table["fr"]["sha256"] == manifest["languages"]["fr"]["sha256"]
        # multipart upload, and reloading the bundle's own file (no body) restores the original
        files = {"file": ("fr.safetensors", (new / "fr.safetensors").read_bytes(), "application/octet-stream")}
        assert c.put("/adapters/fr", files=files, headers=auth).status_code == 200
        assert c.put("/adapters/fr", headers=auth).json()["action"] == "replaced"
        assert _translate(c, TEXTS[:2], "en", "fr").json()["translatedText"] == before
        # unload and load again
        with_adapter = _translate(c, TEXTS[0], "en", "oc").json()["translatedText"]
        assert c.delete("/adapters/oc", headers=auth).json() == {"language": "oc", "action": "removed"}
        # Still offered (the base knows it), now through the base alone on its side.
        assert {e["code"]: e["adapter"] for e in c.get("/languages").json()}["oc"] is False
        assert _translate(c, TEXTS[0], "en", "oc").json()["translatedText"] != with_adapter
        assert c.put("/adapters/oc", headers=auth).json()["action"] == "added"
        text = c.get("/metrics").text
        assert _metric(text, "lslo_adapter_swaps_total", '{action="replaced",result="ok"}') == 3
        assert _metric(text, "lslo_adapter_swaps_total", '{action="load",result="refused"}') == 1
        assert _metric(text, "lslo_adapter_swaps_total", '{action="removed",result="ok"}') == 1


def test_metrics_count_requests(service_dirs):
    base, bundle = service_dirs
    with TestClient(make_app(base, bundle)) as c:
        for _ in range(3):
            _translate(c, "The cat", "en", "de")
        _translate(c, "x", "en", "zz")
        text = c.get("/metrics").text
        assert _metric(text, "lslo_http_requests_total", '{route="/translate",status="200"}') == 3
        assert _metric(text, "lslo_http_requests_total", '{route="/translate",status="400"}') == 1
        assert _metric(text, "lslo_translated_items_total", '{source="en",target="de"}') == 3
        assert _metric(text, "lslo_http_request_seconds_count", '{route="/translate"}') == 4
        assert _metric(text, "lslo_loaded_languages") == 4
        assert c.get("/health").json() == {"status": "ok"} and c.get("/ready").json()["status"] == "ready"


@pytest.mark.slow
def test_real_uvicorn_process_with_libretranslate_client(service_dirs):
    from libretranslatepy import LibreTranslateAPI

    base, bundle = service_dirs
    with server_process(["--base", str(base), "--bundle", str(bundle), "--beam", "2", "--max-new-tokens", "10"]) as url:
        client = LibreTranslateAPI(url)
        expected = reference(base, bundle, ["The cat sleeps."], "en", "fr")[0]
        assert client.translate("The cat sleeps.", "en", "fr") == expected
        assert {lang["code"] for lang in client.languages()} == {"en", "fr", "de", "oc"}
        with cf.ThreadPoolExecutor(6) as pool:  # concurrent clients, mixed pairs
            got = list(pool.map(lambda p: client.translate(TEXTS[0], *p), PAIRS))
        assert got == [reference(base, bundle, [TEXTS[0]], *p)[0] for p in PAIRS]
        detected = client.detect("Bonjour tout le monde, comment allez-vous aujourd'hui ?")
        assert detected[0]["language"] == "fr" and 50 < detected[0]["confidence"] <= 100
        assert (
            client.translate("Bonjour tout le monde, comment allez-vous ?", "auto", "en")
            == reference(base, bundle, ["Bonjour tout le monde, comment allez-vous ?"], "fr", "en")[0]
        )
        # deep-translator sends its fields in the query string (and always an API key; ignored when open)
        from deep_translator import LibreTranslator

        deep = LibreTranslator(source="en", target="fr", custom_url=url, api_key="unused")
        assert deep.translate("The cat sleeps.") == expected
        assert deep.translate_batch(["The cat sleeps.", TEXTS[1]]) == reference(
            base, bundle, ["The cat sleeps.", TEXTS[1]], "en", "fr"
        )


def test_startup_refuses_a_missing_base_or_mismatched_bundle(service_dirs, tmp_path):
    base, bundle = service_dirs
    out = subprocess.run(
        [sys.executable, "-m", "server", "--base", str(tmp_path / "none"), "--bundle", str(bundle)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "base model not found" in out.stderr and "none" in out.stderr
    other = tmp_path / "other"
    tiny_model(seed=5, vocab_size=200).save_pretrained(other)
    (other / "sentencepiece.bpe.model").write_bytes((base / "sentencepiece.bpe.model").read_bytes())
    for name in ("vocab.json", "tokenizer_config.json"):
        (other / name).write_bytes((base / name).read_bytes())
    out = subprocess.run(
        [sys.executable, "-m", "server", "--base", str(other), "--bundle", str(bundle)], capture_output=True, text=True
    )
    assert out.returncode == 2 and "another base model" in out.stderr and str(bundle) in out.stderr


def test_the_core_model_is_built_on_a_thread_that_has_ended(service_dirs, tmp_path, monkeypatch):
    """The loading thread's OpenMP team must not outlive it beside the decoding thread's (server.core.model)."""
    base, bundle = service_dirs
    builders = []
    build = ServedModel.__init__

    def recorded(self, settings):
        builders.append(threading.current_thread())
        build(self, settings)

    monkeypatch.setattr(ServedModel, "__init__", recorded)
    engine = load_model(ServerSettings(base=base, bundle=bundle))
    assert isinstance(engine, ServedModel) and "fr" in engine.adapters
    assert builders[0] is not threading.current_thread() and not builders[0].is_alive()
    with pytest.raises(StartupError, match="base model not found"):  # errors reach the caller as before
        load_model(ServerSettings(base=tmp_path / "none", bundle=bundle))


def test_adapter_counts_are_the_files_own(service_dirs, tokenizer, tmp_path):
    """The adapter table's non-zero counts (taken in the engine core where adapters change; the front end does
    no tensor work) match the files' own tensors, after an upload too."""
    base, bundle = service_dirs
    new = _new_fr_bundle(tokenizer, tmp_path / "new", seed=7)
    with TestClient(make_app(base, bundle, admin_token="tok")) as c:
        auth = {"Authorization": "Bearer tok"}
        assert c.put("/adapters/fr", content=(new / "fr.safetensors").read_bytes(), headers=auth).status_code == 200
        table = {e["code"]: e for e in c.get("/adapters").json()["languages"]}
    for code, folder in (("fr", new), ("de", bundle)):
        tensors = load_file(folder / f"{code}.safetensors")
        assert table[code]["nonzero"] == sum(int(torch.count_nonzero(t)) for t in tensors.values())
