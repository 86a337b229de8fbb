"""Adapter weights at export: each language's adapters scaled towards the base, chosen on validation.

A weight ``w`` in (0, 1] multiplies a language's ``B`` factors, so its adapters add ``w · B A`` to the frozen
weights: ``w = 1`` is the trained adapters, ``w -> 0`` the base alone. Interpolating between a base and its
fine-tuned weights keeps much of the fine-tuning's gain on its own data while giving back the robustness the
base had elsewhere (WiSE-FT: Wortsman et al., 2022, "Robust fine-tuning of zero-shot models"); for LoRA-style
adapters the interpolation is exactly this scaling. The exported files hold the scaled ``B``: a server needs
nothing to know about it.

``auto`` measures the validation data once per weight of ``GRID`` (every kept adapter at that weight) and gives
each language the weight whose directions through its adapter score best, among those that are not worse than
the base alone; a language that is worse at every weight is left out (served by the base alone). Chosen one by
one, the weights are then measured together (``training.export``): languages that are worse then are left out
and the others measured again, until none is worse.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lslo.adapters.handle import LSLoHandle
from lslo.languages.tokens import LanguageVocabulary

GRID: tuple[float, ...] = (1.0, 0.5, 0.25, 0.125)

Weights = dict[str, float]  # model code -> weight in (0, 1]


def parse_weights(
    spec: str, kept: Sequence[str], vocabulary: LanguageVocabulary, problems: list[str]
) -> Weights | None:
    """``1`` / ``0.25`` (every kept language), ``fr=0.25,de=0.5`` (the others 1) as model codes; ``auto`` -> None
    (chosen on validation). Bad items are added to ``problems``."""
    spec = spec.strip()
    if spec.lower() == "auto":
        return None
    if "=" not in spec:
        weight = _weight(spec, spec, problems)
        return {c: weight for c in kept} if weight is not None else {}
    out = {c: 1.0 for c in kept}
    for item in (i.strip() for i in spec.split(",") if i.strip()):
        code, _, value = item.partition("=")
        model = vocabulary.model_code(code.strip())
        weight = _weight(value.strip(), item, problems)
        if model is None:
            problems.append(vocabulary.unknown(code.strip()))
        elif model not in out:
            problems.append(
                f"--adapter-weight {item!r}: {code.strip()} is not among the exported languages ({', '.join(kept)})"
            )
        elif weight is not None:
            out[model] = weight
    return out


def _weight(text: str, item: str, problems: list[str]) -> float | None:
    try:
        weight = float(text)
    except ValueError:
        problems.append(f"--adapter-weight {item!r}: not a number, a code=number list or 'auto'")
        return None
    if not 0.0 < weight <= 1.0:
        problems.append(f"--adapter-weight {item!r}: a weight is in (0, 1] (leave a language out with --languages)")
        return None
    return weight


def apply_weights(lslo: LSLoHandle, weights: Mapping[str, float]) -> None:
    """Scale each language's ``B`` factors by its weight (in place; languages absent or at 1 are untouched)."""
    for code, weight in weights.items():
        if weight == 1.0 or code not in lslo.layout:
            continue
        tensors = lslo.language_state_dict(code)
        scaled = {k: v * weight if k.endswith(".lora_B") else v for k, v in tensors.items()}
        lslo.load_language(code, scaled, tier=lslo.tiers.get(code))


def choose_weights(scans: Mapping[float, Mapping[str, Sequence[float]]]) -> Weights:
    """Per language, the weight whose ``[base, bundle]`` validation scores (``scans[weight][code]``) give the
    highest bundle score not below the base's; ties go to the larger weight. Languages worse at every weight are
    absent from the result."""
    chosen: Weights = {}
    best: dict[str, float] = {}
    for weight in sorted(scans, reverse=True):
        for code, (base, bundle) in scans[weight].items():
            if bundle >= base and bundle > best.get(code, float("-inf")):
                chosen[code], best[code] = weight, bundle
    return chosen


def scan_table(scans: Mapping[float, Mapping[str, Sequence[float]]], chosen: Mapping[str, float]) -> str:
    """Markdown: per language, its directions' chrF++ change against the base alone at each weight."""
    weights = sorted(scans, reverse=True)  # every scan measured the same languages
    lines = [
        "| through | base alone | " + " | ".join(f"w = {w:g}" for w in weights) + " | chosen |",
        "|---|---:|" + "---:|" * len(weights) + "---|",
    ]
    for code, (base, _) in scans[weights[0]].items():
        cells = [f"{scans[w][code][1] - base:+.2f}" for w in weights]
        pick = f"{chosen[code]:g}" if code in chosen else "left out"
        lines.append(f"| {code} | {base:.2f} | " + " | ".join(cells) + f" | {pick} |")
    return "\n".join(lines)
