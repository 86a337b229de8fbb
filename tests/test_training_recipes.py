"""End-to-end recipes on a tiny model and corpus: pruning shares, exact resume, Weight Learning, ISE,
evaluation, full fine-tuning and the two-process (gloo) run."""

import json
import os
import re
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest import TRAIN_TIERS, finetune_args
from lslo.errors import ConfigError
from lslo.layer_map import LayerMap
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


def test_lslo_pruning_gives_exact_shares(base_dir, corpus_dir, tmp_path):
    out = tmp_path / "run"
    bundle = _finetune(**finetune_args(base_dir, corpus_dir, out, prune=0.9, prune_tiers="H,M", prune_start=1,
                                       prune_epochs=1))
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
    args = dict(prune=0.5, prune_start=1, prune_epochs=1, save_every=3, eval_groups="H2H", eval_max_sents=2,
                eval_beam=1)
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
    after = [json.loads(line) for line in (part / "log.jsonl").read_text().splitlines()][len(before):]
    this_process = max(e["time"] for e in after if e["event"] != "outputs")  # "outputs" comes after the summary
    assert summaries[1]["seconds"] >= first_process + this_process - 0.05  # the summary rounds to 0.1 s


def test_weight_learning_writes_a_valid_layer_map(base_dir, corpus_dir, tmp_path):
    out = tmp_path / "wl"
    path = run_weight_learning(WeightLearningSettings(
        base=base_dir, data=corpus_dir, out=out, languages="en,fr,de,nl", tiers=TRAIN_TIERS, ranks="4", epochs=2,
        max_tokens=600, threads=1, progress=False))
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
    scores_path = run_subspace(SubspaceSettings(
        mode="ise", base=base_dir, data=corpus_dir, out=out, languages="en,fr,de,nl", tiers=TRAIN_TIERS,
        ranks="4", epochs=3, prune_start=1, prune_epochs=1, max_tokens=600, threads=1, progress=False,
        bitext=str(corpus_dir / "stats.json")))
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
    result = run_evaluate(EvaluateSettings(base=base_dir, bundle=bundle, data=corpus_dir, max_sents=4, beam=2,
                                           progress=False, **{"json": tmp_path / "eval.json"}))
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
    pretrain = run_evaluate(EvaluateSettings(base=base_dir, data=corpus_dir, languages="en,fr", tiers="H:en,fr",
                                             max_sents=3, beam=1, progress=False))
    assert pretrain["name"] == "Pretrain" and set(pretrain["groups_spbleu"]) == {"H2H", "AVG"}


