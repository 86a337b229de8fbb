"""The data a training run uses: its corpus read (``training.corpora``), its languages in the base model's
codes, the directions it trains, and its validation data (given, found beside the training data, or a seeded
held-out share of it)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lslo.languages.tables import load_table
from lslo.languages.tokens import LanguageVocabulary
from training.corpora import DataReport, read_corpus
from training.flores import ParallelSplit
from training.settings import TrainSettings

MIN_SEGMENTS_FOR_VALIDATION = 20  # fewer than this: no held-out share (it would leave too little to train on)


@dataclass
class TrainingData:
    train: ParallelSplit
    valid: ParallelSplit | None
    languages: list[str]  # the base model's codes
    directions: list[tuple[str, str]]
    vocabulary: LanguageVocabulary
    notes: list[str] = field(default_factory=list)


def in_model_codes(
    split: ParallelSplit, vocabulary: LanguageVocabulary, keep: Sequence[str] | None = None
) -> ParallelSplit:
    """``split`` with its languages under the base model's codes (those it has a token for), only those in
    ``keep`` when given. Two columns of one language (``en`` and ``eng``) are merged, the first text winning."""
    lines: dict[str, list[str | None]] = {}
    for code, column in split.lines.items():
        model = vocabulary.model_code(code)
        if model is None or (keep is not None and model not in keep):
            continue
        if model in lines:
            column = [a if a is not None else b for a, b in zip(lines[model], column)]
        lines[model] = list(column)
    return ParallelSplit(split.name, tuple(lines), lines, dict(split.files))


def wanted_languages(spec: str, vocabulary: LanguageVocabulary, found: Sequence[str], problems: list[str]) -> list[str]:
    """``auto`` (every language of the data), ``lang12``/``lang30`` or a comma list, as model codes."""
    if spec == "auto":
        given = list(found)
    elif spec in ("lang12", "lang30"):
        given = list(load_table(spec))
    else:
        given = [c.strip() for c in spec.split(",") if c.strip()]
    out = []
    for code in given:
        model = vocabulary.model_code(code)
        if model is None:
            problems.append(vocabulary.unknown(code))
        elif model not in out:
            out.append(model)
    return out


def parse_directions(
    spec: str | None, vocabulary: LanguageVocabulary, languages: Sequence[str], problems: list[str]
) -> list[tuple[str, str]] | None:
    """``en>fr,fr>en`` (``:`` or, where it is not ambiguous, ``-`` also separate) as model-code pairs."""
    if not spec:
        return None
    out = []
    for item in (i.strip() for i in spec.split(",") if i.strip()):
        pair = None
        for separator in (">", ":"):
            if separator in item:
                left, _, right = item.partition(separator)
                pair = (vocabulary.model_code(left.strip()), vocabulary.model_code(right.strip()))
                break
        else:
            for i, c in enumerate(item):
                if c == "-":
                    candidate = (vocabulary.model_code(item[:i]), vocabulary.model_code(item[i + 1 :]))
                    if None not in candidate:
                        pair = candidate
                        break
        if pair is None or None in pair or pair[0] == pair[1]:
            problems.append(f"--directions {item!r} is not two different languages of the base (like 'en>fr')")
        elif pair[0] not in languages or pair[1] not in languages:
            problems.append(f"--directions {item!r}: the training languages are {', '.join(languages)}")
        else:
            out.append(pair)  # type: ignore[arg-type]
    return out


def held_out(split: ParallelSplit, share: float, most: int, seed: int) -> tuple[ParallelSplit, ParallelSplit | None]:
    """(training rest, validation) with ``share`` of the segments (at most ``most``) drawn by ``seed``."""
    count = min(most, round(share * split.size))
    if share <= 0 or count == 0 or split.size < MIN_SEGMENTS_FOR_VALIDATION:
        return split, None
    chosen = set(random.Random(seed).sample(range(split.size), count))
    keep = [i for i in range(split.size) if i not in chosen]
    pick = sorted(chosen)

    def part(name: str, rows: list[int]) -> ParallelSplit:
        lines = {c: [v[i] for i in rows] for c, v in split.lines.items()}
        return ParallelSplit(name, split.languages, lines, dict(split.files))

    return part(split.name, keep), part("valid", pick)


def training_data(
    settings: TrainSettings, tokenizer: Any, problems: list[str], validates: bool = True
) -> TrainingData | None:
    """Read and check everything about the data; problems (and what was skipped, as notes) are collected.

    Without a tokenizer (the base could not be read) the codes are checked against the language table, so
    the data's own problems are still reported with the base's. ``validates=False``: the recipe does not
    validate, so nothing is held out of its training data and the validation options are refused."""
    if not validates:
        given = [flag for flag, value in (("--valid", settings.valid), ("--patience", settings.patience)) if value]
        if given:
            problems.append(f"{' and '.join(given)}: this command does not validate (finetune does)")
    report = DataReport()
    split = settings.split if settings.split != "auto" else ("train" if (settings.data / "train").is_dir() else "dev")
    corpus = read_corpus(settings.data, split, report, settings.valid)
    problems.extend(report.problems)
    if corpus is None:
        return None
    vocabulary = LanguageVocabulary(tokenizer) if tokenizer is not None else LanguageVocabulary.of_table()
    languages = wanted_languages(settings.languages, vocabulary, list(corpus.train.languages), problems)
    train = in_model_codes(corpus.train, vocabulary)
    missing = [c for c in languages if c not in train.languages]
    if missing:
        problems.append(f"the data has no text in {', '.join(missing)} (it has {', '.join(corpus.train.languages)})")
    train = in_model_codes(train, vocabulary, languages)
    directions = parse_directions(settings.directions, vocabulary, languages, problems)
    present = [
        (s, t)
        for s in train.languages
        for t in train.languages
        if s != t and any(a is not None and b is not None for a, b in zip(train.lines[s], train.lines[t]))
    ]
    chosen = [d for d in present if directions is None or d in directions]
    if directions is not None:
        absent = [f"{s}>{t}" for s, t in directions if (s, t) not in present]
        if absent:
            problems.append(f"--directions {', '.join(absent)}: the data has no segment in both languages")
    if not chosen and not missing:
        problems.append("no direction to train: the data has no segment with two of the chosen languages")
    valid = None
    if validates and corpus.valid is not None and (settings.valid is not None or settings.valid_share > 0):
        valid = in_model_codes(corpus.valid, vocabulary, languages)
    elif validates and settings.valid_share > 0:
        train, valid = held_out(train, settings.valid_share, settings.valid_max, settings.seed)
        if valid is None:
            report.notes.append(
                f"no validation: {settings.valid_share} of {train.size} segments is "
                f"{round(settings.valid_share * train.size)} (a held-out share needs at least "
                f"{MIN_SEGMENTS_FOR_VALIDATION} segments of data and one to hold out)"
            )
    return TrainingData(train, valid, languages, chosen, vocabulary, report.notes)
