"""``corpus``: a many-way parallel corpus in the FLORES-101 layout from offline sources.

Splits, deterministic in ``--seed``:

- ``devtest`` and ``dev``: segments present in *every* language, like FLORES (``dev`` plays FLORES-101 dev,
  the fine-tuning data; ``devtest`` the test set).
- ``train``: every other segment, for training a base model; a language's line is empty where it lacks
  the segment. ``--train-share H:1,M:0.35,V:0.06`` keeps only that share of a tier's lines, which makes
  resource tiers real: a base trained on it knows High languages well and Very-low ones barely.

Segments are deduplicated by their English text, so no sentence is in two splits. ``stats.json`` records
sources and versions, sizes per language and split (also by source), and lengths.
"""

from __future__ import annotations

import json
import random
import zlib
from collections.abc import Sequence
from pathlib import Path

from pydantic import Field

from lslo.errors import raise_if_problems
from lslo.languages.codes import flores101_stem, language_name
from lslo.languages.tables import TIERS, parse_language_list, tier_assignment
from training import libreoffice
from training.corpus_sources import SOURCES, SegmentTable
from training.settings import Settings

SOURCE_NAMES = (*SOURCES, "libreoffice-help", "libreoffice-ui")
KEY_SOURCES = {libreoffice.HELP_KEY: "libreoffice-help", libreoffice.UI_KEY: "libreoffice-ui"}  # segment key -> source


class CorpusSettings(Settings):
    out: Path = Field(description="output directory (gets dev/, devtest/, train/ and stats.json)")
    languages: str = Field(description="lang12, lang30 or a comma list of model codes")
    sources: str = Field("django,cldr", description=f"comma list of {', '.join(SOURCE_NAMES)}")
    dev: int = Field(300, ge=1, description="segments in the dev split (fine-tuning data)")
    devtest: int = Field(300, ge=1, description="segments in the devtest split (test data)")
    tiers: str | None = Field(None, description="tier assignment like 'H:en,fr;M:nl;V:af' (default: lang30 table)")
    train_share: str | None = Field(None, description="share of train lines kept per tier, e.g. 'H:1,M:0.35,V:0.06'")
    max_chars: int = Field(160, ge=8, description="longest segment kept")
    libreoffice_help: Path = Field(libreoffice.HELP_ROOT, description="where libreoffice-help-* packages put the help")
    libreoffice_ui: Path = Field(libreoffice.UI_ROOT, description="where libreoffice-l10n-* packages put the catalogs")
    seed: int = 0


def parse_shares(spec: str | None, problems: list[str]) -> dict[str, float]:
    shares: dict[str, float] = {}
    for item in (spec or "").split(","):
        if not item.strip():
            continue
        tier, _, value = item.partition(":")
        try:
            share = float(value)
        except ValueError:
            problems.append(f"--train-share item {item!r} must look like 'M:0.35'")
            continue
        if tier.strip() not in TIERS or not 0 <= share <= 1:
            problems.append(f"--train-share item {item!r}: tier must be one of {TIERS}, share in [0, 1]")
        shares[tier.strip()] = share
    return shares


def merge(tables: Sequence[SegmentTable]) -> SegmentTable:
    merged: SegmentTable = {}
    for table in tables:
        for key, texts in table.items():
            merged.setdefault(key, {}).update(texts)
    return merged


def dedupe(table: SegmentTable) -> SegmentTable:
    """Keep the first segment (in key order) of each English text; segments without English stay."""
    seen: set[str] = set()
    out: SegmentTable = {}
    for key in sorted(table):
        english = table[key].get("en")
        if english is not None:
            if english.lower() in seen:
                continue
            seen.add(english.lower())
        out[key] = table[key]
    return out


def _keep(seed: int, code: str, key: tuple[str, ...], share: float) -> bool:
    if share >= 1:
        return True
    h = zlib.crc32(f"{seed}|{code}|{'|'.join(key)}".encode())
    return h / 2**32 < share


def read_source(name: str, codes: Sequence[str], settings: CorpusSettings) -> tuple[SegmentTable, str]:
    if name == "libreoffice-help":
        return libreoffice.help_segments(codes, settings.max_chars, settings.libreoffice_help)
    if name == "libreoffice-ui":
        return libreoffice.ui_segments(codes, settings.max_chars, settings.libreoffice_ui)
    return SOURCES[name](codes, settings.max_chars)


