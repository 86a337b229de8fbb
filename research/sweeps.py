"""Table 1's two sweeps as a picture: equal rank r;r;r against r, and 2;2;8's pruning ratio P against P.

The miniature (mean over seeds, sample sd as error bars) on the top row, the paper's lang12 figures on the
bottom row; each panel draws H2H, V2V and AVG. Points that were not run are left out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from training.plots import plt, save_figure

SWEEP_GROUPS = ("H2H", "V2V", "AVG")
COLOURS = {"H2H": "tab:green", "V2V": "tab:red", "AVG": "black"}
_RANK = re.compile(r"^lslo_(\d+)-\1-\1$")  # lslo_4-4-4
_PRUNE = re.compile(r"^lslo_2-2-8(?:_gps(\d))?$")  # lslo_2-2-8 (P = 0) and lslo_2-2-8_gpsK (P = K / 10)


def sweep_points(names: Sequence[str]) -> dict[str, list[tuple[float, str]]]:
    """The experiments of each sweep, as (x, experiment name) sorted by x: "rank" (x = r) and "pruning" (x = P)."""
    points: dict[str, list[tuple[float, str]]] = {"rank": [], "pruning": []}
    for name in names:
        if m := _RANK.match(name):
            points["rank"].append((float(m.group(1)), name))
        elif m := _PRUNE.match(name):
            points["pruning"].append((int(m.group(1) or 0) / 10, name))
    return {k: sorted(v) for k, v in points.items()}


def _paper_row(name: str) -> str:
    if m := _RANK.match(name):
        return f"{m.group(1)};{m.group(1)};{m.group(1)}+WL"
    m = _PRUNE.match(name)
    assert m is not None
    return "2;2;8+WL" if m.group(1) is None else f"2;2;8+WL+GPS(0.{m.group(1)})"


Series = dict[str, dict[tuple[str, str], list[tuple[float, float, float]]]]


def sweep_series(
    stats: Mapping[str, Mapping[str, Any]],
    paper: Mapping[str, Sequence[float]],
    groups: Sequence[str],
    experiments: Sequence[str] | None = None,
) -> Series:
    """Per sweep ("rank", "pruning") and (source, group), the points (x, mean, sd) to draw: source "ours" from
    ``stats`` (``aggregate``'s output; sd 0 for one seed), source "paper" from ``paper`` (sd 0) for the x values
    of ``experiments`` (default: those in ``stats``) that the paper reports."""
    measured = sweep_points(list(stats))
    planned = sweep_points(list(experiments) if experiments is not None else list(stats))
    series: Series = {}
    for sweep in ("rank", "pruning"):
        series[sweep] = {}
        for g in SWEEP_GROUPS:
            ours = [(x, stats[n]["stats"].get(g)) for x, n in measured[sweep]]
            series[sweep][("ours", g)] = [(x, v[0], v[1] or 0.0) for x, v in ours if v is not None]
            series[sweep][("paper", g)] = [
                (x, paper[_paper_row(n)][groups.index(g)], 0.0) for x, n in planned[sweep] if _paper_row(n) in paper
            ]
    return series


def figure_sweeps(series: Series, path: Path) -> bool:
    """Draws ``sweep_series``'s output, the miniature above the paper. Returns False, drawing nothing, when no
    sweep has two measured points."""
    if max(len(series[s][("ours", "AVG")]) for s in series) < 2:
        return False
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.5), sharex="col")
    titles = {
        "rank": ("equal rank r;r;r+WL", "rank r"),
        "pruning": ("2;2;8+WL+GPS(P)", "pruning ratio P of the High/Medium adapters (0: no pruning)"),
    }
    for col, sweep in enumerate(("rank", "pruning")):
        title, xlabel = titles[sweep]
        for row, (source, heading) in enumerate((("ours", "miniature"), ("paper", "paper (lang12, M2M-124 615M)"))):
            ax = axes[row][col]
            if not any(series[sweep][(source, g)] for g in SWEEP_GROUPS):
                ax.text(0.5, 0.5, "not run yet", ha="center", va="center", transform=ax.transAxes, color="grey")
            for g in SWEEP_GROUPS:
                points = series[sweep][(source, g)]
                if points:
                    ax.errorbar(
                        [p[0] for p in points],
                        [p[1] for p in points],
                        yerr=[p[2] for p in points],
                        marker="o" if source == "ours" else "s",
                        linestyle="-" if source == "ours" else "--",
                        capsize=3,
                        color=COLOURS[g],
                        label=g,
                    )
            ax.set_title(f"{heading}: {title}", fontsize=9)
            ax.set_ylabel("spBLEU")
            ax.grid(alpha=0.3)
            if sweep == "rank":
                ax.set_xscale("log", base=2)
                ranks = sorted({p[0] for points in series[sweep].values() for p in points})
                ax.set_xticks(ranks, [f"{r:g}" for r in ranks])
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
        axes[1][col].set_xlabel(xlabel)
    save_figure(fig, path)
    return True
