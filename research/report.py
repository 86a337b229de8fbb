"""Tables and figures of the miniature replication, from the archived runs (``research/archive.py``).

Writes ``<out>/replication_tables.md`` (Tables 1, 3, 4 as in the paper, mean ± sample standard deviation
over seeds, with the paper's figures beside) and figures into ``<out>/figures/``.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from lslo.languages.tables import parse_tier_assignment
from lslo.pruning import SubspaceScore
from research.sweeps import figure_sweeps, sweep_series
from training.bootstrap import STATS, paired_bootstrap
from training.metrics import group_name
from training.plots import plot_weights, plt, save_figure
from training.recipes.subspace import plot_average

GROUPS = ["H2H", "H2M", "H2V", "M2H", "M2M", "M2V", "V2H", "V2M", "V2V", "AVG"]

# The paper's Tables 1, 3 and 4 (lang12, M2M-124 615M, FLORES-101), spBLEU.
PAPER = {
    "Pretrain": [31.76, 20.06, 5.56, 20.71, 17.12, 3.47, 9.24, 5.03, 0.52, 12.26],
    "Ft-all": [29.29, 20.46, 12.53, 19.28, 17.14, 8.95, 15.23, 11.02, 6.66, 15.43],
    "4;4;4+WL": [30.15, 20.35, 11.76, 19.49, 17.04, 8.13, 14.58, 10.02, 5.66, 15.03],
    "8;8;8+WL": [28.49, 19.26, 13.01, 18.39, 16.05, 9.21, 14.28, 9.86, 6.94, 14.86],
    "16;16;16+WL": [25.90, 17.82, 14.32, 16.86, 14.93, 10.57, 13.80, 9.71, 8.46, 14.55],
    "2;2;8+WL": [31.33, 21.07, 13.07, 20.16, 17.58, 9.3, 15.95, 10.89, 7.01, 16.05],
    "2;2;8+WL+GPS(0.1)": [31.37, 21.21, 12.90, 20.22, 17.63, 9.18, 15.93, 10.90, 6.96, 16.04],
    "2;2;8+WL+GPS(0.3)": [31.53, 21.33, 12.88, 20.32, 17.67, 9.18, 15.93, 10.84, 6.99, 16.08],
    "2;2;8+WL+GPS(0.5)": [31.76, 21.5, 12.96, 20.49, 17.94, 9.25, 16.08, 10.98, 7.1, 16.23],
    "2;2;8+WL+GPS(0.7)": [32.22, 21.81, 12.86, 20.92, 18.10, 9.22, 16.28, 11.12, 6.94, 16.38],
    "2;2;8+WL+GPS(0.9)": [33.13, 22.33, 12.93, 21.49, 18.58, 9.23, 16.59, 11.38, 7.04, 16.73],
    "2;2;16+WL+GPS(0.9)": [33.06, 22.27, 14.24, 21.44, 18.58, 10.49, 17.44, 12.02, 8.42, 17.33],
    "2;2;8+SRC+GPS(0.9)": [33.06, 22.40, 12.42, 21.41, 18.59, 8.76, 16.41, 11.24, 6.59, 16.52],
    "2;2;8+TGT+GPS(0.9)": [32.97, 22.34, 13.05, 21.40, 18.53, 9.23, 11.91, 7.69, 5.05, 15.52],
    "Only attn 2;2;16+WL+GPS(0.9)": [33.16, 22.25, 12.00, 21.45, 18.61, 8.34, 15.91, 10.76, 5.88, 16.24],
    "Only fc 2;2;16+WL+GPS(0.9)": [33.29, 22.19, 12.64, 21.60, 18.56, 8.83, 17.33, 11.65, 6.90, 16.76],
}


# Pairs of experiments whose difference a claim rests on: (A, B, what A - B tests).
COMPARISONS = [
    ("ft_all", "pretrain", "Ft-all − Pretrain"),
    ("lslo_2-2-8_gps9", "pretrain", "2;2;8+WL+GPS(0.9) − Pretrain"),
    ("lslo_2-2-8_gps9", "ft_all", "2;2;8+WL+GPS(0.9) − Ft-all (Table 1)"),
    ("lslo_2-2-8_gps9", "lslo_2-2-8", "GPS(0.9) − no pruning (Table 1)"),
    ("lslo_8-8-8", "lslo_4-4-4", "8;8;8 − 4;4;4 (Table 1)"),
    ("lslo_16-16-16", "lslo_8-8-8", "16;16;16 − 8;8;8 (Table 1)"),
    ("lslo_16-16-16", "lslo_4-4-4", "16;16;16 − 4;4;4 (Table 1)"),
    ("lslo_2-2-8", "lslo_8-8-8", "2;2;8 − 8;8;8, no pruning (Table 1)"),
    ("lslo_2-2-8", "lslo_4-4-4", "2;2;8 − 4;4;4, same budget, no pruning (Table 1)"),
    ("lslo_2-2-8_gps9", "lslo_2-2-8_gps7", "GPS(0.9) − GPS(0.7) (Table 1)"),
    ("lslo_2-2-8_gps7", "lslo_2-2-8_gps5", "GPS(0.7) − GPS(0.5) (Table 1)"),
    ("lslo_2-2-8_gps9", "lslo_2-2-8_gps5", "GPS(0.9) − GPS(0.5) (Table 1)"),
    ("lslo_2-2-8_gps5", "lslo_2-2-8", "GPS(0.5) − no pruning (Table 1)"),
    ("lslo_2-2-8_gps1", "lslo_2-2-8", "GPS(0.1) − no pruning (Table 1)"),
    ("lslo_2-2-16_gps9", "lslo_2-2-8_gps9", "2;2;16 − 2;2;8, both GPS(0.9) (Table 1)"),
    ("lslo_2-2-16_gps9", "ft_all", "2;2;16+WL+GPS(0.9) − Ft-all (Table 1)"),
    ("lslo_2-2-8_gps9", "t3_tgt_gps9", "learned map − all-target (Table 3)"),
    ("lslo_2-2-8_gps9", "t3_src_gps9", "learned map − all-source encoder (Table 3)"),
    ("t3_src_gps9", "t3_tgt_gps9", "all-source − all-target encoder (Table 3)"),
    ("t4_fc_2-2-16_gps9", "t4_attn_2-2-16_gps9", "only fc − only attn (Table 4)"),
    ("t4_fc_2-2-16_gps9", "lslo_2-2-8_gps9", "only fc 2;2;16 − all modules 2;2;8 (Table 4)"),
    ("t4_attn_2-2-16_gps9", "lslo_2-2-8_gps9", "only attn 2;2;16 − all modules 2;2;8 (Table 4)"),
]


def aggregate(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per experiment: mean and sample sd of each group over seeds, and the seeds used."""
    by_name: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        if "groups" in r:
            by_name[r["name"]].append(r)
    out = {}
    for name, runs in by_name.items():
        stats = {}
        for g in GROUPS:
            values = [r["groups"][g] for r in runs if g in r["groups"]]
            if values:
                sd = statistics.stdev(values) if len(values) > 1 else None
                stats[g] = (statistics.mean(values), sd)
        out[name] = {
            "row": runs[0]["row"],
            "table": runs[0]["table"],
            "seeds": sorted(r["seed"] for r in runs),
            "stats": stats,
            "parameters": runs[0].get("parameters"),
            "nonzero": runs[0].get("nonzero"),
            "train_seconds": statistics.mean(r["train_seconds"] for r in runs),
        }
    return out


