"""Validation during training: the loss against Hugging Face's own loss, the best epoch shipped, early stopping,
resumption, and the export gate."""

import json
import shutil
from contextlib import nullcontext

import pytest
import torch
from transformers import AutoTokenizer, M2M100ForConditionalGeneration

from conftest import finetune_args, randomize_adapters
from lslo.errors import ConfigError
from lslo.io import load_bundle
from training.checkpoint import Position
from training.export import ExportSettings, run_export
from training.loop import train_step
from training.recipes.common import start_run
from training.recipes.finetune import FinetuneSettings, run_finetune
from training.settings import build_settings
from training.ship_gate import ship_problem, worse_languages
from training.validation import HISTORY_FILE, Score, attach_validation


@pytest.fixture(scope="module")
def moses_dir(corpus_dir, tmp_path_factory):
    """en/fr/de as Moses-style files: ``train.*`` from the corpus's dev split, ``valid.*`` from its devtest."""
    out = tmp_path_factory.mktemp("moses")
    for split, stem in (("dev", "train"), ("devtest", "valid")):
        for lang, flores in (("en", "eng"), ("fr", "fra"), ("de", "deu")):
            text = (corpus_dir / split / f"{flores}.{split}").read_text(encoding="utf-8")
            (out / f"{stem}.{lang}").write_text(text, encoding="utf-8")
    return out


def _args(base, data, out, **overrides):
    values = dict(languages="auto", tiers=None, ranks="2", valid_share=0.05, select="best", valid_chrf_sents=8)
    values.update(overrides)
    return finetune_args(base, data, out, **values)


def reference_loss(base_dir, data, bundle=None) -> float:
    """Mean token cross-entropy of every direction of ``valid.*``, from Hugging Face's own ``labels=`` loss, row by
    row, the tokenizer's own src_lang/tgt_lang framing, adapters routed by hand."""
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model = M2M100ForConditionalGeneration.from_pretrained(base_dir).eval()
    lslo = load_bundle(model, bundle) if bundle is not None else None
    lines = {lang: (data / f"valid.{lang}").read_text(encoding="utf-8").splitlines() for lang in ("en", "fr", "de")}
    total, tokens = 0.0, 0
    for src in lines:
        for tgt in lines:
            if src == tgt:
                continue
            tokenizer.src_lang, tokenizer.tgt_lang = src, tgt
            for a, b in zip(lines[src], lines[tgt]):
                enc = tokenizer(a, text_target=b, return_tensors="pt")
                with torch.no_grad(), lslo.route([src], [tgt]) if lslo else nullcontext():
                    loss = model(input_ids=enc.input_ids, attention_mask=enc.attention_mask, labels=enc.labels).loss
                n = enc.labels.numel()
                total, tokens = total + float(loss) * n, tokens + n
    return total / tokens


def test_baseline_loss_matches_hugging_face(base_dir, moses_dir, tmp_path):
    settings = build_settings(FinetuneSettings, _args(base_dir, moses_dir, tmp_path / "o", epochs=1))
    started = start_run(settings, "finetune", "lslo", validates=True)
    validator = attach_validation(
        started.run, started.inputs.tokenizer, started.inputs.data.valid, started.inputs.data.directions
    )
    baseline = validator.history["baseline"]["loss"]
    assert baseline == pytest.approx(reference_loss(base_dir, moses_dir), abs=2e-4)
    assert validator.history["pairs"] == 6 * 30  # 6 directions x devtest's 30 segments


def test_the_best_epoch_is_restored_and_patience_stops(base_dir, moses_dir, tmp_path):
    """Driven by hand: epoch 1 is one epoch of training, later epochs are the base alone again (worse)."""
    settings = build_settings(
        FinetuneSettings, _args(base_dir, moses_dir, tmp_path / "o", epochs=5, patience=2, lr=0.05)
    )
    started = start_run(settings, "finetune", "lslo", validates=True)
    run = started.run
    validator = attach_validation(
        run, started.inputs.tokenizer, started.inputs.data.valid, started.inputs.data.directions
    )
    for group in run.batches(1):
        train_step(run, group)
    kept = {n: p.detach().clone() for n, p in run.model.named_parameters() if p.requires_grad}
    validator.after_epoch(1)
    assert validator.history["best"]["epoch"] == 1 and not run.stop_requested
    with torch.no_grad():
        for name, param in run.model.named_parameters():
            if name.endswith("lora_B"):
                param.zero_()
    validator.after_epoch(2)
    assert validator.history["epochs"][1]["loss"] > validator.history["epochs"][0]["loss"]
    assert not run.stop_requested
    validator.after_epoch(3)
    assert run.stop_requested  # two epochs without a better loss
    record = validator.restore_best()
    assert record["selected_epoch"] == 1
    for name, param in run.model.named_parameters():
        if param.requires_grad:
            assert torch.equal(param, kept[name]), name


