"""Writing into a shared bundle (``lslo.io.bundle_store``): files byte for byte, the manifest's revision, the lock
under concurrent writers, and manifests that name files outside their directory."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from pathlib import Path

import pytest

from lslo.errors import AdapterFileError
from lslo.io import read_manifest
from lslo.io.adapter_file import encode_language_file, parse_language_file
from lslo.io.bundle_store import LOCK_FILE, bundle_lock, is_empty_bundle, persist_language, unpersist_language


def bundle_file(bundle: Path, code: str) -> Path:
    """The file the bundle's manifest names for ``code``."""
    return bundle / read_manifest(bundle).languages[code]["file"]


def variant(bundle: Path, code: str, scale: float, config: dict | None = None) -> bytes:
    """The bundle's adapter of ``code`` with B scaled (same shapes, other weights), optionally another config."""
    adapter = parse_language_file(bundle_file(bundle, code).read_bytes())
    tensors = {k: (v * scale if k.endswith("lora_B") else v) for k, v in adapter.tensors.items()}
    return encode_language_file(code, tensors, adapter.fingerprint, config or adapter.config)


@pytest.fixture
def bundle(service_dirs, tmp_path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(service_dirs[1], copy)
    return copy


def test_persist_writes_the_file_byte_for_byte_and_counts_revisions(bundle):
    data = variant(bundle, "fr", 2.0)
    before = read_manifest(bundle)
    manifest = persist_language(bundle, "fr", data, parse_language_file(data))
    written = bundle_file(bundle, "fr")
    assert written.name == f"fr.{hashlib.sha256(data).hexdigest()[:16]}.safetensors" and written.read_bytes() == data
    assert not (bundle / "fr.safetensors").exists()  # the file it replaced is gone
    entry = json.loads((bundle / "manifest.json").read_text())["languages"]["fr"]
    assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert entry["tier"] == before.languages["fr"]["tier"] and entry["rank"] == before.languages["fr"]["rank"]
    assert manifest.revision == read_manifest(bundle).revision == before.revision + 1
    assert read_manifest(bundle).languages["de"] == before.languages["de"]  # others untouched

    assert unpersist_language(bundle, "fr")
    assert "fr" not in read_manifest(bundle).languages and not written.exists()
    assert read_manifest(bundle).revision == before.revision + 2
    assert not unpersist_language(bundle, "fr")


def test_an_empty_directory_becomes_a_bundle(bundle, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert is_empty_bundle(empty) and not is_empty_bundle(bundle)
    data = bundle_file(bundle, "oc").read_bytes()
    (empty / "lost+found").mkdir()  # a fresh file system's
    persist_language(empty, "oc", data, parse_language_file(data), tier="V")
    manifest = read_manifest(empty)
    assert list(manifest.languages) == ["oc"] and manifest.languages["oc"]["tier"] == "V"
    assert manifest.layer_map == read_manifest(bundle).layer_map
    assert {p.name for p in empty.iterdir()} == {
        bundle_file(empty, "oc").name,
        "manifest.json",
        LOCK_FILE,
        "lost+found",
    }


def test_a_file_made_for_other_adapters_is_refused_and_changes_nothing(bundle):
    config = parse_language_file(bundle_file(bundle, "fr").read_bytes()).config
    data = variant(bundle, "fr", 1.5, {**config, "fc_mode": "half"})
    files = {p.name: p.read_bytes() for p in bundle.iterdir()}
    with pytest.raises(AdapterFileError, match="fc_mode"):
        persist_language(bundle, "fr", data, parse_language_file(data))
    assert {p.name: p.read_bytes() for p in bundle.iterdir() if p.name != LOCK_FILE} == files


def test_concurrent_writers_leave_one_whole_file_that_the_manifest_names(bundle):
    payloads = [variant(bundle, "de", 1.0 + i / 10) for i in range(6)]
    start = threading.Barrier(len(payloads))
    errors = []

    def write(data: bytes) -> None:
        start.wait()
        try:
            persist_language(bundle, "de", data, parse_language_file(data))
        except Exception as err:  # noqa: BLE001 - collected and asserted on below
            errors.append(err)

    threads = [threading.Thread(target=write, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    manifest = read_manifest(bundle)
    data = bundle_file(bundle, "de").read_bytes()
    assert data in payloads and manifest.languages["de"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert [p.name for p in bundle.glob("de.*safetensors")] == [bundle_file(bundle, "de").name]  # no leftovers
    assert manifest.revision == len(payloads)


def test_the_lock_excludes_a_second_writer(bundle):
    with bundle_lock(bundle):
        with pytest.raises(TimeoutError, match="held"):
            with bundle_lock(bundle, timeout_s=0.2):
                pass
    with bundle_lock(bundle, timeout_s=0.2):  # released
        pass


@pytest.mark.parametrize("name", ["../x.safetensors", "/etc/passwd", "sub/fr.safetensors", "fr.bin", ""])
def test_a_manifest_names_files_in_its_own_directory_only(bundle, name):
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["languages"]["fr"]["file"] = name
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(AdapterFileError, match="plain"):
        read_manifest(bundle)


def test_a_file_made_for_another_base_is_refused(bundle):
    adapter = parse_language_file(bundle_file(bundle, "fr").read_bytes())
    fingerprint = json.loads(json.dumps(adapter.fingerprint))
    path = next(iter(fingerprint["stats"]))
    fingerprint["stats"][path] = [v * 1.5 for v in fingerprint["stats"][path]]  # other base weights
    data = encode_language_file("fr", adapter.tensors, fingerprint, adapter.config)
    with pytest.raises(AdapterFileError, match="another base model"):
        persist_language(bundle, "fr", data, parse_language_file(data))


def test_the_command_line_publishes_and_removes(bundle, tmp_path, capsys):
    from lslo.cli.main import main

    target = tmp_path / "published"
    target.mkdir()
    source = bundle_file(bundle, "de")
    assert main(["bundle-put", str(target), str(source), "--tier", "M"]) == 0
    manifest = read_manifest(target)
    assert manifest.languages["de"]["tier"] == "M" and bundle_file(target, "de").read_bytes() == source.read_bytes()
    assert "revision 1" in capsys.readouterr().out
    assert main(["bundle-put", str(target), str(source), "--language", "fr"]) == 2  # the file holds de
    assert "not 'fr'" in capsys.readouterr().err
    (tmp_path / "junk.safetensors").write_bytes(b"not an adapter")
    assert main(["bundle-put", str(target), str(tmp_path / "junk.safetensors")]) == 2
    assert main(["bundle-remove", str(target), "de"]) == 0 and "de" not in read_manifest(target).languages
    assert main(["bundle-remove", str(target), "de"]) == 1
