"""A service that follows its bundle (``--bundle-poll-s``): changes written by other replicas are served,
damaged files are refused while the previous adapter keeps serving, and ``persist=true`` writes the bundle."""

from __future__ import annotations

import hashlib
import json
import shutil
import time

import pytest
from fastapi.testclient import TestClient
from test_bundle_store import bundle_file, variant

from lslo.io import read_manifest
from lslo.io.adapter_file import encode_language_file, parse_language_file
from lslo.io.bundle_store import is_empty_bundle, persist_language, unpersist_language
from server_helpers import failing_installs, make_app, reference

TEXTS = ["The cat sleeps.", "Where is the station?"]
AUTH = {"Authorization": "Bearer tok"}


def wait_for(condition, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail("condition not met in time")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def served(client) -> dict[str, str]:
    return {row["code"]: row["sha256"] for row in client.get("/adapters").json()["languages"]}


def refused(client) -> dict[str, str]:
    return {row["code"]: row["reason"] for row in client.get("/adapters").json()["sync"]["refused"]}


def translate(client, source="en", target="fr") -> list[str]:
    response = client.post("/translate", json={"q": TEXTS, "source": source, "target": target})
    assert response.status_code == 200, response.text
    return response.json()["translatedText"]


@pytest.fixture
def bundle(service_dirs, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(service_dirs[1], copy)
    return copy


def test_a_replica_serves_what_its_bundle_holds(service_dirs, bundle, tmp_path):
    base, original = service_dirs
    first = reference(base, original, TEXTS, "en", "fr")
    new = variant(bundle, "fr", 3.0)
    with TestClient(make_app(base, bundle, admin_token="tok", bundle_poll_s=0.2)) as c:
        old_sha = served(c)["fr"]
        assert c.put("/adapters/fr", content=new, headers=AUTH).status_code == 409  # memory only: refused
        assert c.put("/adapters/fr", headers=AUTH).status_code == 409  # a reload: the poller's job
        assert translate(c) == first

        # Written into the bundle by other means and left half-way, then damaged: refused, the old one serves.
        (bundle_file(bundle, "fr")).write_bytes(new[: len(new) // 2])
        assert "sha256" in wait_for(lambda: refused(c).get("fr"))
        assert served(c)["fr"] == old_sha and translate(c) == first
        assert c.get("/adapters").json()["sync"]["in_sync"] is False
        damaged = bytearray(new)
        damaged[-3] ^= 0xFF
        (bundle_file(bundle, "fr")).write_bytes(bytes(damaged))
        time.sleep(0.6)
        assert "fr" in refused(c) and served(c)["fr"] == old_sha and translate(c) == first

        # Another replica persists a good file: picked up.
        persist_language(bundle, "fr", new, parse_language_file(new))
        wait_for(lambda: served(c)["fr"] == sha(new))
        state = c.get("/adapters").json()
        assert state["sync"]["in_sync"] and state["sync"]["refused"] == []
        assert state["sync"]["revision"] == read_manifest(bundle).revision
        assert translate(c) == reference(base, bundle, TEXTS, "en", "fr") != first
        metrics = c.get("/metrics").text
        assert f'lslo_adapter_sha256{{bundle="{sha(new)}",language="fr",served="{sha(new)}"}} 1.0' in metrics
        assert "lslo_bundle_in_sync 1.0" in metrics

        # persist=true from this replica: written byte for byte, served at once.
        newer = variant(bundle, "fr", 0.5)
        response = c.put("/adapters/fr?persist=true", content=newer, headers=AUTH)
        assert response.status_code == 200 and response.json()["persisted"] is True
        assert bundle_file(bundle, "fr").read_bytes() == newer and served(c)["fr"] == sha(newer)
        response = c.delete("/adapters/de?persist=true", headers=AUTH)
        assert response.status_code == 200 and response.json()["persisted"] is True
        assert "de" not in read_manifest(bundle).languages and "de" not in served(c)
        assert c.delete("/adapters/de?persist=true", headers=AUTH).status_code == 404

        # Removed and added by other writers.
        unpersist_language(bundle, "oc")
        wait_for(lambda: "oc" not in served(c))
        de = (original / "de.safetensors").read_bytes()
        persist_language(bundle, "de", de, parse_language_file(de))
        wait_for(lambda: served(c).get("de") == sha(de))

        # An unreadable manifest changes nothing.
        manifest = (bundle / "manifest.json").read_text()
        (bundle / "manifest.json").write_text("{not json")
        wait_for(lambda: c.get("/adapters").json()["sync"]["error"])
        assert set(served(c)) == {"en", "fr", "de"}
        (bundle / "manifest.json").write_text(manifest)
        wait_for(lambda: c.get("/adapters").json()["sync"]["error"] is None)


def test_a_base_only_replica_on_an_empty_bundle_takes_the_first_adapter(service_dirs, tmp_path):
    base, original = service_dirs
    empty = tmp_path / "empty"
    empty.mkdir()
    with TestClient(make_app(base, empty, admin_token="tok", bundle_poll_s=0.2)) as c:
        assert served(c) == {}
        wait_for(lambda: c.get("/adapters").json()["sync"]["in_sync"])  # an empty bundle, nothing served
        alone = translate(c)
        fr = (original / "fr.safetensors").read_bytes()
        adapter = parse_language_file(fr)  # a file whose metadata passes, with a tensor missing: refused, untouched
        tensors = dict(list(adapter.tensors.items())[1:])
        broken = encode_language_file("fr", tensors, adapter.fingerprint, adapter.config)
        response = c.put("/adapters/fr?persist=true", content=broken, headers=AUTH)
        assert response.status_code == 400 and "adapter refused" in response.json()["error"]
        assert is_empty_bundle(empty) and served(c) == {}
        response = c.put("/adapters/fr?persist=true", content=fr, headers=AUTH)
        assert response.status_code == 200, response.text
        assert json.loads((empty / "manifest.json").read_text())["languages"]["fr"]["sha256"] == sha(fr)
        assert served(c) == {"fr": sha(fr)}
        wait_for(lambda: c.get("/adapters").json()["sync"]["in_sync"])
        assert translate(c) == reference(base, empty, TEXTS, "en", "fr") != alone


def test_persist_needs_a_bundle_and_polling_needs_one_too(service_dirs):
    from server.core.model import ServedModel
    from server.errors import StartupError
    from server.settings import ServerSettings

    base, bundle = service_dirs
    with TestClient(make_app(base, "none", admin_token="tok")) as c:
        fr = (bundle / "fr.safetensors").read_bytes()
        response = c.put("/adapters/fr?persist=true", content=fr, headers=AUTH)
        assert response.status_code == 409 and "bundle directory" in response.json()["error"]
        assert c.put("/adapters/fr", content=fr, headers=AUTH).status_code == 200  # in memory, as before
    with pytest.raises(StartupError, match="bundle-poll-s"):
        ServedModel(ServerSettings(base=base, bundle="none", bundle_poll_s=1))


def test_a_persisted_upload_that_fails_to_install_leaves_the_bundle_as_it_was(service_dirs, bundle, monkeypatch):
    base, _ = service_dirs
    before = {p.name: p.read_bytes() for p in bundle.iterdir()}
    new = variant(bundle, "fr", 2.5)
    with TestClient(make_app(base, bundle, core_target=failing_installs, admin_token="tok")) as c:
        response = c.put("/adapters/fr?persist=true", content=new, headers=AUTH)
        assert response.status_code == 500
        manifest = read_manifest(bundle)
        assert bundle_file(bundle, "fr").read_bytes() == before["fr.safetensors"]
        assert manifest.languages["fr"]["sha256"] == sha(before["fr.safetensors"])
        (bundle / "manifest.json").write_text("{broken")  # a bundle that cannot be changed: 409 with the reason
        response = c.put("/adapters/fr?persist=true", content=new, headers=AUTH)
        assert response.status_code == 409 and "manifest cannot be read" in response.json()["error"]
        assert c.delete("/adapters/fr?persist=true", headers=AUTH).status_code == 409
