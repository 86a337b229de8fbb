"""End-to-end recipes on a tiny model and corpus: pruning shares, exact resume, Weight Learning, ISE,
evaluation, full fine-tuning and the two-process (gloo) run."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest import TRAIN_TIERS, finetune_args
from lslo.adapters.layer_map import LayerMap
from lslo.errors import ConfigError
from server.launch import free_port
from training.bootstrap import bleu_from_statistics
from training.recipes.evaluate import EvaluateSettings, run_evaluate
from training.recipes.finetune import FinetuneSettings, run_finetune
from training.recipes.subspace import SubspaceSettings, run_subspace
from training.recipes.weight_learning import WeightLearningSettings, run_weight_learning
from training.settings import build_settings

pytestmark = pytest.mark.slow


def _finetune(**kwargs):
    return run_finetune(build_settings(FinetuneSettings, kwargs))


def _bundle_tensors(bundle):
    manifest = json.loads((bundle / "manifest.json").read_text())
    return manifest, {c: load_file(str(bundle / e["file"])) for c, e in manifest["languages"].items()}


def test_lslo_pruning_gives_exact_shares(base_dir, corpus_dir, tmp_path, monkeypatch):
    import training.loop

    batchings = []  # every call of the (shuffle + sort) batching of all examples
    real = training.loop.batch_indices
    monkeypatch.setattr(training.loop, "batch_indices", lambda *a, **k: batchings.append(a[3]) or real(*a, **k))
    out = tmp_path / "run"
    bundle = _finetune(
        **finetune_args(base_dir, corpus_dir, out, prune=0.9, prune_tiers="H,M", prune_start=1, prune_epochs=1)
    )
    # Once for the schedule's step count, then once per epoch (3): not once or twice per optimizer step.
    assert sorted(batchings) == [1, 1, 2, 3]
    manifest, tensors = _bundle_tensors(bundle)
    assert manifest["pruning"]["ratio"] == 0.9 and manifest["pruning"]["languages"] == ["en", "fr", "de"]
    for code, state in tensors.items():
        b = [t for k, t in state.items() if k.endswith("lora_B")]
        n = sum(t.numel() for t in b)
        zeros = sum(int((t == 0).sum()) for t in b)
        if code in ("en", "fr", "de"):  # tiers H and M: one pool each, exactly round(P n) zeros
            assert zeros == round(0.9 * n), code
        else:  # tier V: trained, not pruned (a few exact zeros can come from ReLU units that never fire)
            assert zeros < 0.1 * n, code
        assert all(int((t == 0).sum()) == 0 for k, t in state.items() if k.endswith("lora_A"))
        assert manifest["languages"][code]["nonzero"] == sum(int((t != 0).sum()) for t in state.values())
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [e["ratio"] for e in log if e["event"] == "prune"] == [pytest.approx(0.9), pytest.approx(0.9)]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["per_language"]["nl"]["params"] == manifest["languages"]["nl"]["params"]


def test_resume_after_interruption_is_exact(base_dir, corpus_dir, tmp_path):
    """Dropout on (RNG state must be restored), pruning on (masks must be restored), save mid-epoch."""
    base = tmp_path / "dropout_base"
    from transformers import M2M100ForConditionalGeneration

    model = M2M100ForConditionalGeneration.from_pretrained(base_dir)
    model.config.dropout = 0.2
    model.save_pretrained(base)
    for name in ("sentencepiece.bpe.model", "vocab.json", "tokenizer_config.json", "added_tokens.json"):
        if (base_dir / name).exists():
            (base / name).write_bytes((base_dir / name).read_bytes())
    args = dict(
        prune=0.5, prune_start=1, prune_epochs=1, save_every=3, eval_groups="H2H", eval_max_sents=2, eval_beam=1
    )
    full = _finetune(**finetune_args(base, corpus_dir, tmp_path / "full", **args))
    part = tmp_path / "part"
    steps = json.loads((tmp_path / "full" / "summary.json").read_text())["steps"]
    assert _finetune(**finetune_args(base, corpus_dir, part, stop_after_steps=steps * 2 // 3, **args)) == part
    assert not (part / "bundle").exists()
    before = [json.loads(line) for line in (part / "log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in before if e["event"] == "eval"] == [1]  # interrupted in epoch 2 of 3
    resumed = _finetune(**finetune_args(base, corpus_dir, part, resume=True, **args))
    _, a = _bundle_tensors(full)
    _, b = _bundle_tensors(resumed)
    for code in a:
        for key in a[code]:
            assert torch.equal(a[code][key], b[code][key]), (code, key)
    # Nothing of the interrupted process is lost: the per-epoch curve keeps epoch 1, and the training time
    # counts both processes.
    summaries = [json.loads((d / "summary.json").read_text()) for d in (tmp_path / "full", part)]
    assert summaries[1]["per_epoch_eval"] == summaries[0]["per_epoch_eval"]
    assert [h["epoch"] for h in summaries[1]["per_epoch_eval"]] == [1, 2, 3]
    first_process = max(e["time"] for e in before)
    after = [json.loads(line) for line in (part / "log.jsonl").read_text().splitlines()][len(before) :]
    this_process = max(e["time"] for e in after if e["event"] != "outputs")  # "outputs" comes after the summary
    assert summaries[1]["seconds"] >= first_process + this_process - 0.05  # the summary rounds to 0.1 s


def test_weight_learning_writes_a_valid_layer_map(base_dir, corpus_dir, tmp_path):
    out = tmp_path / "wl"
    path = run_weight_learning(
        WeightLearningSettings(
            base=base_dir,
            data=corpus_dir,
            out=out,
            languages="en,fr,de,nl",
            tiers=TRAIN_TIERS,
            ranks="4",
            epochs=2,
            max_tokens=600,
            threads=1,
            progress=False,
        )
    )
    data = json.loads(path.read_text())
    layer_map = LayerMap.from_dict(data)
    assert len(layer_map.encoder) == 2 and len(layer_map.decoder) == 2  # the test preset's depth
    for stack in ("encoder", "decoder"):
        for (w_src, w_tgt), side in zip(data["weights"][stack], layer_map.of(stack)):
            assert w_src + w_tgt == pytest.approx(1.0, abs=1e-6)
            assert side == ("src" if w_src >= w_tgt else "tgt")
    assert data["weights"]["encoder"][0] != [0.5, 0.5]  # the weights were trained
    assert (out / "weight_learning.png").stat().st_size > 1000
    # the file is usable as --layer-map
    bundle = _finetune(**finetune_args(base_dir, corpus_dir, tmp_path / "ft", layer_map=str(path), epochs=1))
    assert json.loads((bundle / "manifest.json").read_text())["layer_map"] == layer_map.to_dict()


def test_ise_scores_of_each_pool_sum_to_zero(base_dir, corpus_dir, tmp_path):
    out = tmp_path / "ise"
    scores_path = run_subspace(
        SubspaceSettings(
            mode="ise",
            base=base_dir,
            data=corpus_dir,
            out=out,
            languages="en,fr,de,nl",
            tiers=TRAIN_TIERS,
            ranks="4",
            epochs=3,
            prune_start=1,
            prune_epochs=1,
            max_tokens=600,
            threads=1,
            progress=False,
            bitext=str(corpus_dir / "stats.json"),
        )
    )
    data = json.loads(scores_path.read_text())
    pools: dict = {}
    for row in data["scores"]:
        pools.setdefault((row["stack"], row["layer"]), []).append(row)
    assert len(pools) == 4  # 2 encoder + 2 decoder layers
    for rows in pools.values():
        assert {r["language"] for r in rows} == {"en", "fr", "de", "nl"}
        total = sum(r["size"] for r in rows)
        assert sum(r["pruned"] for r in rows) == round(0.7 * total)
        assert abs(sum(r["score"] for r in rows)) <= 0.5 + 1e-6
    assert "encoder.fc1" in data["correlation"] and -1 <= data["correlation"]["encoder.fc1"]["r"] <= 1
    assert (out / "figures" / "ise_languages.png").exists() and (out / "figures" / "ise_layer_02.png").exists()


def test_evaluate_bundle_and_base(base_dir, corpus_dir, tmp_path):
    bundle = _finetune(**finetune_args(base_dir, corpus_dir, tmp_path / "ft", epochs=1))
    result = run_evaluate(
        EvaluateSettings(
            base=base_dir,
            bundle=bundle,
            data=corpus_dir,
            max_sents=4,
            beam=2,
            progress=False,
            json=tmp_path / "eval.json",
        )
    )
    assert set(result["groups_spbleu"]) == {"H2H", "H2M", "H2V", "M2H", "M2V", "V2H", "V2M", "AVG"}
    assert len(result["directions"]) == 12
    assert "sentencepiece.bpe.model" in result["spm_model"]
    on_disk = json.loads((tmp_path / "eval.json").read_text())
    assert on_disk["groups_spbleu"] == result["groups_spbleu"]
    assert "| Method | H2H |" in on_disk["table_markdown"]
    # Per-segment statistics (for the paired bootstrap): summed, they give back each direction's corpus spBLEU.
    for direction, rows in on_disk["segments"].items():
        assert rows["ids"] == list(range(4)) and len(rows["hypotheses"]) == 4
        summed = np.asarray(rows["bleu_stats"]).sum(axis=0)
        assert bleu_from_statistics(summed) == pytest.approx(result["directions"][direction]["spbleu"], abs=1e-9)
    # The base-alone row beside the bundle's is the base evaluated on its own.
    pretrain = run_evaluate(
        EvaluateSettings(
            base=base_dir,
            data=corpus_dir,
            max_sents=4,
            beam=2,
            progress=False,
            languages="en,fr,de,nl",
            tiers="H:en,fr;M:de;V:nl",
        )
    )
    assert pretrain["name"] == "Pretrain" and pretrain["base_alone"] is None
    assert result["base_alone"]["directions"] == pretrain["directions"]
    assert "| Base alone |" in result["table_markdown"] and "| en→fr |" in result["directions_markdown"]
    pair = run_evaluate(
        EvaluateSettings(
            base=base_dir, data=corpus_dir, languages="en,fr", tiers="H:en,fr", max_sents=3, beam=1, progress=False
        )
    )
    assert set(pair["groups_spbleu"]) == {"H2H", "AVG"}


def test_full_finetuning_writes_a_model(base_dir, corpus_dir, tmp_path):
    # With Figure 3's per-epoch evaluation, whose direction groups come from --tiers (no LSLo config here).
    out = _finetune(
        **finetune_args(
            base_dir,
            corpus_dir,
            tmp_path / "full",
            method="full",
            epochs=1,
            eval_groups="H2H,V2H",
            eval_max_sents=2,
            eval_beam=1,
        )
    )
    assert (out / "config.json").exists() and (out / "sentencepiece.bpe.model").exists()
    history = json.loads((tmp_path / "full" / "summary.json").read_text())["per_epoch_eval"]
    assert [h["epoch"] for h in history] == [1] and {"H2H", "V2H"} <= set(history[0])
    with pytest.raises(ConfigError, match=r"--eval-groups needs a resource tier .*\['de', 'nl'\]"):
        _finetune(
            **finetune_args(
                base_dir, corpus_dir, tmp_path / "bad", method="full", epochs=1, tiers="H:en,fr", eval_groups="H2H"
            )
        )  # caught before any training
    assert not (tmp_path / "bad" / "log.jsonl").exists()
    from transformers import M2M100ForConditionalGeneration

    tuned = M2M100ForConditionalGeneration.from_pretrained(out)
    base = M2M100ForConditionalGeneration.from_pretrained(base_dir)
    assert not torch.equal(tuned.model.encoder.layers[0].fc1.weight, base.model.encoder.layers[0].fc1.weight)
    # Every weight is trained: the count by hand from the config (biases, layer norms, the tied embedding once).
    c = base.config
    d, ffn, attention = c.d_model, c.encoder_ffn_dim, c.d_model * c.d_model + c.d_model
    feed_forward = 2 * d * ffn + ffn + d
    expected = (
        c.vocab_size * d
        + c.encoder_layers * (4 * attention + feed_forward + 2 * 2 * d)
        + c.decoder_layers * (8 * attention + feed_forward + 3 * 2 * d)
        + 2 * 2 * d
    )
    summary = json.loads((tmp_path / "full" / "summary.json").read_text())
    assert c.decoder_ffn_dim == ffn and summary["parameters"] == expected
    assert 0.99 * expected < summary["nonzero"] <= expected  # layer-norm biases and a few weights may be exactly 0


def test_two_gloo_processes_match_one(base_dir, corpus_dir, tmp_path):
    flags = [
        "--method",
        "lslo",
        "--base",
        str(base_dir),
        "--data",
        str(corpus_dir),
        "--languages",
        "en,fr,de,nl",
        "--tiers",
        TRAIN_TIERS,
        "--ranks",
        "2;2;8",
        "--epochs",
        "2",
        "--max-tokens",
        "600",
        "--prune",
        "0.5",
        "--prune-start",
        "1",
        "--prune-epochs",
        "1",
        "--threads",
        "1",
        "--no-progress",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(
        [sys.executable, "-m", "training", "finetune", *flags, "--out", str(tmp_path / "one")],
        check=True,
        env=env,
        capture_output=True,
    )
    for attempt in range(2):  # a second try on a new port only if the rendezvous port was taken meanwhile
        out = tmp_path / f"two-{attempt}"
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nproc_per_node",
                "2",
                "--master-port",
                str(free_port()),
                "-m",
                "training",
                "finetune",
                *flags,
                "--out",
                str(out),
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        if run.returncode == 0 or "address already in use" not in run.stderr.lower():
            break
    assert run.returncode == 0, run.stderr[-3000:]
    _, one = _bundle_tensors(tmp_path / "one" / "bundle")
    _, two = _bundle_tensors(out / "bundle")
    moved = 0.0
    for code in one:
        for key in one[code]:
            # Summing two half-batch gradients differs from one full-batch sum in the last bits, and Adam's
            # division by sqrt(v) magnifies that over two epochs for a few weights (up to ~1 % here, depending on
            # the kernels' summation order): nearly all agree to 1e-5, every one to 2 %.
            a, b = one[code][key], two[code][key]
            assert torch.isclose(b, a, rtol=1e-4, atol=1e-5).float().mean() >= 0.97, (code, key)
            torch.testing.assert_close(b, a, rtol=2e-2, atol=1e-4)
            moved = max(moved, float(one[code][key].abs().max()))
    assert moved > 0.01  # the adapters did train
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert next(e for e in log if e["event"] == "start")["world_size"] == 2
    # validation (a held-out share by default): each rank scores a part, the sums are all-reduced
    one_valid, two_valid = (json.loads((d / "validation.json").read_text()) for d in (tmp_path / "one", out))
    assert [e["epoch"] for e in two_valid["epochs"]] == [1, 2] and two_valid["pairs"] == one_valid["pairs"] > 0
    for a, b in zip(one_valid["epochs"], two_valid["epochs"]):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-4)


def test_export_packs_an_fp16_base_and_bundle_that_load(base_dir, corpus_dir, tmp_path):
    from transformers import M2M100ForConditionalGeneration

    from lslo.io import load_bundle
    from training.export import ExportSettings, run_export

    bundle = _finetune(**finetune_args(base_dir, corpus_dir, tmp_path / "ft", epochs=1))
    out = run_export(ExportSettings(base=base_dir, bundle=bundle, out=tmp_path / "export", dtype="fp16"))
    manifest, tensors = _bundle_tensors(out / "bundle")
    assert manifest["extra"]["exported_dtype"] == "fp16"
    assert all(t.dtype == torch.float16 for state in tensors.values() for t in state.values())
    _, original = _bundle_tensors(bundle)
    assert torch.equal(
        tensors["oc" if "oc" in tensors else "nl"]["model.encoder.layers.0.fc1.lora_B"],
        original["oc" if "oc" in original else "nl"]["model.encoder.layers.0.fc1.lora_B"].half(),
    )
    source = M2M100ForConditionalGeneration.from_pretrained(base_dir)
    exported = M2M100ForConditionalGeneration.from_pretrained(out / "base", dtype=torch.float16)
    for (name, want), got in zip(source.state_dict().items(), exported.state_dict().values()):
        assert torch.equal(got, want.half()), name  # the base's own weights, cast
    for dtype in (torch.float16, torch.float32):  # serving in fp16 or upcast to fp32
        model = M2M100ForConditionalGeneration.from_pretrained(out / "base", dtype=dtype)
        assert next(model.parameters()).dtype == dtype
        assert load_bundle(model, out / "bundle").layout.codes == tuple(manifest["languages"])
    assert (out / "base" / "sentencepiece.bpe.model").exists()
