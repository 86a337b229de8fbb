"""Language tables (the paper's lang12 / lang30, Appendix A) and resolution of per-language ranks.

Ranks are given either explicitly (``en=2,oc=8``) or as a tier pattern over resource tiers
(``2;2;8`` over H;M;V, ``2;2;8;8`` over H;M;L;V), looked up through a tier assignment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

from lslo.languages.codes import language_name

TIERS: tuple[str, ...] = ("H", "M", "L", "V")
TIER_NAMES = {"H": "High", "M": "Medium", "L": "Low", "V": "Very-low"}
TABLE_NAMES: tuple[str, ...] = ("lang12", "lang30")
# Tier patterns by number of values: 3 values are the paper's {H;M;V}, 4 values {H;M;L;V}.
PATTERN_TIERS = {3: ("H", "M", "V"), 4: ("H", "M", "L", "V")}

# M2M-100 style codes (``en``, ``kam``) and FLORES-200 / NLLB style (``eng_Latn``); clients' codes of the language
# table write a second script BCP-47's way (``zh-Hant``).
_CODE_RE = re.compile(r"^[a-z]{2,3}(_[A-Z][a-z]{3})?$")
_CLIENT_CODE_RE = re.compile(r"^[a-z]{2,3}(-[A-Z][a-z]{3})?$")


def is_valid_code(code: str) -> bool:
    """A model's language code (``en``, ``kam``, ``eng_Latn``)."""
    return bool(_CODE_RE.match(code))


def is_code_form(code: str) -> bool:
    """A model's code or a client's code of the language table (``zh-Hant``): the forms a language may be named
    by in a request, before it is looked up."""
    return bool(_CODE_RE.match(code) or _CLIENT_CODE_RE.match(code))


@dataclass(frozen=True)
class LanguageInfo:
    """One row of the paper's lang12 / lang30 tables (Appendix A)."""

    code: str
    tier: str
    family: str
    bitext_with_en: str | None  # as printed in the paper, e.g. "289M", "5.11K"; None for English

    @property
    def name(self) -> str:
        return language_name(self.code)

    @property
    def bitext_pairs(self) -> float | None:
        """Bitext size with English as a number of sentence pairs (None for English)."""
        if self.bitext_with_en is None:
            return None
        scale = {"K": 1e3, "M": 1e6, "B": 1e9}[self.bitext_with_en[-1]]
        return float(self.bitext_with_en[:-1]) * scale


@dataclass(frozen=True)
class LanguageSpec:
    """A language as the adapters see it: code, LoRA rank, and resource tier when known."""

    code: str
    rank: int
    tier: str | None = None


@cache
def load_table(name: str) -> dict[str, LanguageInfo]:
    """The shipped table ``lang12`` or ``lang30``, keyed by code, in the paper's order."""
    if name not in TABLE_NAMES:
        raise KeyError(f"unknown language table {name!r}; known: {', '.join(TABLE_NAMES)}")
    raw = json.loads(resources.files("lslo").joinpath("data", f"{name}.json").read_text(encoding="utf-8"))
    return {row["code"]: LanguageInfo(**row) for row in raw["languages"]}


def known_tiers() -> dict[str, str]:
    """Tier of every language in the shipped tables (lang30 is a superset of lang12)."""
    return {code: info.tier for code, info in load_table("lang30").items()}


def parse_language_list(spec: str | Sequence[str], problems: list[str]) -> list[str]:
    """``lang12`` / ``lang30`` / ``en,fr,oc`` (or a sequence of codes) -> codes; problems are appended."""
    if isinstance(spec, str):
        spec = spec.strip()
        if spec in TABLE_NAMES:
            return list(load_table(spec))
        codes = [c.strip() for c in spec.split(",") if c.strip()]
    else:
        codes = [str(c).strip() for c in spec]
    if not codes:
        problems.append("no languages given")
    for code in codes:
        if not is_valid_code(code):
            problems.append(f"language code {code!r} is not a valid code (like 'en', 'kam' or 'eng_Latn')")
    seen: set[str] = set()
    for code in codes:
        if code in seen:
            problems.append(f"language {code!r} is listed twice")
        seen.add(code)
    return codes