def _cell(value: tuple[float, float | None] | None) -> str:
    if value is None:
        return "-"
    mean, sd = value
    return f"{mean:.2f}" if sd is None else f"{mean:.2f} ± {sd:.2f}"


def table(rows: list[dict[str, Any]], title: str) -> str:
    head = "| Method | #Params (non-zero) | seeds | " + " | ".join(GROUPS) + " |"
    rule = "|---|---:|---|" + "---:|" * len(GROUPS)
    lines = [f"**{title}**", "", head, rule]
    for r in rows:
        params = "-" if not r.get("parameters") else f"{r['parameters'] / 1e6:.2f}M ({r['nonzero'] / 1e6:.2f}M)"
        lines.append(
            f"| {r['row']} | {params} | {','.join(map(str, r['seeds']))} | "
            + " | ".join(_cell(r["stats"].get(g)) for g in GROUPS)
            + " |"
        )
    return "\n".join(lines)


def paper_table(rows: list[str], title: str) -> str:
    lines = [f"**{title}**", "", "| Method | " + " | ".join(GROUPS) + " |", "|---|" + "---:|" * len(GROUPS)]
    lines += [f"| {r} | " + " | ".join(f"{v:.2f}" for v in PAPER[r]) + " |" for r in rows if r in PAPER]
    return "\n".join(lines)


def _evaluations(results: list[dict[str, Any]], name: str) -> list[dict[str, Any] | None]:
    """The evaluation (``eval.json``) of each evaluated seed of one experiment (None where it was not kept)."""
    return [r.get("evaluation") for r in results if r["name"] == name and "groups" in r]


