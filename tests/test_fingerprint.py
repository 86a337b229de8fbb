"""The base-model fingerprint: statistics against a direct float64 computation, row sampling, the version 1
(whole-matrix) form still accepted, and one computation per bundle load."""

import json
import re

import pytest
import torch

import lslo.io.fingerprint as fp
from conftest import randomize_adapters
from lslo import AdapterFileError, LSLoConfig, inject
from lslo.io import load_bundle, save_bundle
from lslo.io.fingerprint import base_fingerprint, sample_rows, weight_stats


def test_sample_rows_spread_evenly_and_take_all_of_a_small_matrix():
    assert torch.equal(sample_rows(10, 4096), torch.arange(10))
    rows = sample_rows(256_206, 4096)
    assert len(rows) == 4096 and rows[0] == 0 and rows[-1] == 256_205
    gaps = rows[1:] - rows[:-1]
    assert int(gaps.min()) >= 62 and int(gaps.max()) <= 63  # 256205 / 4095 = 62.6


def test_stats_match_a_direct_float64_computation_block_by_block():
    torch.manual_seed(0)
    w = torch.randn(2500, 48, dtype=torch.float16)  # more rows than one block
    direct = w.double()
    assert weight_stats(w) == pytest.approx([float(direct.abs().mean()), float(direct.pow(2).mean().sqrt())], rel=1e-12)
    rows = torch.tensor([0, 7, 2499])
    picked = direct[[0, 7, 2499]]
    assert weight_stats(w, rows) == pytest.approx(
        [float(picked.abs().mean()), float(picked.pow(2).mean().sqrt())], rel=1e-12
    )


def test_version_2_samples_the_embedding_and_version_1_reads_it_whole(make_model, monkeypatch):
    monkeypatch.setattr(fp, "SAMPLE_ROWS", 50)  # the tiny model's 200-row embedding gets sampled
    model = make_model(seed=3)
    shared = model.model.shared.weight.detach().double()
    new, old = base_fingerprint(model), base_fingerprint(model, version=1)
    assert new["version"] == 2 and new["sample_rows"] == 50 and "version" not in old
    picked = shared[torch.linspace(0, 199, 50, dtype=torch.float64).round().long()]
    assert new["stats"]["shared"][0] == pytest.approx(float(picked.abs().mean()), rel=1e-12)
    assert old["stats"]["shared"][0] == pytest.approx(float(shared.abs().mean()), rel=1e-12)
    assert new["stats"]["shared"][0] != old["stats"]["shared"][0]


def _bundle(make_model, path, version):
    model = make_model(seed=11)
    lslo = inject(model, LSLoConfig.from_strings("en,fr,oc", "2;2;8"))
    randomize_adapters(lslo)
    save_bundle(lslo, path, fingerprint=base_fingerprint(model, version))
    return lslo


@pytest.mark.parametrize("version", [1, 2])
def test_bundles_of_either_version_load_into_their_base_and_not_another(make_model, tmp_path, version):
    saved = _bundle(make_model, tmp_path / "b", version)
    loaded = load_bundle(make_model(seed=11), tmp_path / "b")
    assert all(torch.equal(saved.language_state_dict("oc")[k], v) for k, v in loaded.language_state_dict("oc").items())
    with pytest.raises(AdapterFileError, match="another base model"):
        load_bundle(make_model(seed=12), tmp_path / "b")


def test_the_fingerprint_is_computed_once_per_bundle_load(make_model, tmp_path, monkeypatch):
    _bundle(make_model, tmp_path / "b", 2)
    calls = []
    real = fp.weight_stats
    monkeypatch.setattr(fp, "weight_stats", lambda *a, **k: calls.append(1) or real(*a, **k))
    load_bundle(make_model(seed=11), tmp_path / "b")  # a manifest and three language files, all checked
    assert len(calls) == 5  # five sampled matrices, once


@pytest.mark.parametrize(
    "fingerprint,reason",
    [
        ({"version": 3}, "version 3 is newer than this software reads"),
        ({"version": "2"}, "malformed base-model fingerprint"),
        ({"version": 2}, "malformed base-model fingerprint (sample_rows None)"),
        ([], "malformed base-model fingerprint"),
    ],
)
def test_a_manifest_with_an_unusable_fingerprint_is_refused_with_the_reason(make_model, tmp_path, fingerprint, reason):
    _bundle(make_model, tmp_path / "b", 2)
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    manifest["base"]["fingerprint"] = fingerprint
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(AdapterFileError, match=re.escape(reason)):
        load_bundle(make_model(seed=11), tmp_path / "b")


def test_a_manifest_format_version_must_be_a_number(make_model, tmp_path):
    _bundle(make_model, tmp_path / "b", 2)
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    (tmp_path / "b" / "manifest.json").write_text(json.dumps({**manifest, "format_version": "1"}))
    with pytest.raises(AdapterFileError, match="format_version '1' is not valid"):
        load_bundle(make_model(seed=11), tmp_path / "b")
