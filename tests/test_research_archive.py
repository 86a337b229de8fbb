"""The replication archive (``research/archive.py``): what a run leaves in the repository."""

import gzip
import json

import pytest

from research.archive import archive_path, archive_run, load_archive, read_archived, summary


def _run(tmp_path, name="lslo_2-2-8", seed=0, threads=2):
    run = tmp_path / "work" / f"{name}-s{seed}"
    (run / "train").mkdir(parents=True, exist_ok=True)
    (run / "train" / "layer_map.json").write_text(json.dumps({"encoder": ["src"], "decoder": ["tgt"]}))
    result = {"name": name, "seed": seed, "groups": {"AVG": 7.5}, "layer_map": str(run / "train" / "layer_map.json")}
    if threads is not None:
        result["threads"] = threads
    (run / "result.json").write_text(json.dumps(result))
    (run / "config.yaml").write_text("threads: 1\nseed: 0\n")
    (run / "eval.json").write_text(
        json.dumps(
            {
                "groups_spbleu": {"AVG": 7.5},
                "directions": {"en-fr": {"spbleu": 7.5}},
                "samples": {"en-fr": [["Save", "Enregistrer", "Enregistrer"]]},
                "segments": {
                    "en-fr": {"ids": [0, 1], "hypotheses": ["Enregistrer", "Été"], "bleu_stats": [[1] * 10, [2] * 10]}
                },
            },
            ensure_ascii=False,
        )
    )
    return run


def test_archive_inlines_the_run_files_and_drops_only_the_samples(tmp_path):
    archive = tmp_path / "archive"
    record = archive_run(_run(tmp_path), archive)
    assert record["layer_map"] == {"encoder": ["src"], "decoder": ["tgt"]}  # contents, not a path
    assert record["evaluation"]["segments"]["en-fr"]["hypotheses"] == ["Enregistrer", "Été"]
    assert "samples" not in record["evaluation"] and record["evaluation"]["directions"] == {"en-fr": {"spbleu": 7.5}}
    assert read_archived(archive, "lslo_2-2-8", 0) == record
    assert read_archived(archive, "lslo_2-2-8", 1) is None
    assert summary(record) == {"name": "lslo_2-2-8", "seed": 0, "groups": {"AVG": 7.5}, "threads": 2}
    assert [p.name for p in archive.iterdir()] == ["lslo_2-2-8-s0.json.gz"]  # no partial file left


def test_archive_is_reproducible_and_versioned(tmp_path):
    archive = tmp_path / "archive"
    path = archive_path(archive, "lslo_2-2-8", 0)
    archive_run(_run(tmp_path), archive)
    first = path.read_bytes()
    archive_run(_run(tmp_path), archive)
    assert path.read_bytes() == first  # no time stamp: re-archiving an unchanged run changes no byte
    entry = json.loads(gzip.decompress(first))
    path.write_bytes(gzip.compress(json.dumps({**entry, "format": 99}).encode()))
    with pytest.raises(ValueError, match="archive format 99"):
        read_archived(archive, "lslo_2-2-8", 0)


def test_early_records_take_their_threads_from_the_run_config(tmp_path):
    archive = tmp_path / "archive"
    archive_run(_run(tmp_path, "ft_all", 1, threads=None), archive)
    archive_run(_run(tmp_path, "ft_all", 0), archive)
    assert [(r["name"], r["seed"], r["threads"]) for r in load_archive(archive)] == [("ft_all", 0, 2), ("ft_all", 1, 1)]
