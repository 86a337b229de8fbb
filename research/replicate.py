"""``python -m research.replicate``: the paper's experiments in miniature, from config files, in one command.

Run it from the repository root (``research`` is not installed by pip). Each ``research/configs/mini/*.yaml``
names a training command, its seeds, the paper table and row it plays, and the command's settings. The runner
builds the miniature's data (the demo corpus, deterministic), trains every (experiment, seed) that has no result
yet, evaluates it on devtest, and archives the run (``research/archive.py``: a gzipped JSON per run in
``research/runs/``, kept in the repository). ``--report`` renders tables (mean and spread over seeds), bootstrap
intervals and figures from the archive alone, so they can be re-drawn, and the grid continued, on a checkout
without the work directory.

The base is the demo's (``adapters/demo/base``): a tiny M2M100 pretrained on offline data in which the
resource tiers are real (High languages got all their training lines, Medium 35 %, Very-low 6 %).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from research.archive import archive_run, load_archive, read_archived, summary
from research.children import ChildProcesses, terminate_on_sigterm

# Paths relative to the working directory: the repository root, where ``python -m research.replicate`` runs.
CONFIGS = Path("research/configs/mini")
ARCHIVE = Path("research/runs")
WORK = Path("runs/mini")
DEMO_BASE = Path("adapters/demo/base")
LANGS = "en,fr,de,it,zh,nl,ja,ko,af,hy,sw,cy"
TIERS = "H:en,fr,de,it;M:zh,nl,ja,ko;V:af,hy,sw,cy"


def load_experiments(names: list[str] | None = None, configs: Path = CONFIGS) -> dict[str, dict[str, Any]]:
    paths = {p.stem: p for p in sorted(configs.glob("*.yaml"))}
    unknown = sorted(set(names or []) - set(paths))
    if unknown:
        raise SystemExit(f"unknown experiment(s) {', '.join(unknown)}; known: {', '.join(paths)}")
    return {
        name: yaml.safe_load(path.read_text(encoding="utf-8"))
        for name, path in paths.items()
        if not names or name in names
    }


def ensure_data(work: Path, python: str, children: ChildProcesses) -> Path:
    """The demo corpus (deterministic: the same files as adapters/demo/build.sh writes)."""
    data = work / "data"
    if not (data / "stats.json").is_file():
        children.run(
            [
                python,
                "-m",
                "training",
                "corpus",
                "--out",
                str(data),
                "--languages",
                LANGS,
                "--tiers",
                TIERS,
                "--train-share",
                "H:1,M:0.35,V:0.06",
                "--dev",
                "400",
                "--devtest",
                "200",
                "--seed",
                "0",
            ]
        )
    return data


@dataclass(frozen=True)
class Grid:
    work: Path
    base: Path
    data: Path
    configs: Path = CONFIGS
    archive: Path = ARCHIVE
    languages: str = LANGS
    tiers: str = TIERS
    threads: int = 2
    beam: int = 5
    python: str = sys.executable
    children: ChildProcesses = field(default_factory=ChildProcesses, compare=False)  # stopped with the runner


def run_one(grid: Grid, name: str, spec: dict[str, Any], seed: int) -> dict[str, Any]:
    work, base, data, python, threads = grid.work, grid.base, grid.data, grid.python, grid.threads
    out = work / "runs" / f"{name}-s{seed}"
    result_file = out / "result.json"
    archived = read_archived(grid.archive, name, seed)
    if archived is not None:
        return archived
    if result_file.is_file():  # finished before it was archived
        return archive_run(out, grid.archive)
    out.mkdir(parents=True, exist_ok=True)
    # The paper's recipe: train on all of FLORES dev, ship the last epoch (the defaults hold out validation).
    paper = {"split": "dev", "valid_share": 0, "select": "last"} if spec["command"] != "evaluate-base" else {}
    settings = {
        "languages": grid.languages,
        "tiers": grid.tiers,
        **paper,
        **spec.get("settings", {}),
        "seed": seed,
        "threads": threads,
        "base": str(base),
        "data": str(data),
        "out": str(out / "train"),
        "progress": False,
    }
    if settings.get("bitext") == "@stats":  # bitext sizes of the miniature: training lines per language
        settings["bitext"] = str(data / "stats.json")
    if str(settings.get("layer_map", "")).startswith("@"):  # another experiment's learned layer map
        source = settings["layer_map"][1:]
        learned = run_one(grid, source, load_experiments([source], grid.configs)[source], 0)
        layer_map = out / f"layer_map_from_{source}.json"
        layer_map.write_text(json.dumps(learned["layer_map"], indent=1), encoding="utf-8")
        settings["layer_map"] = str(layer_map)
    if spec["command"] == "evaluate-base":
        settings = {}
    config = out / "config.yaml"
    config.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    started = time.time()
    resume: list[str] = []
    if spec["command"] != "evaluate-base":
        resume = ["--resume"] if (out / "train" / "checkpoint").exists() else []
        grid.children.run([python, "-m", "training", spec["command"], "--config", str(config), *resume])
    train_seconds = time.time() - started
    record: dict[str, Any] = {
        "name": name,
        "seed": seed,
        "table": spec.get("table"),
        "row": spec.get("row"),
        "command": spec["command"],
        "settings": spec.get("settings", {}),
        "train_seconds": round(train_seconds, 1),
        "threads": threads,
    }
    if spec["command"] in ("finetune", "evaluate-base"):
        record.update(evaluate_run(grid, spec, out))
        summary = out / "train" / "summary.json"
        if summary.is_file():
            s = json.loads(summary.read_text())
            record.update(
                parameters=s.get("parameters"), nonzero=s.get("nonzero"), per_epoch_eval=s.get("per_epoch_eval")
            )
            if resume and "seconds" in s:  # the training's own clock, the interrupted processes included
                record.update(train_seconds=s["seconds"], resumed=True)
    for extra in ("layer_map.json", "scores.json"):
        if (out / "train" / extra).is_file():
            record[extra.split(".")[0]] = str(out / "train" / extra)
    result_file.write_text(json.dumps(record, indent=1), encoding="utf-8")
    return archive_run(out, grid.archive)


def evaluate_run(grid: Grid, spec: dict[str, Any], out: Path) -> dict[str, Any]:
    """Evaluate a trained run on devtest into ``out/eval.json`` (per-segment statistics included); the record's
    score fields."""
    evaluate = [
        grid.python,
        "-m",
        "training",
        "evaluate",
        "--base",
        str(grid.base),
        "--data",
        str(grid.data),
        "--split",
        "devtest",
        "--beam",
        str(grid.beam),
        "--threads",
        str(grid.threads),
        "--no-progress",
        "--json",
        str(out / "eval.json"),
        "--languages",
        grid.languages,
        "--tiers",
        grid.tiers,
    ]
    if spec["command"] == "finetune" and spec["settings"].get("method") == "full":
        evaluate += ["--model", str(out / "train" / "model")]
    elif spec["command"] == "finetune":
        evaluate += ["--bundle", str(out / "train" / "bundle")]
    started = time.time()
    grid.children.run(evaluate)
    scores = json.loads((out / "eval.json").read_text())
    return {
        "eval_seconds": round(time.time() - started, 1),
        "groups": scores["groups_spbleu"],
        "chrf_groups": scores["groups_chrf++"],
    }


def rescore(grid: Grid, runs: list[tuple[str, dict[str, Any], int]]) -> list[str]:
    """Re-evaluate finished runs whose ``eval.json`` predates per-segment statistics (for the paired bootstrap);
    report any group score that changed (evaluation is deterministic, so none should)."""
    changed = []
    for name, spec, seed in runs:
        out = grid.work / "runs" / f"{name}-s{seed}"
        result_file, eval_file = out / "result.json", out / "eval.json"
        if spec["command"] not in ("finetune", "evaluate-base") or not result_file.is_file():
            continue
        if eval_file.is_file() and "segments" in json.loads(eval_file.read_text()):
            continue
        print(f"== {name} seed {seed}: re-evaluating", flush=True)
        record = json.loads(result_file.read_text())
        before = record.get("groups", {})
        record.update(evaluate_run(grid, spec, out))
        changed += [
            f"{name} seed {seed} {g}: {before[g]:.2f} -> {v:.2f}"
            for g, v in record["groups"].items()
            if g in before and abs(before[g] - v) > 1e-6
        ]
        result_file.write_text(json.dumps(record, indent=1), encoding="utf-8")
        archive_run(out, grid.archive)
    return changed


def dependencies(experiments: dict[str, dict[str, Any]]) -> list[str]:
    """Experiments whose result others use (``layer_map: "@name"``), in name order."""
    return sorted(
        {
            str(spec.get("settings", {}).get("layer_map"))[1:]
            for spec in experiments.values()
            if str(spec.get("settings", {}).get("layer_map", "")).startswith("@")
        }
    )


def run_all(grid: Grid, runs: list[tuple[str, dict[str, Any], int]], jobs: int) -> list[str]:
    """Every run, ``jobs`` at a time (each in its own training process); the failures, as text."""
    if jobs == 1:
        for name, spec, seed in runs:
            print(f"== {name} seed {seed}", flush=True)
            run_one(grid, name, spec, seed)
        return []
    failures = []
    with cf.ThreadPoolExecutor(jobs) as pool:
        try:
            # Dependencies (seed 0) first, so that no two workers train the same one.
            needed = dependencies({name: spec for name, spec, _ in runs})
            first = [(name, spec, 0) for name, spec in load_experiments(needed, grid.configs).items()] if needed else []
            for stage in (first, [r for r in runs if r not in first]):
                futures = {}
                for name, spec, seed in stage:
                    print(f"== {name} seed {seed} (queued)", flush=True)
                    futures[pool.submit(run_one, grid, name, spec, seed)] = (name, seed)
                for future in cf.as_completed(futures):
                    name, seed = futures[future]
                    try:
                        future.result()
                        print(f"== {name} seed {seed} done", flush=True)
                    except (subprocess.CalledProcessError, OSError, ValueError) as err:
                        failures.append(f"{name} seed {seed}: {err}")
                        print(f"== {name} seed {seed} FAILED: {err}", flush=True)
                if failures:
                    break
        except BaseException:  # Ctrl-C or SIGTERM: the pool would otherwise wait for the running trainings
            pool.shutdown(wait=False, cancel_futures=True)
            grid.children.stop_all()
            raise
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m research.replicate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("experiments", nargs="*", help="config names (default: all)")
    parser.add_argument("--work", type=Path, default=WORK, help=f"runs' work directory [default: {WORK}]")
    parser.add_argument("--base", type=Path, default=DEMO_BASE, help=f"base model [default: {DEMO_BASE}]")
    parser.add_argument("--data", type=Path, default=None, help="data directory (default: build the demo corpus)")
    parser.add_argument("--configs", type=Path, default=CONFIGS, help=f"experiment configs [default: {CONFIGS}]")
    parser.add_argument(
        "--archive",
        type=Path,
        default=ARCHIVE,
        help=f"finished runs, written by runs and read by --list and --report [default: {ARCHIVE}]",
    )
    parser.add_argument("--languages", default=LANGS)
    parser.add_argument("--tiers", default=TIERS)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads of each run")
    parser.add_argument(
        "--jobs", type=int, default=1, help="runs at once, each a process (on CPU keep jobs x threads <= cores)"
    )
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=None, help="at most this many seeds per experiment")
    parser.add_argument(
        "--seed",
        type=int,
        action="append",
        default=None,
        dest="only_seeds",
        help="only this seed of each experiment's seeds (repeatable)",
    )
    parser.add_argument("--list", action="store_true", help="list the experiments and their state")
    parser.add_argument("--report", type=Path, default=None, help="write the Markdown report and figures here")
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="re-evaluate finished runs evaluated before per-segment statistics were kept",
    )
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.threads < 1:
        parser.error("--jobs and --threads must be at least 1")
    python = sys.executable
    experiments = load_experiments(args.experiments or None, args.configs)
    if args.list:
        for name, spec in experiments.items():
            done = [s for s in spec.get("seeds", [0]) if read_archived(args.archive, name, s) is not None]
            print(
                f"{name:34s} {spec.get('table', ''):4s} {spec.get('row', ''):32s} seeds {spec.get('seeds', [0])} "
                f"done {done}"
            )
        return 0
    if args.report is not None:
        from research.report import write_report

        write_report(load_archive(args.archive), experiments, args.report, args.tiers)
        return 0
    children = ChildProcesses()
    runs = [
        (name, spec, seed)
        for name, spec in experiments.items()
        for seed in spec.get("seeds", [0])[: args.seeds]
        if args.only_seeds is None or seed in args.only_seeds
    ]
    with terminate_on_sigterm():
        try:
            data = args.data or ensure_data(args.work, python, children)
            grid = Grid(
                args.work,
                args.base,
                data,
                args.configs,
                args.archive,
                args.languages,
                args.tiers,
                args.threads,
                args.beam,
                python,
                children,
            )
            if args.rescore:
                changed = rescore(grid, runs)
                print(
                    "scores changed on re-evaluation:\n  " + "\n  ".join(changed)
                    if changed
                    else "re-evaluation reproduced every score",
                    file=sys.stderr if changed else sys.stdout,
                )
                return 1 if changed else 0
            failures = run_all(grid, runs, args.jobs)
        finally:  # killed or interrupted: no corpus, training or evaluation process goes on without the runner
            children.stop_all()
    # Every archived run, this invocation's and earlier ones (dependencies included), without the evaluations.
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "results.json").write_text(
        json.dumps([summary(r) for r in load_archive(args.archive)], indent=1), encoding="utf-8"
    )
    if failures:
        print("failed runs (rerun to retry; finished runs are kept):\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