def test_finetune_ships_the_lowest_loss_epoch(base_dir, moses_dir, tmp_path):
    out = tmp_path / "o"
    bundle = run_finetune(build_settings(FinetuneSettings, _args(base_dir, moses_dir, out, epochs=3, lr=0.05)))
    history = json.loads((out / HISTORY_FILE).read_text())
    losses = {e["epoch"]: e["loss"] for e in history["epochs"]}
    assert sorted(losses) == [1, 2, 3]
    best = min(losses, key=losses.get)
    manifest = json.loads((bundle / "manifest.json").read_text())
    record = manifest["extra"]["validation"]
    assert record["selected_epoch"] == best and record["base_loss"] == history["baseline"]["loss"]
    # the written adapters are that epoch's: their loss, measured independently, is the one recorded for it
    assert reference_loss(base_dir, moses_dir, bundle) == pytest.approx(losses[best], abs=2e-4)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log if e["event"] == "valid"] == [0, 1, 2, 3]


def _driven(base_dir, moses_dir, out, **overrides):
    """A run whose validator scores are scripted: (loss, chrF++) per epoch, each epoch its own adapter values."""
    settings = build_settings(FinetuneSettings, _args(base_dir, moses_dir, out, epochs=5, **overrides))
    started = start_run(settings, "finetune", "lslo", validates=True)
    validator = attach_validation(
        started.run, started.inputs.tokenizer, started.inputs.data.valid, started.inputs.data.directions
    )
    return started, validator


@pytest.mark.parametrize("select_by,expected", [("chrf", 2), ("loss", 3)])
def test_the_measure_chosen_picks_the_epoch_and_its_adapters_come_back(
    base_dir, moses_dir, tmp_path, monkeypatch, select_by, expected
):
    started, validator = _driven(base_dir, moses_dir, tmp_path / "o", select_by=select_by)
    scripted = iter([Score(5.0, 10.0), Score(4.0, 12.0), Score(3.0, 11.0)])  # loss and chrF++ disagree on 2 vs 3
    monkeypatch.setattr(validator, "score", lambda: next(scripted))
    states = {}
    for epoch in (1, 2, 3):
        randomize_adapters(started.lslo, seed=epoch)
        states[epoch] = {n: p.detach().clone() for n, p in started.run.model.named_parameters() if p.requires_grad}
        validator.after_epoch(epoch)
    record = validator.restore_best()
    assert record["selected_epoch"] == expected and record["select_by"] == select_by
    for name, param in started.run.model.named_parameters():
        if param.requires_grad:
            assert torch.equal(param, states[expected][name]), name


def test_resuming_between_checkpoint_and_validation_validates_that_epoch(base_dir, moses_dir, tmp_path, monkeypatch):
    started, validator = _driven(base_dir, moses_dir, tmp_path / "o", patience=1)
    validator.history["epochs"] = [{"epoch": 1, "loss": 3.0, "chrf": 1.0}]
    validator.history["best"] = {"epoch": 1, "loss": 3.0, "chrf": 1.0}
    monkeypatch.setattr(validator, "score", lambda: Score(3.5, 0.5))  # epoch 2: worse
    started.run.position = Position(3, 0, 20)  # epoch 2 checkpointed, not validated
    validator.catch_up()
    assert [e["epoch"] for e in validator.history["epochs"]] == [1, 2]
    assert started.run.stop_requested  # patience 1 is spent: the loop ends before epoch 3
    started.run.stop_requested = False
    validator.catch_up()  # resumed again later: epoch 2 is known, and the run stops again
    assert started.run.stop_requested and len(validator.history["epochs"]) == 2


def test_resumed_run_keeps_its_validation_history(base_dir, moses_dir, tmp_path):
    args = _args(base_dir, moses_dir, tmp_path / "whole", epochs=2)
    run_finetune(build_settings(FinetuneSettings, args))
    whole = json.loads((tmp_path / "whole" / HISTORY_FILE).read_text())
    parts = _args(base_dir, moses_dir, tmp_path / "parts", epochs=2)
    run_finetune(build_settings(FinetuneSettings, {**parts, "stop_after_steps": 3}))
    run_finetune(build_settings(FinetuneSettings, {**parts, "resume": True}))
    resumed = json.loads((tmp_path / "parts" / HISTORY_FILE).read_text())
    assert [e["epoch"] for e in resumed["epochs"]] == [1, 2]
    for a, b in zip(whole["epochs"], resumed["epochs"]):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-4)
    assert resumed["baseline"] == whole["baseline"]


