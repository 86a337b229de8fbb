"""What ``export --valid`` measures: chrF++ of a bundle's adapters against the base alone on validation data.

Each direction of the data that passes through at least one of the adapters is translated twice, by the base
alone and through the adapters, in the same length-sorted mixed batches; a language without an adapter passes
through the base alone on its side (the server's fallback). Directions that touch no adapter are left out: both
sides would translate them identically. Besides the pooled score, each kept language gets the score of the
directions through its adapter, so that one language doing worse is not hidden by others doing better.
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
    """{"chrf", "base_chrf" (pooled over every row), "directions": {"src-tgt": [base, bundle]}, "per_language":
    {code: [base, bundle]} (the directions through that language's adapter, pooled), "unmeasured" (kept
    languages no direction passes through), "table": Markdown, "pairs", "select_by": "chrf", ...} for the
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
    rows: dict[tuple[str, str], tuple[list[str], list[str], list[str]]] = {}  # pair -> (base, bundle, refs)
    for pair in used:
        refs = [data.lines[pair[1]][seg] or "" for seg, _ in alone[pair]]
        rows[pair] = ([h for _, h in alone[pair]], [h for _, h in tuned[pair]], refs)
    per_direction = {f"{s}-{t}": _scores([rows[(s, t)]]) for s, t in used}
    per_language = {c: _scores([r for pair, r in rows.items() if c in pair]) for c in languages
                    if any(c in pair for pair in used)}
    base_chrf, chrf = _scores(list(rows.values()))
    total = sum(len(r[2]) for r in rows.values())
    lines = ["| Direction | base alone | bundle | Δ |", "|---|---:|---:|---:|"]
    lines += [f"| {d.replace('-', '→')} | {a:.2f} | {b:.2f} | {b - a:+.2f} |" for d, (a, b) in per_direction.items()]
    lines += [f"| through {c}'s adapter | {a:.2f} | {b:.2f} | {b - a:+.2f} |" for c, (a, b) in per_language.items()]
    lines.append(f"| all ({total} rows) | {base_chrf:.2f} | {chrf:.2f} | {chrf - base_chrf:+.2f} |")
    return {"select_by": "chrf", "chrf": chrf, "base_chrf": base_chrf, "loss": None, "base_loss": None,
            "pairs": total, "beam": beam, "languages": list(languages),
            "unmeasured": [c for c in languages if c not in per_language], "per_language": per_language,
            "directions": per_direction, "table": "chrF++ on the validation data\n\n" + "\n".join(lines)}


def _scores(groups: list[tuple[list[str], list[str], list[str]]]) -> list[float]:
    """[base alone, bundle] chrF++ (2 decimals) of the rows of ``groups`` pooled."""
    refs = [r for g in groups for r in g[2]]
    return [round(chrf_pp([h for g in groups for h in g[0]], refs), 2),
            round(chrf_pp([h for g in groups for h in g[1]], refs), 2)]


def worse_languages(per_language: dict[str, list[float]]) -> list[str]:
    """The kept languages whose directions, pooled, score lower through the adapters than by the base alone."""
    return [c for c, (base, bundle) in per_language.items() if bundle < base]
