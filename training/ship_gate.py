"""What ``export --valid`` measures: chrF++ of a bundle's adapters against the base alone on validation data.

Each direction of the data that passes through at least one of the adapters is translated twice, by the base
alone and through the adapters, in the same length-sorted mixed batches; a language without an adapter passes
through the base alone on its side (the server's fallback). Directions that touch no adapter are left out: both
sides would translate them identically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lslo.devices import resolve_device
from lslo.errors import ConfigError
from lslo.io import load_bundle
from training.evaluation import translate_directions
from training.flores import ParallelSplit
from training.metrics import chrf_pp
from training.pairs import directions
from training.prepare import load_base_model


def _has_pair(data: ParallelSplit, src: str, tgt: str) -> bool:
    return any(s is not None and t is not None for s, t in zip(data.lines[src], data.lines[tgt]))


def measure_against_base(base: Path, bundle: Path, languages: Sequence[str], tokenizer: Any, data: ParallelSplit,
                         beam: int = 1, max_sents: int | None = 200, device: str = "auto") -> dict[str, Any]:
    """{"chrf", "base_chrf" (pooled over every row), "directions": {"src-tgt": [base, bundle]}, "table": Markdown,
    "pairs", "unmeasured" (kept languages no direction passes through), "select_by": "chrf", ...} for the
    adapters of ``languages`` in ``bundle``."""
    used = [(s, t) for s, t in directions(list(data.languages))
            if (s in languages or t in languages) and _has_pair(data, s, t)]
    if not used:
        raise ConfigError([f"no direction of the validation data passes through an exported adapter "
                           f"({', '.join(languages)}; the data has {', '.join(data.languages) or 'no language'})"],
                          "inputs")
    model = load_base_model(base, resolve_device(device)).eval()
    lslo = load_bundle(model, bundle, languages=languages)
    try:
        with lslo.base_only():
            alone = translate_directions(model, tokenizer, data, used, lslo, max_sents, beam, progress=False,
                                         fallback=True)
        tuned = translate_directions(model, tokenizer, data, used, lslo, max_sents, beam, progress=False,
                                     fallback=True)
    finally:
        lslo.remove()
    per_direction: dict[str, list[float]] = {}
    pooled: dict[str, list[str]] = {"base": [], "bundle": [], "refs": []}
    for pair in used:
        refs = [data.lines[pair[1]][seg] or "" for seg, _ in alone[pair]]
        base_hyps, bundle_hyps = [h for _, h in alone[pair]], [h for _, h in tuned[pair]]
        per_direction[f"{pair[0]}-{pair[1]}"] = [round(chrf_pp(base_hyps, refs), 2),
                                                 round(chrf_pp(bundle_hyps, refs), 2)]
        pooled["base"] += base_hyps
        pooled["bundle"] += bundle_hyps
        pooled["refs"] += refs
    base_chrf, chrf = chrf_pp(pooled["base"], pooled["refs"]), chrf_pp(pooled["bundle"], pooled["refs"])
    lines = ["| Direction | base alone | bundle | Δ |", "|---|---:|---:|---:|"]
    lines += [f"| {d.replace('-', '→')} | {a:.2f} | {b:.2f} | {b - a:+.2f} |" for d, (a, b) in per_direction.items()]
    lines.append(f"| all ({len(pooled['refs'])} rows) | {base_chrf:.2f} | {chrf:.2f} | {chrf - base_chrf:+.2f} |")
    unmeasured = [c for c in languages if not any(c in pair for pair in used)]
    return {"select_by": "chrf", "chrf": round(chrf, 2), "base_chrf": round(base_chrf, 2), "loss": None,
            "base_loss": None, "pairs": len(pooled["refs"]), "beam": beam, "languages": list(languages),
            "unmeasured": unmeasured,
            "directions": per_direction, "table": "chrF++ on the validation data\n\n" + "\n".join(lines)}
