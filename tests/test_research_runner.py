"""The replication runner end to end (``research/replicate.py``): tiny experiments, archived, re-drawn."""

import json
import re

import pytest

from conftest import TRAIN_TIERS
from lslo.adapters.layer_map import LayerMap

pytestmark = pytest.mark.slow


def test_replication_runner_archive_and_report(base_dir, corpus_dir, tmp_path, capsys):
    """Tiny experiments through the runner (one depends on the other's learned layer map), archived; then the
    report and the runner from the archive alone, with the work directory gone."""
    import yaml

    from research.archive import load_archive, read_archived
    from research.replicate import main as replicate

    configs, work, archive = tmp_path / "configs", tmp_path / "work", tmp_path / "archive"
    configs.mkdir()
    common = {"epochs": 1, "max_tokens": 600}
    (configs / "pretrain.yaml").write_text(
        yaml.safe_dump({"command": "evaluate-base", "table": "t1", "row": "Pretrain", "seeds": [0], "settings": {}})
    )
    (configs / "weight_learning.yaml").write_text(
        yaml.safe_dump(
            {
                "command": "weight-learning",
                "table": "f1",
                "row": "WL",
                "seeds": [0],
                "settings": {**common, "ranks": "4"},
            }
        )
    )
    (configs / "lslo_2-2-8.yaml").write_text(
        yaml.safe_dump(
            {
                "command": "finetune",
                "table": "t1",
                "row": "2;2;8+WL",
                "seeds": [0, 1],
                "settings": {**common, "method": "lslo", "ranks": "2;2;8", "layer_map": "@weight_learning"},
            }
        )
    )
    (configs / "ise.yaml").write_text(
        yaml.safe_dump(
            {
                "command": "subspace",
                "table": "f2",
                "row": "ISE",
                "seeds": [0],
                "settings": {
                    "epochs": 2,
                    "max_tokens": 600,
                    "mode": "ise",
                    "ranks": "4",
                    "prune_start": 1,
                    "prune_epochs": 1,
                    "layer_map": "@weight_learning",
                    "bitext": "@stats",
                },
            }
        )
    )
    args = [
        "--configs",
        str(configs),
        "--work",
        str(work),
        "--archive",
        str(archive),
        "--base",
        str(base_dir),
        "--data",
        str(corpus_dir),
        "--languages",
        "en,fr,de,nl",
        "--tiers",
        TRAIN_TIERS,
        "--threads",
        "1",
        "--beam",
        "1",
    ]
    assert replicate(["lslo_2-2-8", "--seed", "1", *args]) == 0  # one seed, and the run it depends on
    assert sorted(p.name for p in archive.iterdir()) == ["lslo_2-2-8-s1.json.gz", "weight_learning-s0.json.gz"]
    assert replicate(["pretrain", "lslo_2-2-8", "ise", "--jobs", "2", *args]) == 0  # two runs at once
    results = json.loads((work / "results.json").read_text())
    assert {(r["name"], r["seed"]) for r in results} == {
        ("pretrain", 0),
        ("weight_learning", 0),
        ("lslo_2-2-8", 0),
        ("lslo_2-2-8", 1),
        ("ise", 0),
    }  # the dependency included
    assert all("evaluation" not in r for r in results)
    learned = read_archived(archive, "weight_learning", 0)
    assert learned["layer_map"] == json.loads(
        (work / "runs" / "weight_learning-s0" / "train" / "layer_map.json").read_text()
    )  # the file's contents, not its path
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
    (configs / "broken.yaml").write_text(
        yaml.safe_dump(
            {
                "command": "finetune",
                "table": "t1",
                "row": "broken",
                "seeds": [0],
                "settings": {**common, "method": "lslo", "ranks": "2;2;x"},
            }
        )
    )
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
    from research.replicate import dependencies

    experiments = {
        "a": {"settings": {"layer_map": "@weight_learning"}},
        "b": {"settings": {"layer_map": "paper"}},
        "c": {"command": "evaluate-base"},
        "d": {"settings": {"layer_map": "@weight_learning"}},
    }
    assert dependencies(experiments) == ["weight_learning"]
    assert dependencies({"c": {"command": "evaluate-base"}}) == []