def check_settings(settings: CorpusSettings) -> tuple[list[str], list[str], dict[str, float], dict[str, str]]:
    """(codes, sources, train shares per tier, tiers); one ConfigError with every problem."""
    problems: list[str] = settings.problems()
    codes = parse_language_list(settings.languages, problems)
    sources = [s.strip() for s in settings.sources.split(",") if s.strip()]
    unknown = [s for s in sources if s not in SOURCE_NAMES]
    if unknown or not sources:
        problems.append(f"--sources {settings.sources!r}: choose from {', '.join(SOURCE_NAMES)}")
    shares = parse_shares(settings.train_share, problems)
    tiers = tier_assignment(settings.tiers, problems) if (settings.tiers or shares) else {}
    if shares:
        problems.extend(f"language {c!r} has no tier for --train-share" for c in codes if c not in tiers)
    if settings.out.exists() and any(settings.out.iterdir()):
        problems.append(f"{settings.out} exists and is not empty")
    raise_if_problems(problems, "inputs")
    return codes, sources, shares, tiers


def split_segments(
    segments: SegmentTable, codes: Sequence[str], settings: CorpusSettings
) -> dict[str, list[tuple[str, ...]]]:
    """Segment keys of devtest and dev (present in every language) and train (the rest, in two or more)."""
    absent = [c for c in codes if not any(c in texts for texts in segments.values())]
    aligned = [k for k in sorted(segments) if all(c in segments[k] for c in codes)]
    needed = settings.dev + settings.devtest
    problems = []
    if absent:
        problems.append(f"no source has text for {absent}")
    if len(aligned) < needed:
        problems.append(
            f"only {len(aligned)} segments exist in all {len(codes)} languages; dev + devtest need "
            f"{needed} (use fewer languages, more sources, or smaller --dev / --devtest)"
        )
    raise_if_problems(problems, "corpus")
    rng = random.Random(settings.seed)
    rng.shuffle(aligned)
    held_out = set(aligned[:needed])
    train = [k for k in sorted(segments) if k not in held_out and sum(c in segments[k] for c in codes) >= 2]
    rng.shuffle(train)
    return {"devtest": aligned[: settings.devtest], "dev": aligned[settings.devtest : needed], "train": train}


def write_split(
    out: Path, name: str, keys: Sequence[tuple[str, ...]], segments: SegmentTable, code: str, share: float, seed: int
) -> list[str]:
    """Write one language's file of one split (an empty line where the segment is missing or not kept);
    returns the lines written."""
    lines = []
    for key in keys:
        text = segments[key].get(code)
        lines.append(text if text is not None and _keep(seed, code, key, share) else "")
    (out / name).mkdir(parents=True, exist_ok=True)
    (out / name / f"{flores101_stem(code)}.{name}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lines


def source_counts(
    split_keys: dict[str, list[tuple[str, ...]]],
    segments: SegmentTable,
    codes: Sequence[str],
    shares: dict[str, float],
    tiers: dict[str, str],
    seed: int,
) -> dict[str, dict[str, dict[str, int]]]:
    """``{source: {split: {language: lines}}}``: the lines each source gave each language's file."""
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for name, keys in split_keys.items():
        for key in keys:
            per_split = counts.setdefault(KEY_SOURCES.get(key[0], key[0]), {}).setdefault(name, dict.fromkeys(codes, 0))
            for code in codes:
                share = shares.get(tiers.get(code, ""), 1.0) if name == "train" else 1.0
                if code in segments[key] and _keep(seed, code, key, share):
                    per_split[code] += 1
    return counts


def run_corpus(settings: CorpusSettings) -> Path:
    codes, sources, shares, tiers = check_settings(settings)
    tables, described = [], []
    for name in sources:
        table, description = read_source(name, codes, settings)
        tables.append(table)
        described.append(description)
    segments = dedupe(merge(tables))
    split_keys = split_segments(segments, codes, settings)

    stats: dict = {
        "sources": described,
        "seed": settings.seed,
        "train_share": shares or None,
        "splits": {name: len(keys) for name, keys in split_keys.items()},
        "languages": {},
    }
    for name, keys in split_keys.items():
        for code in codes:
            share = shares.get(tiers.get(code, ""), 1.0) if name == "train" else 1.0
            present = [
                line for line in write_split(settings.out, name, keys, segments, code, share, settings.seed) if line
            ]
            entry = stats["languages"].setdefault(
                code, {"name": language_name(code), "tier": tiers.get(code), "file": flores101_stem(code)}
            )
            entry[name] = len(present)
            if name == "dev":
                entry["mean_chars"] = round(sum(map(len, present)) / max(len(present), 1), 1)
                entry["mean_words"] = round(sum(len(x.split()) for x in present) / max(len(present), 1), 1)
    stats["by_source"] = source_counts(split_keys, segments, codes, shares, tiers, settings.seed)
    (settings.out / "stats.json").write_text(json.dumps(stats, indent=1, ensure_ascii=False), encoding="utf-8")
    print(
        f"corpus: {len(codes)} languages, dev {settings.dev}, devtest {settings.devtest}, train "
        f"{len(split_keys['train'])} segments ({'; '.join(described)}) -> {settings.out}"
    )
    return settings.out
