"""Figures in the paper's style: Weight Learning weights (Fig. 1), subspace-demand heatmaps (Figs. 2, 4, 5, 6),
spBLEU per epoch (Fig. 3). Headless (Agg); each function writes one PNG."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

TIER_COLOURS = {"H": "tab:green", "M": "tab:blue", "L": "tab:orange", "V": "tab:red"}


def save_figure(fig: Any, path: Path, *, tight: bool = True) -> None:
    """Write ``fig`` as a 120 dpi PNG and free it (``tight``: lay it out first; else crop to its contents)."""
    if tight:
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    else:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def plot_weights(weights: Mapping[str, Sequence[tuple[float, float]]], path: Path, title: str = "") -> None:
    """Figure 1: source and target weights per layer, encoder and decoder."""
    fig, ax = plt.subplots(figsize=(6.4, 4))
    styles = {
        ("encoder", 0): ("enc_src", "tab:blue", "-"),
        ("encoder", 1): ("enc_tgt", "tab:orange", "-"),
        ("decoder", 0): ("dec_src", "tab:blue", "--"),
        ("decoder", 1): ("dec_tgt", "tab:orange", "--"),
    }
    for stack in ("encoder", "decoder"):
        pairs = weights.get(stack, [])
        layers = np.arange(1, len(pairs) + 1)
        for side in (0, 1):
            label, colour, line = styles[(stack, side)]
            ax.plot(layers, [p[side] for p in pairs], line, marker="o", color=colour, label=f"{label} weights")
    ax.axhline(0.5, color="grey", linewidth=0.6)
    n = max((len(weights.get(s, [])) for s in ("encoder", "decoder")), default=1)
    ax.set_xticks(range(1, n + 1))
    ax.set_xlabel("Layer")
    ax.set_ylabel("Weight")
    ax.set_title(title or "Weight Learning: source / target weights per layer")
    ax.legend()
    save_figure(fig, path)


def _heatmap(
    ax: Any,
    values: np.ndarray,
    rows: Sequence[str],
    cols: Sequence[str],
    title: str,
    vmax: float,
    row_colours: Sequence[str] | None = None,
) -> Any:
    image = ax.imshow(values, cmap="coolwarm_r", vmin=-vmax, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(rows)), rows)
    if row_colours:
        for label, colour in zip(ax.get_yticklabels(), row_colours):
            label.set_color(colour)
    ax.set_title(title)
    return image


def plot_demand(
    encoder: np.ndarray,
    decoder: np.ndarray,
    rows: Sequence[str],
    enc_cols: Sequence[str],
    dec_cols: Sequence[str],
    path: Path,
    title: str,
    row_tiers: Sequence[str | None] | None = None,
    row_label: str = "Language id",
) -> None:
    """Figures 2/4/5/6: score of Eq. 6 as rows (languages or layers) x modules, encoder and decoder panels.

    Negative scores (more space needed) are red, positive (less) blue, as in the paper.
    """
    vmax = float(np.nanmax(np.abs(np.concatenate([encoder.ravel(), decoder.ravel(), [1e-9]]))))
    colours = [TIER_COLOURS.get(t or "", "black") for t in row_tiers] if row_tiers else None
    fig, axes = plt.subplots(
        1,
        2,
        figsize=(3 + 0.55 * (len(enc_cols) + len(dec_cols)), 1.2 + 0.32 * len(rows)),
        gridspec_kw={"width_ratios": [max(len(enc_cols), 1), max(len(dec_cols), 1)]},
    )
    _heatmap(axes[0], encoder, rows, enc_cols, "Encoder", vmax, colours)
    image = _heatmap(axes[1], decoder, rows, dec_cols, "Decoder", vmax, colours)
    axes[0].set_ylabel(row_label)
    axes[1].set_yticks([])
    fig.colorbar(image, ax=axes, shrink=0.8, label="Score (pruned - P x size)")
    fig.suptitle(title, y=1 + 0.35 / fig.get_figheight())  # clear of the panel titles at any height
    save_figure(fig, path, tight=False)


def plot_curves(history: Sequence[Mapping[str, float]], path: Path, title: str = "spBLEU per epoch") -> None:
    """Figure 3 for one run: each evaluated direction group's spBLEU after each epoch."""
    groups = [k for k in history[0] if k != "epoch"] if history else []
    fig, ax = plt.subplots(figsize=(6.4, 4))
    epochs = [h["epoch"] for h in history]
    ax.set_xticks(epochs)
    for g in groups:
        ax.plot(epochs, [h.get(g, float("nan")) for h in history], marker="o", label=g)
    ax.set_xlabel("Epoch")
    ax.set_ylabel("spBLEU")
    ax.set_title(title)
    ax.legend()
    save_figure(fig, path)


def training_curve(records: Sequence[Mapping[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """From a run's ``log.jsonl`` records: training loss by step, and validation loss and chrF++ by the step at
    which each epoch's validation was taken (epoch 0 is step 0). A resumed run's re-logged steps count once."""
    steps: dict[int, float] = {}
    epoch_end = {0: 0}
    valid_loss: dict[int, float] = {}
    valid_chrf: dict[int, float] = {}
    for record in records:
        event = record.get("event")
        if event == "step":
            steps[int(record["step"])] = float(record["loss"])
        elif event == "epoch":
            epoch_end[int(record["epoch"])] = int(record["step"])
        elif event == "valid":
            valid_loss[int(record["epoch"])] = float(record["loss"])
            if record.get("chrf") is not None:
                valid_chrf[int(record["epoch"])] = float(record["chrf"])
    at = {e: epoch_end[e] for e in epoch_end}
    return {
        "train_loss": sorted(steps.items()),
        "valid_loss": sorted((at[e], v) for e, v in valid_loss.items() if e in at),
        "valid_chrf": sorted((at[e], v) for e, v in valid_chrf.items() if e in at),
    }


def plot_training_curve(records: Sequence[Mapping[str, Any]], path: Path, title: str = "") -> None:
    """Loss (training, and validation after each epoch) and validation chrF++ by optimizer step."""
    curve = training_curve(records)
    fig, loss_axis = plt.subplots(figsize=(7, 4))
    if curve["train_loss"]:
        x, y = zip(*curve["train_loss"])
        loss_axis.plot(x, y, color="tab:blue", linewidth=0.8, alpha=0.7, label="training loss")
    if curve["valid_loss"]:
        x, y = zip(*curve["valid_loss"])
        loss_axis.plot(x, y, "o-", color="tab:blue", label="validation loss")
    loss_axis.set_xlabel("optimizer step")
    loss_axis.set_ylabel("loss (nats per token)")
    chrf_axis = loss_axis.twinx()
    if curve["valid_chrf"]:
        x, y = zip(*curve["valid_chrf"])
        chrf_axis.plot(x, y, "s-", color="tab:red", label="validation chrF++")
    chrf_axis.set_ylabel("chrF++", color="tab:red")
    handles = loss_axis.get_legend_handles_labels()[0] + chrf_axis.get_legend_handles_labels()[0]
    labels = loss_axis.get_legend_handles_labels()[1] + chrf_axis.get_legend_handles_labels()[1]
    loss_axis.legend(handles, labels, loc="center right", fontsize=8)
    if title:
        loss_axis.set_title(title)
    save_figure(fig, path)