def direction_scores(results: list[dict[str, Any]], name: str) -> dict[str, float]:
    """{"en-fr": spBLEU, ...} of one experiment from its runs' evaluations, the mean over its seeds."""
    per_seed = [
        {d: v["spbleu"] for d, v in e["directions"].items()} for e in _evaluations(results, name) if e is not None
    ]
    if not per_seed:
        return {}
    return {d: statistics.mean(s[d] for s in per_seed) for d in per_seed[0] if all(d in s for s in per_seed)}


def sign_test(wins: int, losses: int) -> float:
    """Two-sided sign test p-value (ties dropped): how likely a split at least this uneven is by chance."""
    return float(scipy_stats.binomtest(wins, wins + losses, 0.5).pvalue) if wins + losses else 1.0


def compare(a: dict[str, float], b: dict[str, float], tiers: dict[str, str]) -> dict[str, dict[str, float]]:
    """Per group (and AVG): the mean per-direction difference A − B, how many directions A wins and loses, and the
    sign test's p. The mean difference equals the difference of the group columns, as groups are direction means."""
    diffs: dict[str, list[float]] = defaultdict(list)
    for direction in sorted(set(a) & set(b)):
        src, _, tgt = direction.partition("-")
        if src in tiers and tgt in tiers:
            diffs[group_name(tiers[src], tiers[tgt])].append(a[direction] - b[direction])
            diffs["AVG"].append(a[direction] - b[direction])
    out = {}
    for group in GROUPS:
        if diffs.get(group):
            d = diffs[group]
            wins, losses = sum(x > 0 for x in d), sum(x < 0 for x in d)
            out[group] = {
                "delta": statistics.mean(d),
                "wins": wins,
                "losses": losses,
                "n": len(d),
                "p": sign_test(wins, losses),
            }
    return out


def comparison_table(results: list[dict[str, Any]], tiers: dict[str, str]) -> str:
    """The differences the claims rest on, direction by direction: does A beat B in most directions of a group,
    or only on average?"""
    head = "| A − B | seeds A / B | " + " | ".join(GROUPS) + " |"
    lines = [head, "|---|---|" + "---:|" * len(GROUPS)]
    seeds = defaultdict(list)
    for r in results:
        if "groups" in r:
            seeds[r["name"]].append(str(r["seed"]))
    for name_a, name_b, label in COMPARISONS:
        a, b = direction_scores(results, name_a), direction_scores(results, name_b)
        if not a or not b:
            continue
        found = compare(a, b, tiers)
        cells = [
            f"{c['delta']:+.2f} ({c['wins']}/{c['n']}){'†' if c['p'] < 0.05 else ''}" if c else "-"
            for c in (found.get(g) for g in GROUPS)
        ]
        lines.append(
            f"| {label} | {','.join(sorted(seeds[name_a]))} / {','.join(sorted(seeds[name_b]))} | "
            + " | ".join(cells)
            + " |"
        )
    if len(lines) == 2:
        return ""
    return (
        "**Differences direction by direction**: the mean spBLEU difference A − B (per-direction scores "
        "averaged over each side's seeds), in parentheses the directions where A scores higher out of the "
        "group's directions; † where a two-sided sign test puts the split at p < 0.05 (the directions of a "
        "group share languages, so they are not independent and p is optimistic).\n\n" + "\n".join(lines)
    )


def load_segment_statistics(results: list[dict[str, Any]], name: str) -> dict[str, list[np.ndarray]]:
    """{"en-fr": [one ``[segments, 10]`` array of BLEU statistics per seed]} of one experiment, indexed by
    segment id; {} if a seed's evaluation has no per-segment statistics (evaluated before they were kept:
    ``python -m research.replicate --rescore`` adds them)."""
    per_direction: dict[str, list[np.ndarray]] = defaultdict(list)
    for evaluation in _evaluations(results, name):
        segments = (evaluation or {}).get("segments")
        if not segments:
            return {}
        for direction, rows in segments.items():
            table_ = np.zeros((max(rows["ids"], default=-1) + 1, STATS))
            table_[rows["ids"]] = rows["bleu_stats"]
            per_direction[direction].append(table_)
    return dict(per_direction)


def _by_seed(side: dict[str, list[np.ndarray]], keys: list[str], size: int) -> list[np.ndarray]:
    """One ``[directions, segments, 10]`` array per seed, directions in ``keys`` order, padded to ``size``."""
    return [
        np.stack([np.pad(side[d][seed], ((0, size - side[d][seed].shape[0]), (0, 0))) for d in keys])
        for seed in range(len(side[keys[0]]))
    ]


