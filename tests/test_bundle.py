"""Adapter bundle I/O: bit-exact round trips, per-language loading and replacement, and refused files."""

import hashlib
import json
import pickle

import pytest
import torch
from safetensors.torch import save as st_save

from conftest import randomize_adapters
from lslo import AdapterFileError, LSLoConfig, inject
from lslo.io import load_bundle, load_language_file, read_manifest, save_bundle
from lslo.io.adapter_file import encode_language_file
from lslo.io.bundle import adapter_config, model_fingerprint
from lslo.pruning import Pruner, language_pools

PAIRS = [("en", "oc"), ("fr", "de"), ("oc", "en"), ("de", "fr")]


def _logits(model, lslo, pairs=PAIRS):
    g = torch.Generator().manual_seed(7)
    ids, dec = torch.randint(4, 150, (len(pairs), 7), generator=g), torch.randint(4, 150, (len(pairs), 5), generator=g)
    with torch.no_grad(), lslo.route([p[0] for p in pairs], [p[1] for p in pairs]):
        return model(input_ids=ids, decoder_input_ids=dec).logits


@pytest.fixture
def trained(make_model, tmp_path):
    """A model with random adapters for en, fr, de (H) and oc (V), H pruned, saved as a bundle."""
    model = make_model(seed=11)
    config = LSLoConfig.from_strings("en,fr,de,oc", "2;2;8", fc_mode="square")
    lslo = inject(model, config)
    randomize_adapters(lslo)
    Pruner(lslo, language_pools(lslo, ["en", "fr", "de"])).prune_to(0.5)
    manifest = save_bundle(lslo, tmp_path / "bundle", base_name="tiny", pruning={"ratio": 0.5, "tiers": ["H"]})
    return model, lslo, manifest, tmp_path / "bundle"


def _assert_close(a, b):
    # A new layout changes the rank width R of every matmul, and with it the summation order: equal up to
    # float rounding, not bit for bit.
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def _state(lslo):
    return {c: lslo.language_state_dict(c) for c in lslo.layout.codes}


def _assert_same_state(a, b):
    assert a.keys() == b.keys()
    for code in a:
        assert a[code].keys() == b[code].keys()
        assert all(torch.equal(a[code][k], b[code][k]) for k in a[code]), code


def test_round_trip_is_bit_exact(trained, make_model):
    model, lslo, manifest, bundle = trained
    fresh = make_model(seed=11)
    loaded = load_bundle(fresh, bundle)
    _assert_same_state(_state(lslo), _state(loaded))
    assert torch.equal(_logits(model, lslo), _logits(fresh, loaded))
    assert loaded.layer_map == lslo.layer_map and loaded.config.fc_mode == "square"
    assert [(s.code, s.rank, s.tier) for s in loaded.languages] == [
        ("en", 2, "H"),
        ("fr", 2, "H"),
        ("de", 2, "H"),
        ("oc", 8, "V"),
    ]