def test_ship_gate_on_hand_numbers():
    assert ship_problem(None) is None
    assert ship_problem({"loss": 2.0, "base_loss": 2.5, "chrf": 30.0, "base_chrf": 28.0}) is None
    # a lower loss does not excuse a lower chrF++ (the demo's adapters: loss 5.90 < 6.75, chrF++ 7.49 < 8.74)
    text = ship_problem({"loss": 5.90, "base_loss": 6.75, "chrf": 7.49, "base_chrf": 8.74, "select_by": "loss"})
    assert "by chrF++ (" in text and "chrF++ 7.49 against 8.74 (-1.25)" in text
    text = ship_problem(
        {"loss": 2.6, "base_loss": 2.5, "chrf": 8.23, "base_chrf": 9.50, "pairs": 40, "selected_epoch": 3}
    )
    assert "by loss and chrF++ (40 pairs, epoch 3)" in text and "loss 2.6000 against 2.5000 (+0.1000)" in text
    assert "chrF++ 8.23 against 9.50 (-1.27)" in text
    assert "by loss (" in ship_problem({"loss": 2.6, "base_loss": 2.5, "chrf": None, "base_chrf": None})
    assert ship_problem({"loss": 2.0, "base_loss": 2.5, "chrf": 9.6, "base_chrf": 9.5, "select_by": "chrf"}) is None


def test_one_language_worse_than_the_base_is_named_even_when_the_pool_is_better():
    per_language = {"en": [10.0, 10.5], "fr": [8.0, 9.5], "cy": [7.0, 6.9]}
    assert worse_languages(per_language) == ["cy"]
    assert worse_languages({"en": [10.0, 10.0]}) == []  # no worse: equal passes


def test_export_refuses_a_bundle_worse_than_its_base(base_dir, moses_dir, tmp_path):
    bundle = run_finetune(build_settings(FinetuneSettings, _args(base_dir, moses_dir, tmp_path / "o", epochs=1)))
    manifest_path = bundle / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["extra"]["validation"].update(loss=9.0, base_loss=3.0)
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match=r"worse than its base alone .*\+6\.0000"):
        run_export(ExportSettings(base=base_dir, bundle=bundle, out=tmp_path / "x"))
    assert not (tmp_path / "x").exists()
    run_export(ExportSettings(base=base_dir, bundle=bundle, out=tmp_path / "y", force=True))
    assert (tmp_path / "y" / "bundle" / "manifest.json").is_file()
    # a subset forced out without --valid: the record, which measured all adapters together, is set aside
    run_export(ExportSettings(base=base_dir, bundle=bundle, out=tmp_path / "z", languages="fr", force=True))
    subset = json.loads((tmp_path / "z" / "bundle" / "manifest.json").read_text())
    assert list(subset["languages"]) == ["fr"] and "validation" not in subset["extra"]
    assert subset["extra"]["training_validation"]["base_loss"] == 3.0
    assert sorted(subset["extra"]["languages_left_out"]) == ["de", "en"]