def test_full_finetuning_writes_a_model(base_dir, corpus_dir, tmp_path):
    # With Figure 3's per-epoch evaluation, whose direction groups come from --tiers (no LSLo config here).
    out = _finetune(**finetune_args(base_dir, corpus_dir, tmp_path / "full", method="full", epochs=1,
                                    eval_groups="H2H,V2H", eval_max_sents=2, eval_beam=1))
    assert (out / "config.json").exists() and (out / "sentencepiece.bpe.model").exists()
    history = json.loads((tmp_path / "full" / "summary.json").read_text())["per_epoch_eval"]
    assert [h["epoch"] for h in history] == [1] and {"H2H", "V2H"} <= set(history[0])
    with pytest.raises(ConfigError, match=r"--eval-groups needs a resource tier .*\['de', 'nl'\]"):
        _finetune(**finetune_args(base_dir, corpus_dir, tmp_path / "bad", method="full", epochs=1,
                                  tiers="H:en,fr", eval_groups="H2H"))  # caught before any training
    assert not (tmp_path / "bad" / "log.jsonl").exists()
    from transformers import M2M100ForConditionalGeneration

    tuned = M2M100ForConditionalGeneration.from_pretrained(out)
    base = M2M100ForConditionalGeneration.from_pretrained(base_dir)
    assert not torch.equal(tuned.model.encoder.layers[0].fc1.weight, base.model.encoder.layers[0].fc1.weight)
    # Every weight is trained: the count by hand from the config (biases, layer norms, the tied embedding once).
    c = base.config
    d, ffn, attention = c.d_model, c.encoder_ffn_dim, c.d_model * c.d_model + c.d_model
    feed_forward = 2 * d * ffn + ffn + d
    expected = (c.vocab_size * d + c.encoder_layers * (4 * attention + feed_forward + 2 * 2 * d)
                + c.decoder_layers * (8 * attention + feed_forward + 3 * 2 * d) + 2 * 2 * d)
    summary = json.loads((tmp_path / "full" / "summary.json").read_text())
    assert c.decoder_ffn_dim == ffn and summary["parameters"] == expected
    assert 0.99 * expected < summary["nonzero"] <= expected  # layer-norm biases and a few weights may be exactly 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_match_one(base_dir, corpus_dir, tmp_path):
    flags = ["--method", "lslo", "--base", str(base_dir), "--data", str(corpus_dir), "--languages", "en,fr,de,nl",
             "--tiers", TRAIN_TIERS, "--ranks", "2;2;8", "--epochs", "2", "--max-tokens", "600", "--prune", "0.5",
             "--prune-start", "1", "--prune-epochs", "1", "--threads", "1", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "training", "finetune", *flags, "--out", str(tmp_path / "one")],
                   check=True, env=env, capture_output=True)
    for attempt in range(2):  # a second try on a new port only if the rendezvous port was taken meanwhile
        out = tmp_path / f"two-{attempt}"
        run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                              "--master-port", str(free_port()), "-m", "training", "finetune", *flags,
                              "--out", str(out)], env=env, capture_output=True, text=True)
        if run.returncode == 0 or "address already in use" not in run.stderr.lower():
            break
    assert run.returncode == 0, run.stderr[-3000:]
    _, one = _bundle_tensors(tmp_path / "one" / "bundle")
    _, two = _bundle_tensors(out / "bundle")
    moved = 0.0
    for code in one:
        for key in one[code]:
            torch.testing.assert_close(one[code][key], two[code][key], rtol=1e-4, atol=1e-6)
            moved = max(moved, float(one[code][key].abs().max()))
    assert moved > 0.01  # the adapters did train
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert log[0]["world_size"] == 2


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
    assert torch.equal(tensors["oc" if "oc" in tensors else "nl"]["model.encoder.layers.0.fc1.lora_B"],
                       original["oc" if "oc" in original else "nl"]["model.encoder.layers.0.fc1.lora_B"].half())
    source = M2M100ForConditionalGeneration.from_pretrained(base_dir)
    exported = M2M100ForConditionalGeneration.from_pretrained(out / "base", dtype=torch.float16)
    for (name, want), got in zip(source.state_dict().items(), exported.state_dict().values()):
        assert torch.equal(got, want.half()), name  # the base's own weights, cast
    for dtype in (torch.float16, torch.float32):  # serving in fp16 or upcast to fp32
        model = M2M100ForConditionalGeneration.from_pretrained(out / "base", dtype=dtype)
        assert next(model.parameters()).dtype == dtype
        assert load_bundle(model, out / "bundle").layout.codes == tuple(manifest["languages"])
    assert (out / "base" / "sentencepiece.bpe.model").exists()


