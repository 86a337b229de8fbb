"""``weight-learning``: train with both source- and target-indexed LSLo in every module (Eq. 5), then pick
each layer's side by its larger learned weight. Writes ``layer_map.json`` (usable as ``--layer-map``) and
``weight_learning.png`` (Figure 1)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field

from lslo.adapters.weight_learning import layer_map_from_weights, read_weights
from training.distributed import leaving_together
from training.loop import train
from training.plots import plot_weights
from training.recipes.common import LSLoSettings, start_run


class WeightLearningSettings(LSLoSettings):
    ranks: str = Field("8", description="rank of every language (the paper uses 8)")


def run_weight_learning(settings: WeightLearningSettings) -> Path:
    started = start_run(settings, "weight-learning", "lslo", {"weight_learning": True})
    run = started.run
    with leaving_together(run.info, run.release):
        if not train(run) or not run.info.is_main:
            return settings.out
        assert started.lslo is not None and started.lslo.router.gates is not None
        weights = read_weights(started.lslo.router.gates)
        layer_map = layer_map_from_weights(weights)
        out = settings.out / "layer_map.json"
        out.write_text(
            json.dumps({**layer_map.to_dict(), "weights": weights, "describe": layer_map.describe()}, indent=1),
            encoding="utf-8",
        )
        plot_weights(weights, settings.out / "weight_learning.png")
        run.log.write("outputs", layer_map=layer_map.to_dict(), weights=weights)
        print(f"layer map: {layer_map.describe()}  ->  {out}")
        return out