def test_manifest_contents(trained):
    _, lslo, manifest, bundle = trained
    on_disk = read_manifest(bundle)
    assert on_disk.format_version == 1 and on_disk.fc_mode == "square"
    assert on_disk.layer_map == lslo.layer_map.to_dict()
    assert on_disk.modules == lslo.config.modules.names()
    assert on_disk.pruning == {"ratio": 0.5, "tiers": ["H"]}
    assert on_disk.base["fingerprint"]["arch"]["d_model"] == 32
    for code, entry in on_disk.languages.items():
        data = (bundle / entry["file"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["params"] == lslo.parameter_counts()[code]
        assert entry["nonzero"] == lslo.nonzero_counts()[code]
    assert on_disk.languages["en"]["nonzero"] < on_disk.languages["en"]["params"]
    keys = json.loads((bundle / "manifest.json").read_text())
    assert keys["format"] == "lslo-bundle"
    # tensor keys name the module path and end in lora_A / lora_B
    state = lslo.language_state_dict("oc")
    assert "model.encoder.layers.0.self_attn.q_proj.lora_A" in state
    assert all(k.endswith((".lora_A", ".lora_B")) for k in state)


def test_fp16_bundle_loads_into_fp16_model(trained, make_model, tmp_path):
    _, lslo, _, _ = trained
    save_bundle(lslo, tmp_path / "half", dtype=torch.float16)
    fresh = make_model(seed=11, dtype=torch.float16)  # fingerprint must survive the cast
    loaded = load_bundle(fresh, tmp_path / "half")
    a, b = lslo.language_state_dict("oc"), loaded.language_state_dict("oc")
    assert all(torch.equal(a[k].half(), b[k]) for k in a)


def test_load_one_language_into_a_serving_model(trained, make_model):
    _, lslo, _, bundle = trained
    fresh = make_model(seed=11)
    serving = load_bundle(fresh, bundle, languages=["en", "oc"])
    before = _logits(fresh, serving, [("en", "oc"), ("oc", "en")])
    load_language_file(serving, bundle / "fr.safetensors", "fr", tier="H")
    assert serving.layout.codes == ("en", "oc", "fr")
    _assert_close(_logits(fresh, serving, [("en", "oc"), ("oc", "en")]), before)
    _assert_same_state({"fr": lslo.language_state_dict("fr")}, {"fr": serving.language_state_dict("fr")})


def test_replace_in_place_same_and_new_rank(trained, make_model, tmp_path):
    model, lslo, _, bundle = trained
    untouched = [("en", "fr"), ("fr", "en")]
    before = _logits(model, lslo, untouched)
    # same rank: new values, no re-layout
    other = inject(make_model(seed=11), LSLoConfig.from_strings("en,fr,de,oc", "2;2;8", fc_mode="square"))
    randomize_adapters(other, seed=5)
    save_bundle(other, tmp_path / "v2")
    load_language_file(lslo, tmp_path / "v2" / "oc.safetensors", "oc")
    _assert_same_state({"oc": other.language_state_dict("oc")}, {"oc": lslo.language_state_dict("oc")})
    assert torch.equal(_logits(model, lslo, untouched), before)
    # new rank: the bank is re-laid out, other languages keep serving identically
    bigger = inject(make_model(seed=11), LSLoConfig.from_strings("oc", "oc=16", fc_mode="square"))
    randomize_adapters(bigger, seed=6)
    save_bundle(bigger, tmp_path / "v3")
    load_language_file(lslo, tmp_path / "v3" / "oc.safetensors", "oc")
    assert lslo.layout.rank("oc") == 16
    _assert_close(_logits(model, lslo, untouched), before)
    _assert_same_state({"oc": bigger.language_state_dict("oc")}, {"oc": lslo.language_state_dict("oc")})
    lslo.remove_language("oc")
    assert lslo.layout.codes == ("en", "fr", "de")
    _assert_close(_logits(model, lslo, untouched), before)


# ---------------------------------------------------------------------------------------------- refusals


def _valid_parts(lslo, code="oc"):
    return lslo.language_state_dict(code), model_fingerprint(lslo), adapter_config(lslo)


def _raw(tensors, metadata):
    return st_save({k: v.contiguous() for k, v in tensors.items()}, metadata=metadata)


def _bad_files(lslo, make_model):
    tensors, fingerprint, config = _valid_parts(lslo)
    good = encode_language_file("oc", tensors, fingerprint, config)
    header_meta = {
        "format": "lslo-adapter",
        "format_version": "1",
        "language": "oc",
        "rank": "8",
        "dtype": "float32",
        "base_fingerprint": json.dumps(fingerprint),
        "config": json.dumps(config),
    }
    wrong_shape = dict(tensors)
    key = next(k for k in tensors if k.endswith("lora_B"))
    wrong_shape[key] = torch.zeros(tensors[key].shape[0] + 1, 8)
    other = make_model(seed=99)  # same architecture, other weights
    other_fp = model_fingerprint(inject(other, LSLoConfig.from_strings("oc", 8, fc_mode="square")))
    nan = {k: v.clone() for k, v in tensors.items()}
    nan[key][0, 0] = float("nan")
    return {
        "truncated": (good[:-64], "not a readable safetensors file"),
        "empty": (b"", "file is empty"),
        "not safetensors": (b"PK\x03\x04 this is a zip, not an adapter" * 4, "not a readable safetensors file"),
        "pickle": (pickle.dumps({"x": [1, 2, 3]}), "not a readable safetensors file"),
        "no lslo metadata": (_raw(tensors, {}), "not an LSLo adapter file"),
        "wrong shapes": (_raw(wrong_shape, header_meta), "shape"),
        "declared dtype differs": (_raw({k: v.half() for k, v in tensors.items()}, header_meta), "dtype"),
        "integer tensors": (_raw({k: v.to(torch.int32) for k, v in tensors.items()}, header_meta), "dtype"),
        "float64 tensors": (
            _raw({k: v.double() for k, v in tensors.items()}, {**header_meta, "dtype": "float64"}),
            "malformed",
        ),
        "NaN": (_raw(nan, header_meta), "NaN or Inf"),
        "another base model": (encode_language_file("oc", tensors, other_fp, config), "another base model"),
        "newer format": (_raw(tensors, {**header_meta, "format_version": "2"}), "newer format version 2"),
        "other language": (encode_language_file("de", tensors, fingerprint, config), "holds the adapter of 'de'"),
        "other fc mode": (encode_language_file("oc", tensors, fingerprint, {**config, "fc_mode": "full"}), "fc_mode"),
        "missing tensors": (
            encode_language_file("oc", dict(list(tensors.items())[:-2]), fingerprint, config),
            "missing",
        ),
    }


def test_every_bad_file_is_refused_and_adapters_stay_intact(trained, make_model, tmp_path):
    model, lslo, _, _ = trained
    state = _state(lslo)
    logits = _logits(model, lslo)
    cases = _bad_files(lslo, make_model)
    for name, (data, reason) in cases.items():
        path = tmp_path / "bad" / f"{name.replace(' ', '_')}.safetensors"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        with pytest.raises(AdapterFileError) as err:
            load_language_file(lslo, path, "oc")
        assert str(path) in str(err.value), name
        assert reason in err.value.reason, (name, err.value.reason)
        _assert_same_state(state, _state(lslo))
    assert torch.equal(_logits(model, lslo), logits)
    with pytest.raises(AdapterFileError, match="no such file"):
        load_language_file(lslo, tmp_path / "missing.safetensors", "oc")


def test_bundle_level_refusals(trained, make_model, tmp_path):
    _, _, _, bundle = trained
    with pytest.raises(AdapterFileError, match="another base model"):
        load_bundle(make_model(seed=12), bundle)
    wider = make_model(seed=11, d_model=48)
    with pytest.raises(AdapterFileError, match="d_model is 48"):
        load_bundle(wider, bundle)
    data = json.loads((bundle / "manifest.json").read_text())
    newer = tmp_path / "newer"
    newer.mkdir()
    (newer / "manifest.json").write_text(json.dumps({**data, "format_version": 9}))
    with pytest.raises(AdapterFileError, match="newer format version 9"):
        load_bundle(make_model(seed=11), newer)
    with pytest.raises(AdapterFileError, match="no bundle manifest"):
        load_bundle(make_model(seed=11), tmp_path)
    # a corrupt language file fails the whole load and leaves the model without LSLo
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in bundle.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "fr.safetensors").write_bytes((bundle / "fr.safetensors").read_bytes()[:100])
    model = make_model(seed=11)
    with pytest.raises(AdapterFileError, match="fr.safetensors"):
        load_bundle(model, broken)
    assert getattr(model, "_lslo", None) is None
    assert not any(type(m).__name__ == "LSLoLinear" for m in model.modules())


def test_bundle_files_get_the_usual_permissions(trained):
    import os

    _, _, _, bundle = trained
    umask = os.umask(0)
    os.umask(umask)
    for path in bundle.iterdir():
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path.name
