"""Validation during training: the loss against Hugging Face's own loss, the best epoch shipped, early stopping,
resumption, and the export gate."""

import json
from contextlib import nullcontext

import pytest
import torch
from transformers import AutoTokenizer, M2M100ForConditionalGeneration

from conftest import finetune_args, randomize_adapters
from lslo.errors import ConfigError
from lslo.io import load_bundle
from training.checkpoint import Position
from training.export import ExportSettings, run_export, ship_problem
from training.loop import train_step
from training.recipes.common import start_run
from training.recipes.finetune import FinetuneSettings, run_finetune
from training.settings import build_settings
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
                with torch.no_grad(), (lslo.route([src], [tgt]) if lslo else nullcontext()):
                    loss = model(input_ids=enc.input_ids, attention_mask=enc.attention_mask, labels=enc.labels).loss
                n = enc.labels.numel()
                total, tokens = total + float(loss) * n, tokens + n
    return total / tokens


def test_baseline_loss_matches_hugging_face(base_dir, moses_dir, tmp_path):
    settings = build_settings(FinetuneSettings, _args(base_dir, moses_dir, tmp_path / "o", epochs=1))
    started = start_run(settings, "finetune", "lslo", validates=True)
    validator = attach_validation(started.run, started.inputs.tokenizer, started.inputs.data.valid,
                                  started.inputs.data.directions)
    baseline = validator.history["baseline"]["loss"]
    assert baseline == pytest.approx(reference_loss(base_dir, moses_dir), abs=2e-4)
    assert validator.history["pairs"] == 6 * 30  # 6 directions x devtest's 30 segments


def test_the_best_epoch_is_restored_and_patience_stops(base_dir, moses_dir, tmp_path):
    """Driven by hand: epoch 1 is one epoch of training, later epochs are the base alone again (worse)."""
    settings = build_settings(FinetuneSettings, _args(base_dir, moses_dir, tmp_path / "o", epochs=5, patience=2,
                                                      lr=0.05))
    started = start_run(settings, "finetune", "lslo", validates=True)
    run = started.run
    validator = attach_validation(run, started.inputs.tokenizer, started.inputs.data.valid,
                                  started.inputs.data.directions)
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
    validator = attach_validation(started.run, started.inputs.tokenizer, started.inputs.data.valid,
                                  started.inputs.data.directions)
    return started, validator


@pytest.mark.parametrize("select_by,expected", [("chrf", 2), ("loss", 3)])
def test_the_measure_chosen_picks_the_epoch_and_its_adapters_come_back(base_dir, moses_dir, tmp_path, monkeypatch,
                                                                        select_by, expected):
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
    # chosen by loss: a lower chrF++ on the sample is reported, not a reason to refuse
    assert ship_problem({"loss": 2.0, "base_loss": 2.5, "chrf": 27.0, "base_chrf": 28.0}) is None
    text = ship_problem({"loss": 2.6, "base_loss": 2.5, "chrf": 8.23, "base_chrf": 9.50, "pairs": 40,
                         "selected_epoch": 3})
    assert "by loss" in text and "loss 2.6000 against 2.5000 (+0.1000)" in text
    assert "chrF++ 8.23 against 9.50 (-1.27)" in text
    by_chrf = {"loss": 2.0, "base_loss": 2.5, "chrf": 8.23, "base_chrf": 9.50, "select_by": "chrf"}
    assert "by chrf" in ship_problem(by_chrf)
    assert ship_problem({**by_chrf, "chrf": 9.6}) is None


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
