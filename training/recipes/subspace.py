"""``subspace --mode ise|lsp``: Intrinsic Subspace Estimation (§4.2: all languages' B matrices of one layer in
one pool) and language-specific pruning (§7.3: one pool per language across layers), trained with the
gradual pruning schedule at P = 0.7; then the score of Eq. 6 per B matrix.

Outputs: ``scores.json`` (every matrix, plus averages), heatmaps (ISE: Figure 2 averaged over layers and
Figure 5 per layer; LSP: Figure 4 averaged over languages and Figure 6 per language) and, for ISE, the
Pearson correlation of each module's score with the languages' bitext sizes (Tables 9 and 10).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field
from scipy import stats

from lslo.adapters.modules import DECODER_MODULES, ENCODER_MODULES
from lslo.errors import ConfigError
from lslo.languages.tables import TIERS, load_table
from lslo.pruning import PruningSchedule, SubspaceScore, language_pools, layer_pools, subspace_scores
from training.distributed import leaving_together
from training.loop import train
from training.plots import plot_demand
from training.recipes.common import LSLoSettings, attach_pruning, start_run


class SubspaceSettings(LSLoSettings):
    mode: Literal["ise", "lsp"] = Field(description="ise: one pool per layer; lsp: one pool per language")
    ranks: str = Field("8", description="rank of every language (the paper uses 8)")
    ratio: float = Field(0.7, gt=0, lt=1, description="pruning ratio P_ISE / P_LSP")
    prune_start: int = Field(2, description="E")
    prune_epochs: int = Field(8, description="k")
    bitext: str = Field(
        "table",
        description="bitext sizes for the correlation: 'table' (Appendix A) or a corpus "
        "stats.json (training segments per language)",
    )

    def problems(self) -> list[str]:
        problems = super().problems()
        try:
            PruningSchedule(self.ratio, self.prune_start, self.prune_epochs, self.epochs)
        except ConfigError as err:
            problems += err.problems
        if self.bitext != "table" and not Path(self.bitext).is_file():
            problems.append(f"--bitext {self.bitext!r} is neither 'table' nor a file")
        return problems


def bitext_sizes(spec: str, codes: Sequence[str]) -> dict[str, float]:
    if spec == "table":
        table = load_table("lang30")
        return {c: table[c].bitext_pairs for c in codes if c in table and table[c].bitext_pairs is not None}
    data = json.loads(Path(spec).read_text(encoding="utf-8"))
    return {c: float(v["train"]) for c, v in data.get("languages", {}).items() if c in codes and v.get("train")}


def _columns(stack: str) -> tuple[str, ...]:
    return ENCODER_MODULES if stack == "encoder" else DECODER_MODULES


def average_by(scores: Sequence[SubspaceScore], key) -> dict[tuple, float]:
    buckets: dict[tuple, list[float]] = defaultdict(list)
    for s in scores:
        buckets[key(s)].append(s.score)
    return {k: float(np.mean(v)) for k, v in buckets.items()}


def matrix(values: dict[tuple, float], rows: Sequence, stack: str) -> np.ndarray:
    cols = _columns(stack)
    return np.array([[values.get((r, stack, c), np.nan) for c in cols] for r in rows], dtype=float)


def correlations(by_lang: dict[tuple, float], sizes: dict[str, float]) -> dict[str, dict[str, float]]:
    """Pearson r and p per stack.module between bitext size and the layer-averaged score (Tables 9/10)."""
    out: dict[str, dict[str, float]] = {}
    for stack in ("encoder", "decoder"):
        rs, ps = [], []
        for module in _columns(stack):
            langs = [c for c in sizes if (c, stack, module) in by_lang]
            if len(langs) < 3:
                continue
            x = [sizes[c] for c in langs]
            y = [by_lang[(c, stack, module)] for c in langs]
            if np.std(y) == 0 or np.std(x) == 0:
                continue
            result = stats.pearsonr(x, y)
            out[f"{stack}.{module}"] = {"r": float(result.statistic), "p": float(result.pvalue), "n": len(langs)}
            rs.append(float(result.statistic))
            ps.append(float(result.pvalue))
        if rs:
            out[f"{stack}.AVG"] = {"r": float(np.mean(rs)), "p": float(np.mean(ps)), "n": len(rs)}
    return out


def plot_average(scores: Sequence[SubspaceScore], mode: str, tiers: dict[str, str | None], path: Path) -> None:
    """Figure 2 (ISE: languages in ``tiers`` order x modules, averaged over layers) or Figure 4 (LSP: layers x
    modules, averaged over languages)."""
    if mode == "ise":
        by_lang = average_by(scores, lambda s: (s.language, s.stack, s.module))
        langs = list(tiers)
        plot_demand(
            matrix(by_lang, langs, "encoder"),
            matrix(by_lang, langs, "decoder"),
            langs,
            ENCODER_MODULES,
            DECODER_MODULES,
            path,
            "Intrinsic Subspace Estimation, averaged over layers (Figure 2)",
            [tiers[c] for c in langs],
        )
    else:
        by_layer = average_by(scores, lambda s: (s.layer, s.stack, s.module))
        layers = list(range(max(s.layer for s in scores) + 1))
        plot_demand(
            matrix(by_layer, layers, "encoder"),
            matrix(by_layer, layers, "decoder"),
            [str(i + 1) for i in layers],
            ENCODER_MODULES,
            DECODER_MODULES,
            path,
            "Language-specific pruning, averaged over languages (Figure 4)",
            row_label="Layer id",
        )


def run_subspace(settings: SubspaceSettings) -> Path:
    started = start_run(settings, f"subspace-{settings.mode}", "lslo")
    run, lslo = started.run, started.lslo
    with leaving_together(run.info, run.release):
        assert lslo is not None
        schedule = PruningSchedule(settings.ratio, settings.prune_start, settings.prune_epochs, settings.epochs)
        pools = layer_pools(lslo) if settings.mode == "ise" else language_pools(lslo)
        attach_pruning(started, pools, schedule)
        if not train(run) or not run.info.is_main:
            return settings.out
        scores = subspace_scores(lslo, settings.ratio)
        tiers = started.tiers
        order = {t: i for i, t in enumerate(TIERS)}
        langs = sorted(lslo.layout.codes, key=lambda c: (order.get(tiers.get(c) or "", 9), lslo.layout.index(c)))
        out, figures = settings.out, settings.out / "figures"
        figures.mkdir(parents=True, exist_ok=True)
        result: dict = {
            "mode": settings.mode,
            "ratio": settings.ratio,
            "schedule": schedule.to_dict(),
            "languages": {c: tiers.get(c) for c in langs},
            "scores": [vars(s) for s in scores],
        }
        by_lang = average_by(scores, lambda s: (s.language, s.stack, s.module))
        by_layer = average_by(scores, lambda s: (s.layer, s.stack, s.module))
        result["by_language_module"] = {f"{k[0]}|{k[1]}.{k[2]}": v for k, v in by_lang.items()}
        result["by_layer_module"] = {f"{k[0]}|{k[1]}.{k[2]}": v for k, v in by_layer.items()}
        n_layers = max(s.layer for s in scores) + 1
        if settings.mode == "ise":
            result.update(_ise_figures(settings, scores, langs, tiers, n_layers, by_lang, figures))
        else:
            _lsp_figures(settings, scores, langs, tiers, n_layers, figures)
        (out / "scores.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
        run.log.write("outputs", scores=str(out / "scores.json"))
        return out / "scores.json"


def _ise_figures(
    settings: SubspaceSettings,
    scores: list[Any],
    langs: list[str],
    tiers: dict[str, str | None],
    n_layers: int,
    by_lang: dict[Any, float],
    figures: Path,
) -> dict[str, Any]:
    """Intrinsic Subspace Estimation: the figures (2, 5) and the correlation of scores with bitext size."""
    plot_average(scores, settings.mode, {c: tiers.get(c) for c in langs}, figures / "ise_languages.png")
    per_layer = average_by(scores, lambda s: (s.language, s.layer, s.stack, s.module))
    for layer in range(n_layers):
        values = {(c, st, m): v for (c, la, st, m), v in per_layer.items() if la == layer}
        plot_demand(
            matrix(values, langs, "encoder"),
            matrix(values, langs, "decoder"),
            langs,
            ENCODER_MODULES,
            DECODER_MODULES,
            figures / f"ise_layer_{layer + 1:02d}.png",
            f"Intrinsic Subspace Estimation, layer {layer + 1} (Figure 5)",
            [tiers.get(c) for c in langs],
        )
    sizes = bitext_sizes(settings.bitext, langs)
    return {"bitext": {"source": settings.bitext, "sizes": sizes}, "correlation": correlations(by_lang, sizes)}


def _lsp_figures(
    settings: SubspaceSettings,
    scores: list[Any],
    langs: list[str],
    tiers: dict[str, str | None],
    n_layers: int,
    figures: Path,
) -> None:
    """Language-specific pruning: the average figure and one per language (Figure 6)."""
    layers = list(range(n_layers))
    labels = [str(i + 1) for i in layers]
    plot_average(scores, settings.mode, {c: tiers.get(c) for c in langs}, figures / "lsp_average.png")
    per_lang = average_by(scores, lambda s: (s.language, s.layer, s.stack, s.module))
    for code in langs:
        values = {(la, st, m): v for (c, la, st, m), v in per_lang.items() if c == code}
        plot_demand(
            matrix(values, layers, "encoder"),
            matrix(values, layers, "decoder"),
            labels,
            ENCODER_MODULES,
            DECODER_MODULES,
            figures / f"lsp_{code}.png",
            f"Language-specific pruning: {code} (Figure 6)",
            row_label="Layer id",
        )