def test_replication_runner_archive_and_report(base_dir, corpus_dir, tmp_path, capsys):
    """Tiny experiments through the runner (one depends on the other's learned layer map), archived; then the
    report and the runner from the archive alone, with the work directory gone."""
    import yaml

    from training.replicate import main as replicate
    from training.replication_archive import load_archive, read_archived

    configs, work, archive = tmp_path / "configs", tmp_path / "work", tmp_path / "archive"
    configs.mkdir()
    common = {"epochs": 1, "max_tokens": 600}
    (configs / "pretrain.yaml").write_text(yaml.safe_dump(
        {"command": "evaluate-base", "table": "t1", "row": "Pretrain", "seeds": [0], "settings": {}}))
    (configs / "weight_learning.yaml").write_text(yaml.safe_dump(
        {"command": "weight-learning", "table": "f1", "row": "WL", "seeds": [0], "settings": {**common, "ranks": "4"}}))
    (configs / "lslo_2-2-8.yaml").write_text(yaml.safe_dump(
        {"command": "finetune", "table": "t1", "row": "2;2;8+WL", "seeds": [0, 1],
         "settings": {**common, "method": "lslo", "ranks": "2;2;8", "layer_map": "@weight_learning"}}))
    (configs / "ise.yaml").write_text(yaml.safe_dump(
        {"command": "subspace", "table": "f2", "row": "ISE", "seeds": [0],
         "settings": {"epochs": 2, "max_tokens": 600, "mode": "ise", "ranks": "4", "prune_start": 1,
                      "prune_epochs": 1, "layer_map": "@weight_learning", "bitext": "@stats"}}))
    args = ["--configs", str(configs), "--work", str(work), "--archive", str(archive), "--base", str(base_dir),
            "--data", str(corpus_dir), "--languages", "en,fr,de,nl", "--tiers", TRAIN_TIERS, "--threads", "1",
            "--beam", "1"]
    assert replicate(["lslo_2-2-8", "--seed", "1", *args]) == 0  # one seed, and the run it depends on
    assert sorted(p.name for p in archive.iterdir()) == ["lslo_2-2-8-s1.json.gz", "weight_learning-s0.json.gz"]
    assert replicate(["pretrain", "lslo_2-2-8", "ise", "--jobs", "2", *args]) == 0  # two runs at once
    results = json.loads((work / "results.json").read_text())
    assert {(r["name"], r["seed"]) for r in results} == {("pretrain", 0), ("weight_learning", 0), ("lslo_2-2-8", 0),
                                                         ("lslo_2-2-8", 1), ("ise", 0)}  # the dependency included
    assert all("evaluation" not in r for r in results)
    learned = read_archived(archive, "weight_learning", 0)
    assert learned["layer_map"] == json.loads((work / "runs" / "weight_learning-s0" / "train" / "layer_map.json")
                                              .read_text())  # the file's contents, not its path
    manifest = json.loads((work / "runs" / "lslo_2-2-8-s0" / "train" / "bundle" / "manifest.json").read_text())
    assert manifest["layer_map"] == LayerMap.from_dict(learned["layer_map"]).to_dict()
    evaluated = read_archived(archive, "lslo_2-2-8", 0)
    on_disk = json.loads((work / "runs" / "lslo_2-2-8-s0" / "eval.json").read_text())
    assert evaluated["evaluation"] == {k: v for k, v in on_disk.items() if k != "samples"}
    assert evaluated["groups"] == on_disk["groups_spbleu"]
    finished = {p: p.stat().st_mtime_ns for root in (work / "runs", archive) for p in root.rglob("*") if p.is_file()}
    assert replicate(["lslo_2-2-8", *args]) == 0  # done runs are not redone: no file of theirs changes
    assert {p: p.stat().st_mtime_ns for p in finished} == finished
    with pytest.raises(SystemExit, match="unknown experiment"):
        replicate(["lslo_2-2-9", *args])
    (configs / "broken.yaml").write_text(yaml.safe_dump(
        {"command": "finetune", "table": "t1", "row": "broken", "seeds": [0],
         "settings": {**common, "method": "lslo", "ranks": "2;2;x"}}))
    assert replicate(["broken", "lslo_2-2-8", "--jobs", "2", *args]) == 1  # reported, the others kept
    assert not (work / "runs" / "broken-s0" / "result.json").exists()
    assert read_archived(archive, "broken", 0) is None
    (configs / "broken.yaml").unlink()
    # An evaluation from before per-segment statistics were kept: --rescore re-evaluates and re-archives it.
    stale = work / "runs" / "lslo_2-2-8-s1" / "eval.json"
    old = json.loads(stale.read_text())
    stale.write_text(json.dumps({k: v for k, v in old.items() if k != "segments"}))
    untouched = (work / "runs" / "lslo_2-2-8-s0" / "eval.json").stat().st_mtime_ns
    assert replicate(["lslo_2-2-8", "--rescore", *args]) == 0
    again = json.loads(stale.read_text())
    assert again["segments"] == old["segments"] and again["groups_spbleu"] == old["groups_spbleu"]
    assert read_archived(archive, "lslo_2-2-8", 1)["evaluation"]["segments"] == old["segments"]
    assert (work / "runs" / "lslo_2-2-8-s0" / "eval.json").stat().st_mtime_ns == untouched
    report = tmp_path / "report"
    assert replicate([*args, "--report", str(report)]) == 0
    text = (report / "replication_tables.md").read_text()
    assert "| Pretrain |" in text and "| 2;2;8+WL |" in text and " ± " in text  # two seeds: mean ± sd
    assert re.search(r"^\| lslo_2-2-8 \| 0,1 \| 1 \| \d+ \| \d+ \|$", text, re.M)  # run times with the threads
    assert re.search(r"^\| weight_learning \| 0 \| 1 \| \d+ \| - \|$", text, re.M)  # trained, not evaluated
    assert (report / "figures" / "figure1_weight_learning.png").exists()
    assert (report / "figures" / "figure2_ise.png").exists()
    assert "in numbers: by resource tier" in text and "| encoder.AVG |" in text  # ISE summary and correlation
    # The work directory gone (a fresh checkout): the archive alone lists, reports and skips the finished runs.
    import shutil

    shutil.rmtree(work)
    assert replicate([*args, "--report", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "replication_tables.md").read_text() == text
    assert replicate(["lslo_2-2-8", "ise", *args]) == 0
    assert not (work / "runs").exists()  # nothing trained again, the learned map read from the archive
    assert len(load_archive(archive)) == 5
    capsys.readouterr()
    assert replicate(["lslo_2-2-8", "--list", *args]) == 0
    assert re.search(r"^lslo_2-2-8 .* seeds \[0, 1\] done \[0, 1\]$", capsys.readouterr().out, re.M)


def test_replication_dependencies_are_the_referenced_experiments():
    from training.replicate import dependencies

    experiments = {"a": {"settings": {"layer_map": "@weight_learning"}}, "b": {"settings": {"layer_map": "paper"}},
                   "c": {"command": "evaluate-base"}, "d": {"settings": {"layer_map": "@weight_learning"}}}
    assert dependencies(experiments) == ["weight_learning"]
    assert dependencies({"c": {"command": "evaluate-base"}}) == []


def test_subspace_summary_averages_by_tier_and_by_module():
    from training.replication_report import subspace_summary

    def row(lang, stack, module, pruned, size=10, ratio=0.5):
        return {"language": lang, "stack": stack, "module": module, "layer": 0, "side": "src", "pruned": pruned,
                "size": size, "score": pruned - ratio * size}

    rows = [row("en", "encoder", "q", 8), row("fr", "encoder", "fc1", 6), row("sw", "encoder", "q", 1),
            row("sw", "decoder", "fc1", 3, size=20), row("en", "decoder", "fc1", 9, size=20)]
    ise = subspace_summary({"mode": "ise", "languages": {"en": "H", "fr": "H", "sw": "V"}, "scores": rows})
    # H encoder: scores 3 and 1 -> 2.0; kept 1 - 14/20 = 30 %. V decoder: 3 - 10 = -7; kept 1 - 3/20 = 85 %.
    assert "| H | encoder | 2.0 | 30.0 % |" in ise and "| V | decoder | -7.0 | 85.0 % |" in ise
    assert "| V | encoder | -4.0 | 90.0 % |" in ise and "| M |" not in ise
    lsp = subspace_summary({"mode": "lsp", "languages": {}, "scores": rows})
    # encoder q: scores 3, -4 -> -0.5; kept 1 - 9/20 = 55 %. decoder fc1: -7, -1 -> -4; kept 1 - 12/40 = 70 %.
    assert "| encoder | q | -0.5 | 55.0 % |" in lsp and "| decoder | fc1 | -4.0 | 70.0 % |" in lsp
    assert "| encoder | fc1 | 1.0 | 40.0 % |" in lsp


def test_direction_comparison_against_hand_computation():
    from training.replication_report import compare, comparison_table, direction_scores, sign_test

    tiers = {"en": "H", "fr": "H", "sw": "V"}
    runs = {("lslo_2-2-8_gps9", 0): {"en-fr": 10, "fr-en": 12, "en-sw": 5, "fr-sw": 4, "sw-en": 3, "sw-fr": 2},
            ("lslo_2-2-8_gps9", 1): {"en-fr": 12, "fr-en": 10, "en-sw": 5, "fr-sw": 6, "sw-en": 3, "sw-fr": 2},
            ("ft_all", 1): {"en-fr": 10, "fr-en": 12, "en-sw": 4, "fr-sw": 3, "sw-en": 3, "sw-fr": 1}}
    results = [{"name": name, "seed": seed, "groups": {},
                "evaluation": {"directions": {d: {"spbleu": v} for d, v in scores.items()}}}
               for (name, seed), scores in runs.items()]
    results.append({"name": "weight_learning", "seed": 0})  # trained, not evaluated: no scores
    a = direction_scores(results, "lslo_2-2-8_gps9")
    assert a == {"en-fr": 11, "fr-en": 11, "en-sw": 5, "fr-sw": 5, "sw-en": 3, "sw-fr": 2}  # mean of the seeds
    c = compare(a, direction_scores(results, "ft_all"), tiers)
    # Differences: H2H +1, -1; H2V +1, +2; V2H 0, +1; all six: 4 wins, 1 loss, 1 tie.
    assert c["H2H"] == {"delta": 0, "wins": 1, "losses": 1, "n": 2, "p": 1.0}
    assert c["H2V"] == {"delta": 1.5, "wins": 2, "losses": 0, "n": 2, "p": 0.5}
    assert c["V2H"]["wins"] == 1 and c["V2H"]["losses"] == 0 and c["V2H"]["p"] == 1.0  # the tie is dropped
    assert c["AVG"]["delta"] == pytest.approx(4 / 6) and c["AVG"]["p"] == pytest.approx(2 * 6 / 32)
    assert set(c) == {"H2H", "H2V", "V2H", "AVG"}
    assert sign_test(9, 1) == pytest.approx(2 * 11 / 1024) and sign_test(0, 0) == 1.0
    table = comparison_table(results, tiers)
    # One column per group, "-" where the languages have no such group.
    assert ("| 2;2;8+WL+GPS(0.9) − Ft-all (Table 1) | 0,1 / 1 | +0.00 (1/2) | - | +1.50 (2/2) | - | - | - "
            "| +0.50 (1/2) | - | - | +0.67 (4/6) |") in table
    assert "Pretrain" not in table.split("\n\n", 1)[1]  # no Pretrain runs: no row for its comparisons
    assert comparison_table(results[:2], tiers) == ""  # one side missing: nothing to compare


def test_table1_sweeps_pick_the_rows_and_the_papers_figures(tmp_path):
    from training.replication_report import GROUPS, PAPER
    from training.replication_sweeps import figure_sweeps, sweep_points, sweep_series

    names = ["lslo_2-2-8_gps9", "lslo_8-8-8", "ft_all", "lslo_2-2-8", "lslo_4-4-4", "lslo_2-2-16_gps9",
             "lslo_4-4-8", "t4_fc_2-2-16_gps9", "lslo_2-2-8_gps5"]
    assert sweep_points(names) == {"rank": [(4.0, "lslo_4-4-4"), (8.0, "lslo_8-8-8")],
                                   "pruning": [(0.0, "lslo_2-2-8"), (0.5, "lslo_2-2-8_gps5"),
                                               (0.9, "lslo_2-2-8_gps9")]}

    def row(h2h, v2v, avg, sd=None):
        return {"stats": {"H2H": (h2h, sd), "V2V": (v2v, sd), "AVG": (avg, sd)}}

    stats = {"lslo_4-4-4": row(13.0, 4.0, 7.0, 0.2), "lslo_2-2-8_gps9": row(12.0, 5.0, 7.2), "ft_all": row(1, 1, 1)}
    series = sweep_series(stats, PAPER, GROUPS, ["lslo_4-4-4", "lslo_16-16-16", "lslo_2-2-8_gps9", "lslo_2-2-8"])
    assert series["rank"][("ours", "H2H")] == [(4.0, 13.0, 0.2)]
    assert series["pruning"][("ours", "AVG")] == [(0.9, 7.2, 0.0)]  # one seed: no error bar
    # The paper's Table 1 for the planned x values: 4;4;4 and 16;16;16 H2H; 2;2;8 and GPS(0.9) V2V.
    assert series["rank"][("paper", "H2H")] == [(4.0, 30.15, 0.0), (16.0, 25.90, 0.0)]
    assert series["pruning"][("paper", "V2V")] == [(0.0, 7.01, 0.0), (0.9, 7.04, 0.0)]
    assert not figure_sweeps(series, tmp_path / "none.png") and not (tmp_path / "none.png").exists()
    stats["lslo_16-16-16"] = row(11.0, 6.0, 7.1)
    assert figure_sweeps(sweep_series(stats, PAPER, GROUPS), tmp_path / "sweeps.png")
    assert (tmp_path / "sweeps.png").stat().st_size > 10_000
