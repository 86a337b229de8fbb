"""The replication's durable record: one gzipped JSON file per finished run, kept in the repository.

A run's work directory (model or bundle, checkpoints, logs) is large and stays out of version control. Everything
the report needs goes into the archive instead: the run's result record, its learned layer map or subspace
scores, and its evaluation (per-direction scores, and per segment the hypothesis and its BLEU statistics for the
paired bootstrap). With it, tables, figures and bootstrap intervals are re-drawn, and finished runs skipped, on
any checkout: results survive the machine that computed them.

An archived record is the run's ``result.json`` with ``layer_map`` and ``scores`` holding the files' contents
(not their paths) and ``evaluation`` holding ``eval.json`` without its few display samples.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import yaml

FORMAT = 1
INLINED = ("layer_map", "scores")  # result fields that name a file of the run; the archive holds the contents


def archive_path(archive: Path, name: str, seed: int) -> Path:
    return archive / f"{name}-s{seed}.json.gz"


def read_archived(archive: Path, name: str, seed: int) -> dict[str, Any] | None:
    """The archived record of one run, or None if it was not archived."""
    path = archive_path(archive, name, seed)
    if not path.is_file():
        return None
    return _read(path)


def _read(path: Path) -> dict[str, Any]:
    entry = json.loads(gzip.decompress(path.read_bytes()).decode("utf-8"))
    if entry.get("format") != FORMAT:
        raise ValueError(f"{path}: archive format {entry.get('format')!r}, this code reads {FORMAT}")
    return entry["record"]


def archive_run(run_dir: Path, archive: Path) -> dict[str, Any]:
    """Archive the finished run in ``run_dir`` (its ``result.json``, the files it names, ``eval.json``); the
    archived record. Written atomically and byte-for-byte reproducibly (no time stamp in the gzip header)."""
    record: dict[str, Any] = json.loads((run_dir / "result.json").read_text(encoding="utf-8"))
    config = run_dir / "config.yaml"  # the settings the run was started with; early records lack the threads
    if "threads" not in record and config.is_file():
        record["threads"] = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("threads")
    for key in INLINED:
        if key in record:
            record[key] = json.loads(Path(record[key]).read_text(encoding="utf-8"))
    evaluation = run_dir / "eval.json"
    if evaluation.is_file():
        record["evaluation"] = {
            k: v for k, v in json.loads(evaluation.read_text(encoding="utf-8")).items() if k != "samples"
        }
    archive.mkdir(parents=True, exist_ok=True)
    path = archive_path(archive, record["name"], record["seed"])
    data = json.dumps({"format": FORMAT, "record": record}, ensure_ascii=False, separators=(",", ":"))
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(gzip.compress(data.encode("utf-8"), compresslevel=9, mtime=0))
    partial.replace(path)
    return record


def load_archive(archive: Path) -> list[dict[str, Any]]:
    """Every archived record, in file-name order."""
    return [_read(path) for path in sorted(archive.glob("*.json.gz"))]


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """The record without its evaluation and inlined files: what ``results.json`` lists."""
    return {k: v for k, v in record.items() if k not in ("evaluation", *INLINED)}
