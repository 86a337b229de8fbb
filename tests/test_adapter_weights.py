"""Adapter weights at export (``training.adapter_weights``): parsing, the per-language choice on hand-made scores,
the exported files against the source bundle's tensors, and ``auto`` on validation data."""

import json

import pytest
import torch
from safetensors import safe_open
from transformers import AutoTokenizer

from lslo.errors import ConfigError
from lslo.languages.tokens import LanguageVocabulary
from training.adapter_weights import choose_weights, parse_weights, scan_table
from training.export import ExportSettings, read_validation_data, run_export
from training.ship_gate import measure_against_base, measure_weightings


def _tensors(path):
    with safe_open(path, "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open is no mapping


def test_parse_weights():
    vocabulary = LanguageVocabulary.of_table()
    kept = ["en", "fr", "de"]
    problems: list[str] = []
    assert parse_weights("1", kept, vocabulary, problems) == {"en": 1.0, "fr": 1.0, "de": 1.0}
    assert parse_weights("0.25", kept, vocabulary, problems) == {"en": 0.25, "fr": 0.25, "de": 0.25}
    assert parse_weights("fr=0.5, de=0.125", kept, vocabulary, problems) == {"en": 1.0, "fr": 0.5, "de": 0.125}
    assert parse_weights("auto", kept, vocabulary, problems) is None
    assert problems == []
    for bad, why in (
        ("0", "in (0, 1]"),
        ("1.5", "in (0, 1]"),
        ("half", "not a number"),
        ("fr=x", "not a number"),
        ("nl=0.5", "not among the exported languages"),
        ("xx=0.5", "xx"),
    ):
        problems = []
        parse_weights(bad, kept, vocabulary, problems)
        assert len(problems) == 1 and why in problems[0], (bad, problems)


def test_choose_weights_on_hand_numbers():
    scans = {
        1.0: {"en": [9.0, 8.0], "fr": [10.0, 10.4], "cy": [8.0, 7.0], "de": [9.0, 9.0]},
        0.5: {"en": [9.0, 9.2], "fr": [10.0, 10.6], "cy": [8.0, 7.5], "de": [9.0, 9.0]},
        0.25: {"en": [9.0, 9.1], "fr": [10.0, 10.6], "cy": [8.0, 7.9], "de": [9.0, 8.9]},
    }
    # en: best not-worse score at 0.5; fr: 0.5 and 0.25 tie, the larger wins; cy: worse everywhere, left out;
    # de: equal to the base at 1 and 0.5 (not worse), the larger wins
    assert choose_weights(scans) == {"en": 0.5, "fr": 0.5, "de": 1.0}
    table = scan_table(scans, choose_weights(scans))
    assert "| cy | 8.00 | -1.00 | -0.50 | -0.10 | left out |" in table
    assert "| en | 9.00 | -1.00 | +0.20 | +0.10 | 0.5 |" in table
    assert choose_weights({1.0: {"en": [9.0, 8.0]}}) == {}


def test_export_weights_the_files(base_dir, gate_case, tmp_path):
    bundle, valid = gate_case
    source = json.loads((bundle / "manifest.json").read_text())["languages"]
    out = run_export(
        ExportSettings(
            base=base_dir,
            bundle=bundle,
            out=tmp_path / "x",
            dtype="fp32",
            adapter_weight="fr=0.5,de=0.125",
            valid=valid,
            force=True,
        )
    )
    manifest = json.loads((out / "bundle" / "manifest.json").read_text())
    assert manifest["extra"]["adapter_weights"] == {"en": 1.0, "fr": 0.5, "de": 0.125}
    for code, weight in (("en", 1.0), ("fr", 0.5), ("de", 0.125)):
        before = _tensors(bundle / source[code]["file"])
        after = _tensors(out / "bundle" / manifest["languages"][code]["file"])
        assert before.keys() == after.keys()
        for key, tensor in before.items():
            expected = tensor * weight if key.endswith(".lora_B") else tensor
            assert after[key].float().allclose(expected.float(), rtol=1e-6, atol=0), key
    # the validation record is the measurement of the weighted adapters
    measured = manifest["extra"]["validation"]
    again = measure_against_base(
        base_dir,
        bundle,
        ["en", "fr", "de"],
        AutoTokenizer.from_pretrained(base_dir),
        read_validation_data(valid, LanguageVocabulary.of_table(), []),
        1,
        200,
        "cpu",
        {"en": 1.0, "fr": 0.5, "de": 0.125},
    )
    assert measured["per_language"] == again["per_language"] and measured["directions"] == again["directions"]


def test_each_weighting_starts_from_the_trained_adapters(base_dir, gate_case):
    bundle, valid = gate_case
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    data = read_validation_data(valid, LanguageVocabulary.of_table(), [])
    half = {"en": 0.5, "fr": 0.5}
    first, second, trained = measure_weightings(base_dir, bundle, ["en", "fr"], tokenizer, data, [half, half, {}])
    alone = measure_against_base(base_dir, bundle, ["en", "fr"], tokenizer, data)
    # the same weights twice give the same translations (scaling is not applied on top of the last one), and
    # no weights after some give the unweighted adapters' translations
    assert first["directions"] == second["directions"]
    assert trained["directions"] == alone["directions"]


def test_weights_other_than_one_need_validation(base_dir, gate_case, tmp_path):
    bundle, _ = gate_case
    with pytest.raises(ConfigError, match="give --valid to measure them"):
        run_export(ExportSettings(base=base_dir, bundle=bundle, out=tmp_path / "a", adapter_weight="0.5"))
    with pytest.raises(ConfigError, match="auto chooses the weights on validation data"):
        run_export(ExportSettings(base=base_dir, bundle=bundle, out=tmp_path / "b", adapter_weight="auto", force=True))
    with pytest.raises(ConfigError, match="in \\(0, 1\\]"):
        run_export(ExportSettings(base=base_dir, bundle=bundle, out=tmp_path / "c", adapter_weight="2", force=True))


def test_auto_refuses_when_every_weight_is_worse(base_dir, gate_case, tmp_path):
    # en→fr's references are the base's own translations (chrF++ 100): random adapters at any weight score lower
    bundle, valid = gate_case
    with pytest.raises(ConfigError, match=r"no adapter weight tried \(1, 0.5, 0.25, 0.125\) keeps"):
        run_export(
            ExportSettings(
                base=base_dir, bundle=bundle, out=tmp_path / "x", languages="en,fr", adapter_weight="auto", valid=valid
            )
        )
    assert not (tmp_path / "x").exists()


def test_auto_keeps_adapters_no_worse_than_the_base(base_dir, gate_case, tmp_path):
    # adapters whose B is zero translate exactly as the base alone: not worse at any weight, so the largest
    # weight is chosen for each, the export passes the gate and records what it chose
    from transformers import M2M100ForConditionalGeneration

    from lslo.io import load_bundle, save_bundle

    bundle, valid = gate_case
    model = M2M100ForConditionalGeneration.from_pretrained(base_dir)
    lslo = load_bundle(model, bundle)
    with torch.no_grad():
        for m in lslo.modules:
            for bank in m.module.banks.values():
                bank.lora_B.zero_()
    save_bundle(lslo, tmp_path / "zero-b")
    out = run_export(
        ExportSettings(
            base=base_dir,
            bundle=tmp_path / "zero-b",
            out=tmp_path / "x",
            languages="en,fr",
            adapter_weight="auto",
            valid=valid,
        )
    )
    extra = json.loads((out / "bundle" / "manifest.json").read_text())["extra"]
    assert extra["adapter_weights"] == {"en": 1.0, "fr": 1.0} and extra["adapter_weight_grid"] == [1, 0.5, 0.25, 0.125]
    assert extra["validation"]["chrf"] == extra["validation"]["base_chrf"]


def _measured(per_language):
    """A measurement of ``measure_against_base``'s shape with these per-language [base, bundle] scores."""
    base = sum(b for b, _ in per_language.values()) / len(per_language)
    tuned = sum(t for _, t in per_language.values()) / len(per_language)
    return {
        "select_by": "chrf",
        "chrf": tuned,
        "base_chrf": base,
        "loss": None,
        "base_loss": None,
        "pairs": 10,
        "beam": 1,
        "languages": list(per_language),
        "unmeasured": [],
        "per_language": per_language,
        "directions": {},
        "table": "(table)",
    }


def test_auto_leaves_out_who_is_worse_measured_together(base_dir, gate_case, tmp_path, monkeypatch):
    # Hand-made scores: alone, en is worse at every weight, fr best at 0.25, de at 0.5; together, de is worse
    # and is left out, then fr alone passes.
    import training.export as export

    bundle, valid = gate_case
    scans = {
        1.0: {"en": [9, 8], "fr": [9, 8], "de": [9, 8.5]},
        0.5: {"en": [9, 8.5], "fr": [9, 9.1], "de": [9, 9.2]},
        0.25: {"en": [9, 8.9], "fr": [9, 9.3], "de": [9, 9.1]},
        0.125: {"en": [9, 8.9], "fr": [9, 9], "de": [9, 9]},
    }
    joint = {("fr", "de"): {"fr": [9, 9.2], "de": [9, 8.8]}, ("fr",): {"fr": [9, 9.3]}}
    calls = []

    def fake_scans(base, bundle, languages, tokenizer, data, weightings, *rest):
        return [_measured(scans[next(iter(w.values()))]) for w in weightings]

    def fake_measure(base, bundle, languages, tokenizer, data, beam, max_sents, device, weights=None):
        calls.append((tuple(languages), dict(weights)))
        return _measured(joint[tuple(languages)])

    monkeypatch.setattr(export, "measure_weightings", fake_scans)
    monkeypatch.setattr(export, "measure_against_base", fake_measure)
    out = run_export(
        ExportSettings(
            base=base_dir, bundle=bundle, out=tmp_path / "x", dtype="fp32", adapter_weight="auto", valid=valid
        )
    )
    assert calls == [(("fr", "de"), {"fr": 0.25, "de": 0.5}), (("fr",), {"fr": 0.25})]
    manifest = json.loads((out / "bundle" / "manifest.json").read_text())
    assert list(manifest["languages"]) == ["fr"]
    assert manifest["extra"]["adapter_weights"] == {"fr": 0.25}
    assert manifest["extra"]["languages_left_out"] == ["en", "de"]
    assert manifest["extra"]["validation"]["weights_chosen_on_this_data"] is True
    # what was written is the trained fr adapter with B at 0.25
    source = json.loads((bundle / "manifest.json").read_text())["languages"]["fr"]["file"]
    before, after = _tensors(bundle / source), _tensors(out / "bundle" / manifest["languages"]["fr"]["file"])
    assert all(after[k].allclose(v * 0.25 if k.endswith(".lora_B") else v) for k, v in before.items())
    # a weighted bundle exported again composes the weights
    again = run_export(
        ExportSettings(
            base=base_dir, bundle=out / "bundle", out=tmp_path / "y", dtype="fp32", adapter_weight="0.5", force=True
        )
    )
    assert json.loads((again / "bundle" / "manifest.json").read_text())["extra"]["adapter_weights"] == {"fr": 0.125}