def parse_tier_assignment(spec: str, problems: list[str]) -> dict[str, str]:
    """``H:en,fr;M:zh;V:oc`` -> {code: tier}; problems are appended."""
    tiers: dict[str, str] = {}
    for part in (p.strip() for p in spec.split(";")):
        if not part:
            continue
        tier, sep, codes = part.partition(":")
        tier = tier.strip().upper()
        if not sep or tier not in TIERS:
            problems.append(f"tier assignment {part!r} must look like 'H:en,fr' with a tier in {'/'.join(TIERS)}")
            continue
        for code in (c.strip() for c in codes.split(",")):
            if not code:
                continue
            if code in tiers and tiers[code] != tier:
                problems.append(f"language {code!r} is assigned to tiers {tiers[code]} and {tier}")
            tiers[code] = tier
    return tiers


def _explicit_ranks(spec: str | Mapping[str, int], codes: Sequence[str], problems: list[str]) -> dict[str, int]:
    """``en=2,oc=8`` or a mapping: every language listed, nothing else."""
    given: dict[str, int] = {}
    if isinstance(spec, Mapping):
        given = {str(k): int(v) for k, v in spec.items()}
    else:
        for item in (i.strip() for i in spec.split(",")):
            if not item:
                continue
            code, _, value = item.partition("=")
            try:
                given[code.strip()] = int(value)
            except ValueError:
                problems.append(f"rank {item!r} must look like 'en=2'")
    ranks = {}
    for code in codes:
        if code not in given:
            problems.append(f"no rank given for language {code!r}")
        else:
            ranks[code] = given[code]
    problems.extend(f"rank given for {code!r}, which is not among the languages" for code in given if code not in codes)
    return ranks


def _pattern_ranks(
    spec: str,
    codes: Sequence[str],
    tiers: Mapping[str, str],
    problems: list[str],
    tier_order: Sequence[str] | None = None,
) -> dict[str, int]:
    """A tier pattern: one value per tier of ``tier_order``, or ``2;2;8`` (H;M;V) / ``2;2;8;8`` (H;M;L;V)."""
    parts = [p.strip() for p in spec.split(";")]
    order = tuple(tier_order) if tier_order else PATTERN_TIERS.get(len(parts))
    if order is None or len(parts) != len(order):
        problems.append(
            f"tier pattern {spec!r} must have one value per tier given ({';'.join(tier_order)})"
            if tier_order
            else f"tier pattern {spec!r} must have 3 values (H;M;V) or 4 values (H;M;L;V)"
        )
        return {}
    try:
        values = [int(p) for p in parts]
    except ValueError:
        problems.append(f"tier pattern {spec!r} must hold integers, like '2;2;8'")
        return {}
    by_tier = dict(zip(order, values))
    ranks = {}
    for code in codes:
        tier = tiers.get(code)
        if tier is None:
            problems.append(
                f"language {code!r} has no resource tier (neither in the tier assignment nor, without one,"
                " in the lang30 table): assign it a tier or give ranks as 'code=rank'"
            )
        elif tier not in by_tier:
            problems.append(
                f"language {code!r} is tier {tier}, which pattern {spec!r} ({';'.join(order)}) has no rank for"
            )
        else:
            ranks[code] = by_tier[tier]
    return ranks


def parse_ranks(
    spec: str | int | Mapping[str, int],
    codes: Sequence[str],
    tiers: Mapping[str, str],
    problems: list[str],
    tier_order: Sequence[str] | None = None,
) -> dict[str, int]:
    """Resolve the rank of every language in ``codes``.

    ``spec`` is an int (same rank everywhere), a mapping, ``en=2,oc=8`` (every language listed), or a tier
    pattern looked up through ``tiers``: with ``tier_order`` (the tiers a user assigned, in their order) one
    value per tier given (``--tiers 'H:en,fr;V:oc' --ranks 2;8``), else ``2;2;8`` (H;M;V) or ``2;2;8;8``
    (H;M;L;V) as in the paper.
    """
    if isinstance(spec, int) or (isinstance(spec, str) and re.fullmatch(r"\s*-?\d+\s*", spec)):
        return {c: int(spec) for c in codes}
    if isinstance(spec, Mapping) or (isinstance(spec, str) and "=" in spec):
        return _explicit_ranks(spec, codes, problems)
    if isinstance(spec, str):
        return _pattern_ranks(spec, codes, tiers, problems, tier_order)
    problems.append(f"ranks must be an int, a mapping or a string, not {type(spec).__name__}")
    return {}


def tier_assignment(tiers: str | Mapping[str, str] | None, problems: list[str]) -> dict[str, str]:
    """{code: tier}: the shipped tables when ``tiers`` is None, else only the given assignment."""
    if tiers is None:
        return known_tiers()
    if isinstance(tiers, str):
        return parse_tier_assignment(tiers, problems)
    return dict(tiers)