def test_export_a_subset_is_measured_against_the_base(base_dir, gate_case, tmp_path):
    bundle, valid = gate_case
    with pytest.raises(ConfigError, match="measured all of them together: give --valid"):
        run_export(ExportSettings(base=base_dir, bundle=bundle, out=tmp_path / "a", languages="fr"))
    with pytest.raises(ConfigError, match=r"worse than its base alone .*measured at export.*against"):
        run_export(ExportSettings(base=base_dir, bundle=bundle, out=tmp_path / "b", languages="fr", valid=valid))
    assert not (tmp_path / "b").exists()
    out = run_export(
        ExportSettings(base=base_dir, bundle=bundle, out=tmp_path / "c", languages="fr", valid=valid, force=True)
    )
    manifest = json.loads((out / "bundle" / "manifest.json").read_text())
    assert list(manifest["languages"]) == ["fr"] and not (out / "bundle" / "en.safetensors").exists()
    measured = manifest["extra"]["validation"]
    assert manifest["extra"]["languages_left_out"] == ["en", "de"]
    # both directions of the en-fr pairs pass through the fr adapter; the base reproduces its own French
    assert set(measured["directions"]) == {"en-fr", "fr-en"} and measured["pairs"] == 10
    assert measured["directions"]["en-fr"][0] == 100.0 > measured["directions"]["en-fr"][1]
    assert measured["chrf"] < measured["base_chrf"]
    # every measured row passes through fr's adapter: its own score is the pooled one
    assert measured["per_language"] == {"fr": [measured["base_chrf"], measured["chrf"]]}
    with pytest.raises(ConfigError, match="no adapter for nl"):
        run_export(ExportSettings(base=base_dir, bundle=bundle, out=tmp_path / "d", languages="nl", valid=valid))
    with pytest.raises(ConfigError, match="no direction of the validation data passes through"):
        run_export(ExportSettings(base=base_dir, bundle=bundle, out=tmp_path / "e", languages="de", valid=valid))
    # de has no validation text: refused as unmeasured, next to fr's measured loss
    with pytest.raises(ConfigError, match=r"chrF\+\+ .*; no direction .* passes through the adapter\(s\) of de:"):
        run_export(ExportSettings(base=base_dir, bundle=bundle, out=tmp_path / "f", languages="fr,de", valid=valid))


def test_adapters_that_change_nothing_pass_the_gate(base_dir, gate_case, tmp_path):
    bundle, valid = gate_case
    zero = tmp_path / "zero"
    shutil.copytree(bundle, zero)
    model = M2M100ForConditionalGeneration.from_pretrained(base_dir)
    lslo = load_bundle(model, zero)
    with torch.no_grad():
        for p in lslo.trainable_parameters():
            p.zero_()
    from lslo.io import save_bundle

    save_bundle(lslo, zero)
    out = run_export(ExportSettings(base=base_dir, bundle=zero, out=tmp_path / "x", languages="en,fr", valid=valid))
    measured = json.loads((out / "bundle" / "manifest.json").read_text())["extra"]["validation"]
    assert measured["chrf"] == measured["base_chrf"] and measured["directions"]["en-fr"] == [100.0, 100.0]


def test_evaluate_falls_back_to_the_base_for_languages_without_adapters(base_dir, corpus_dir, gate_case, tmp_path):
    from training.recipes.evaluate import BASE_ROW, EvaluateSettings, run_evaluate

    bundle, _ = gate_case
    only_fr = (
        run_export(
            ExportSettings(base=base_dir, bundle=bundle, out=tmp_path / "fr", languages="fr", dtype="fp32", force=True)
        )
        / "bundle"
    )
    common = dict(
        base=base_dir, data=corpus_dir, split="devtest", languages="en,fr,de", beam=1, max_sents=4, progress=False
    )
    tuned = run_evaluate(EvaluateSettings(bundle=only_fr, **common))
    plain = run_evaluate(EvaluateSettings(**common))  # the base model with no bundle at all
    assert tuned["base_alone"] is not None and tuned["name"] != BASE_ROW
    # de→en and en→de touch no adapter: exactly the base's output; en→fr passes through the fr adapter
    for pair in ("en-de", "de-en"):
        assert tuned["samples"][pair] == plain["samples"][pair]
        assert tuned["directions"][pair] == plain["directions"][pair]
    assert tuned["samples"]["en-fr"] != plain["samples"]["en-fr"]


def test_evaluate_by_default_evaluates_the_languages_the_data_holds(base_dir, corpus_dir, gate_case, tmp_path, capsys):
    """A bundle of en, fr, de and test data in en and fr only: both directions evaluated, de named as skipped
    (before: refused, "the data has no text in de")."""
    from training.recipes.evaluate import EvaluateSettings, run_evaluate

    bundle, _ = gate_case
    english = (corpus_dir / "devtest" / "eng.devtest").read_text(encoding="utf-8").splitlines()[:4]
    french = (corpus_dir / "devtest" / "fra.devtest").read_text(encoding="utf-8").splitlines()[:4]
    test = tmp_path / "test.jsonl"
    test.write_text(
        "".join(
            json.dumps({"translation": {"en": e, "fr": f}}, ensure_ascii=False) + "\n" for e, f in zip(english, french)
        ),
        encoding="utf-8",
    )
    result = run_evaluate(EvaluateSettings(base=base_dir, bundle=bundle, data=test, beam=1, progress=False))
    assert set(result["directions"]) == {"en-fr", "fr-en"}
    assert "the data has no text in de: their adapters are not evaluated" in capsys.readouterr().err