def bootstrap_table(results: list[dict[str, Any]], tiers: dict[str, str], samples: int = 1000) -> str:
    """The differences of COMPARISONS once more, with a paired bootstrap over devtest's segments (seeds averaged
    inside each resample); only pairs whose runs all kept per-segment statistics."""
    lines = ["| A − B | " + " | ".join(GROUPS) + " |", "|---|" + "---:|" * len(GROUPS)]
    size = 0
    for name_a, name_b, label in COMPARISONS:
        a, b = load_segment_statistics(results, name_a), load_segment_statistics(results, name_b)
        keys = [d for d in sorted(set(a) & set(b)) if all(x in tiers for x in d.split("-"))]
        if not keys:
            continue
        size = max(x.shape[0] for d in keys for x in (*a[d], *b[d]))  # segment ids of the split
        groups = [group_name(tiers[d.split("-")[0]], tiers[d.split("-")[1]]) for d in keys]
        found = paired_bootstrap(_by_seed(a, keys, size), _by_seed(b, keys, size), groups, samples)
        cells = [
            f"{c['delta']:+.2f} [{c['low']:+.2f}, {c['high']:+.2f}]{'‡' if c['p'] < 0.05 else ''}" if c else "-"
            for c in (found.get(g) for g in GROUPS)
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if len(lines) == 2:
        return ""
    return (
        f"**Paired bootstrap over devtest's segments** ({samples} resamples of the {size} segment ids, the same "
        "ids in every direction and for both sides, each side's seeds averaged inside a resample): the "
        "difference A − B and its 95 % interval; ‡ where the interval excludes 0 (two-sided p < 0.05). This "
        "measures test-set noise only; the spread over seeds is in the tables above.\n\n" + "\n".join(lines)
    )


def _kept(group: list[dict[str, Any]]) -> float:
    """Per cent of the group's B weights left unpruned."""
    return 100 * (1 - sum(r["pruned"] for r in group) / sum(r["size"] for r in group))


def _score(group: list[dict[str, Any]]) -> float:
    return statistics.mean(r["score"] for r in group)


def subspace_summary(scores: dict[str, Any]) -> str:
    """The numbers behind Figures 2 and 4: Eq. 6's score (pruned − P·size; low = more demand) and the share of
    each B matrix kept, averaged over layers, sides and modules by tier (ISE) or over layers, sides and languages
    by module (LSP)."""
    rows = scores["scores"]
    if scores["mode"] == "ise":
        tier_of = scores["languages"]
        lines = ["| tier | stack | mean score (Eq. 6) | B weights kept |", "|---|---|---:|---:|"]
        for tier in ("H", "M", "V"):
            for stack in ("encoder", "decoder"):
                group = [r for r in rows if tier_of.get(r["language"]) == tier and r["stack"] == stack]
                if group:
                    lines.append(f"| {tier} | {stack} | {_score(group):.1f} | {_kept(group):.1f} % |")
        return "\n".join(lines)
    lines = ["| stack | module | mean score (Eq. 6) | B weights kept |", "|---|---|---:|---:|"]
    for stack in ("encoder", "decoder"):
        for module in dict.fromkeys(r["module"] for r in rows if r["stack"] == stack):
            group = [r for r in rows if r["stack"] == stack and r["module"] == module]
            lines.append(f"| {stack} | {module} | {_score(group):.1f} | {_kept(group):.1f} % |")
    return "\n".join(lines)


def figure3(results: list[dict[str, Any]], pretrain: dict[str, Any] | None, path: Path) -> None:
    """Figure 3: H2H and V2V spBLEU per epoch, every run (and seed) that evaluated per epoch."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, group in zip(axes, ("H2H", "V2V")):
        for r in sorted(results, key=lambda r: (r["row"], r["seed"])):
            history = r.get("per_epoch_eval") or []
            if history:
                ax.plot(
                    [h["epoch"] for h in history],
                    [h.get(group) for h in history],
                    marker="o",
                    label=f"{r['row']}, seed {r['seed']}",
                    alpha=1.0 if r["seed"] == 0 else 0.6,
                )
        if pretrain is not None and group in pretrain.get("groups", {}):
            ax.axhline(pretrain["groups"][group], color="grey", linestyle="--", label="Pretrain (all of devtest)")
        ax.set_title(f"{group} spBLEU per epoch (30 segments per direction)")
        ax.set_xlabel("Epoch")
        ax.set_ylabel("spBLEU")
    if axes[1].get_legend_handles_labels()[0]:
        axes[1].legend(fontsize=7)
    save_figure(fig, path)


def write_report(results: list[dict[str, Any]], experiments: dict[str, dict[str, Any]], out: Path, tiers: str) -> Path:
    """The tables (``<out>/replication_tables.md``), their numbers as JSON and the figures, from archived runs."""
    stats = aggregate(results)
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    rank = {row: i for i, row in enumerate(PAPER)}  # the paper's row order, then ours
    order = sorted(experiments, key=lambda n: rank.get(experiments[n].get("row", ""), len(rank)))
    rows = {t: [stats[n] for n in order if n in stats and stats[n]["table"] == t] for t in ("t1", "t3", "t4")}
    t3 = [stats[n] for n in ("lslo_2-2-8_gps9",) if n in stats] + rows["t3"]
    t4 = [stats[n] for n in ("lslo_2-2-8_gps9", "lslo_2-2-16_gps9") if n in stats] + rows["t4"]
    parts = [
        table(rows["t1"], "Table 1 (miniature): spBLEU on devtest by resource group, beam 5"),
        paper_table([r["row"] for r in rows["t1"]], "Table 1 (paper, lang12 on M2M-124 615M)"),
        table(t3, "Table 3 (miniature): index strategies"),
        paper_table([r["row"] for r in t3], "Table 3 (paper)"),
        table(t4, "Table 4 (miniature): where to apply LSLo"),
        paper_table([r["row"] for r in t4], "Table 4 (paper)"),
    ]
    problems: list[str] = []
    tier_of = parse_tier_assignment(tiers, problems)
    if problems:
        raise ValueError("; ".join(problems))
    parts += [t for t in (comparison_table(results, tier_of), bootstrap_table(results, tier_of)) if t]
    by_name = {r["name"]: r for r in results if r["seed"] == 0}
    if "weight_learning" in by_name and "layer_map" in by_name["weight_learning"]:
        data = by_name["weight_learning"]["layer_map"]
        plot_weights(
            data["weights"], figures / "figure1_weight_learning.png", "Weight Learning in the miniature (Figure 1)"
        )
        parts.append(
            f"Learned layer map: `{data['describe']}`; weights (src, tgt) per layer: "
            f"encoder {[[round(a, 3), round(b, 3)] for a, b in data['weights']['encoder']]}, "
            f"decoder {[[round(a, 3), round(b, 3)] for a, b in data['weights']['decoder']]}."
        )
    subspace = {
        name: by_name[name]["scores"] for name in ("ise", "lsp") if name in by_name and "scores" in by_name[name]
    }
    for name, target, title in (
        ("ise", "figure2_ise.png", "Figure 2 (miniature) in numbers: by resource tier"),
        ("lsp", "figure4_lsp.png", "Figure 4 (miniature) in numbers: by module"),
    ):
        if name in subspace:  # figures re-drawn from the scores, not copied from the run
            data = subspace[name]
            plot_average(
                [SubspaceScore(**row) for row in data["scores"]], data["mode"], data["languages"], figures / target
            )
            parts.append(f"**{title}**\n\n" + subspace_summary(data))
    if "ise" in subspace:
        lines = ["| module | Pearson r | p-value |", "|---|---:|---:|"]
        for key, value in subspace["ise"].get("correlation", {}).items():
            lines.append(f"| {key} | {value['r']:.2f} | {value['p']:.3f} |")
        parts.append(
            "**Tables 9/10 (miniature): correlation of ISE score with training lines per language**\n\n"
            + "\n".join(lines)
        )
    figure3([r for r in results if r.get("per_epoch_eval")], by_name.get("pretrain"), figures / "figure3_curves.png")
    if figure_sweeps(sweep_series(stats, PAPER, GROUPS, list(experiments)), figures / "table1_sweeps.png"):
        parts.append("Table 1's rank and pruning sweeps as a figure: `figures/table1_sweeps.png`.")
    runs_by_name: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        runs_by_name[r["name"]].append(r)
    timing = [
        "| experiment | seeds | CPU threads | training s (mean) | evaluation s (mean) |",
        "|---|---|---|---:|---:|",
    ]
    for n, runs in runs_by_name.items():
        evals = [r["eval_seconds"] for r in runs if "eval_seconds" in r]
        timing.append(
            f"| {n} | {','.join(str(r['seed']) for r in runs)} | "
            f"{','.join(sorted({str(r.get('threads') or '?') for r in runs}))} | "
            f"{statistics.mean(r['train_seconds'] for r in runs):.0f} | "
            + (f"{statistics.mean(evals):.0f} |" if evals else "- |")
        )
    parts.append("**Run times**\n\n" + "\n".join(timing))
    path = out / "replication_tables.md"
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    (out / "replication_results.json").write_text(json.dumps(stats, indent=1), encoding="utf-8")
    print(f"wrote {path} and {figures}/")
    return path
