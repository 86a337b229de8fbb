"""The export gate: whether a bundle did worse than its base alone on validation (``ship_problem``, from the
training record or a measurement), and what ``export --valid`` measures: chrF++ of a bundle's adapters against
the base alone on validation data.

Each direction of the data that passes through at least one of the adapters is translated twice, by the base
alone and through the adapters, in the same length-sorted mixed batches; a language without an adapter passes
through the base alone on its side (the server's fallback). Directions that touch no adapter are left out: both
sides would translate them identically. Besides the pooled score, each kept language gets the score of the
directions through its adapter, so that one language doing worse is not hidden by others doing better.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lslo.devices import resolve_device
from lslo.errors import ConfigError
from lslo.io import load_bundle
from training.adapter_weights import apply_weights
from training.evaluation import translate_directions
from training.flores import ParallelSplit
from training.metrics import chrf_pp
from training.pairs import directions
from training.prepare import load_base_model


def _has_pair(data: ParallelSplit, src: str, tgt: str) -> bool:
    return any(s is not None and t is not None for s, t in zip(data.lines[src], data.lines[tgt]))


def measure_against_base(
    base: Path,
    bundle: Path,
    languages: Sequence[str],
    tokenizer: Any,
    data: ParallelSplit,
    beam: int = 1,
    max_sents: int | None = 200,
    device: str = "auto",
    weights: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """{"chrf", "base_chrf" (pooled over every row), "directions": {"src-tgt": [base, bundle]}, "per_language":
    {code: [base, bundle]} (the directions through that language's adapter, pooled), "unmeasured" (kept
    languages no direction passes through), "table": Markdown, "pairs", "select_by": "chrf", ...} for the
    adapters of ``languages`` in ``bundle``, each scaled by its ``weights`` entry (``training.adapter_weights``)."""
    return measure_weightings(base, bundle, languages, tokenizer, data, [weights or {}], beam, max_sents, device)[0]


def measure_weightings(
    base: Path,
    bundle: Path,
    languages: Sequence[str],
    tokenizer: Any,
    data: ParallelSplit,
    weightings: Sequence[Mapping[str, float]],
    beam: int = 1,
    max_sents: int | None = 200,
    device: str = "auto",
) -> list[dict[str, Any]]:
    """``measure_against_base`` for each of ``weightings``, the base alone translated once for all."""
    used = [
        (s, t)
        for s, t in directions(list(data.languages))
        if (s in languages or t in languages) and _has_pair(data, s, t)
    ]
    if not used:
        raise ConfigError(
            [
                f"no direction of the validation data passes through an exported adapter "
                f"({', '.join(languages)}; the data has {', '.join(data.languages) or 'no language'})"
            ],
            "inputs",
        )
    model = load_base_model(base, resolve_device(device)).eval()
    lslo = load_bundle(model, bundle, languages=languages)
    trained = {c: lslo.language_state_dict(c) for c in languages}
    out = []
    try:
        with lslo.base_only():
            alone = translate_directions(
                model, tokenizer, data, used, lslo, max_sents, beam, progress=False, fallback=True
            )
        for weights in weightings:
            for code, tensors in trained.items():  # back to the trained adapters, then scaled
                lslo.load_language(code, tensors)
            apply_weights(lslo, weights)
            tuned = translate_directions(
                model, tokenizer, data, used, lslo, max_sents, beam, progress=False, fallback=True
            )
            out.append(_compare(used, alone, tuned, data, languages, beam))
    finally:
        lslo.remove()
    return out


def _compare(
    used: list[tuple[str, str]], alone: dict, tuned: dict, data: ParallelSplit, languages: Sequence[str], beam: int
) -> dict[str, Any]:
    rows: dict[tuple[str, str], tuple[list[str], list[str], list[str]]] = {}  # pair -> (base, bundle, refs)
    for pair in used:
        refs = [data.lines[pair[1]][seg] or "" for seg, _ in alone[pair]]
        rows[pair] = ([h for _, h in alone[pair]], [h for _, h in tuned[pair]], refs)
    per_direction = {f"{s}-{t}": _scores([rows[(s, t)]]) for s, t in used}
    per_language = {
        c: _scores([r for pair, r in rows.items() if c in pair]) for c in languages if any(c in pair for pair in used)
    }
    base_chrf, chrf = _scores(list(rows.values()))
    total = sum(len(r[2]) for r in rows.values())
    lines = ["| Direction | base alone | bundle | Δ |", "|---|---:|---:|---:|"]
    lines += [f"| {d.replace('-', '→')} | {a:.2f} | {b:.2f} | {b - a:+.2f} |" for d, (a, b) in per_direction.items()]
    lines += [f"| through {c}'s adapter | {a:.2f} | {b:.2f} | {b - a:+.2f} |" for c, (a, b) in per_language.items()]
    lines.append(f"| all ({total} rows) | {base_chrf:.2f} | {chrf:.2f} | {chrf - base_chrf:+.2f} |")
    return {
        "select_by": "chrf",
        "chrf": chrf,
        "base_chrf": base_chrf,
        "loss": None,
        "base_loss": None,
        "pairs": total,
        "beam": beam,
        "languages": list(languages),
        "unmeasured": [c for c in languages if c not in per_language],
        "per_language": per_language,
        "directions": per_direction,
        "table": "chrF++ on the validation data\n\n" + "\n".join(lines),
    }


def _scores(groups: list[tuple[list[str], list[str], list[str]]]) -> list[float]:
    """[base alone, bundle] chrF++ (2 decimals) of the rows of ``groups`` pooled."""
    refs = [r for g in groups for r in g[2]]
    return [
        round(chrf_pp([h for g in groups for h in g[0]], refs), 2),
        round(chrf_pp([h for g in groups for h in g[1]], refs), 2),
    ]


def worse_languages(per_language: dict[str, list[float]]) -> list[str]:
    """The kept languages whose directions, pooled, score lower through the adapters than by the base alone."""
    return [c for c, (base, bundle) in per_language.items() if bundle < base]


def ship_problem(validation: dict[str, Any] | None) -> str | None:
    """Why a bundle should not ship: on its validation data it did worse than the base alone by the loss or
    by chrF++, whichever were measured. A lower loss does not excuse worse translations: adapters can make the
    references' tokens likelier and greedy outputs worse at once (the demo's adapters do). None when neither is
    worse, or when the bundle was trained without validation."""
    if not validation:
        return None
    loss, base_loss = validation.get("loss"), validation.get("base_loss")
    chrf, base_chrf = validation.get("chrf"), validation.get("base_chrf")
    scores, worse = [], []
    if loss is not None and base_loss is not None:
        scores.append(f"loss {loss:.4f} against {base_loss:.4f} ({loss - base_loss:+.4f})")
        if loss > base_loss:
            worse.append("loss")
    if chrf is not None and base_chrf is not None:
        scores.append(f"chrF++ {chrf:.2f} against {base_chrf:.2f} ({chrf - base_chrf:+.2f})")
        if chrf < base_chrf:
            worse.append("chrF++")
    if not worse:
        return None
    by = " and ".join(worse)
    when = (
        f"epoch {validation['selected_epoch']}"
        if validation.get("selected_epoch") is not None
        else "measured at export"
    )
    return (
        f"the bundle is worse than its base alone on its validation data by {by} ({validation.get('pairs')} "
        f"pairs, {when}): {'; '.join(scores)}. Serving the base alone "
        "would translate better; pass --force to export it anyway"
    )


def measured_problem(measured: dict[str, Any]) -> str | None:
    """Why the adapters ``measure_against_base`` measured should not ship: worse pooled (``ship_problem``), worse
    for a kept language, or a kept language no validation direction passes through. None when none holds."""
    problem = ship_problem(measured)
    worse = worse_languages(measured["per_language"])
    if worse and not problem:
        scores = ", ".join(
            f"{c} {measured['per_language'][c][1]:.2f} against {measured['per_language'][c][0]:.2f}" for c in worse
        )
        problem = (
            f"the directions through the adapter(s) of {', '.join(worse)} are worse than the base alone "
            f"on the validation data (chrF++ {scores}); leave them out with --languages, or pass --force"
        )
    if measured["unmeasured"]:
        gap = (
            f"no direction of the validation data passes through the adapter(s) of "
            f"{', '.join(measured['unmeasured'])}: nothing shows they beat the base alone"
        )
        problem = f"{problem}; {gap}" if problem else gap
    return problem
