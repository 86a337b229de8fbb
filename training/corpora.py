"""Parallel data in the forms people have it, read into one shape (``ParallelSplit``: aligned segments, each
with the text of the languages it has).

``--data`` may be, detected from what the path holds:

- **FLORES**: a directory of split directories, ``<root>/dev/eng.dev`` (FLORES-101) or ``eng_Latn.dev``
  (FLORES-200); ``--split`` names the split.
- **Aligned text files** (Moses style, as OPUS distributes them): ``<stem>.<lang>`` files in a directory, the
  files of one stem line-aligned: ``train.en`` + ``train.fr``, or ``Europarl.de-en.de`` + ``Europarl.de-en.en``.
  Two or more languages per stem; several stems add up.
- **JSONL**: a ``.jsonl`` file (or a directory of them), one ``{"translation": {"en": ..., "fr": ...}}`` per
  line (Hugging Face's translation format).
- **TSV**: a ``.tsv`` file (or a directory of them) whose header row names the languages.

In a directory, a stem or file name with a part (between ``.``, ``_``, ``-``) ``valid``, ``validation``, ``dev`` or
``newsdev`` is the validation part, one with ``test``, ``devtest``, ``newstest`` or ``tst`` (a year may follow)
the test part (``evaluate`` reads it); neither is trained on, nor is a training segment that shares a text with
them.

Language codes in the data may be any the language table knows (``en``, ``eng_Latn``, ``eng``: one language);
OPUS's regional ones (``pt_br``, ``zh_CN``) count as their language (``zh_TW`` and ``zh_HK`` as ``zh-Hant``).

Problems that make the data unusable (files of a group with different line counts, lines that are not JSON or
lack a second language, files not in UTF-8, no data) are collected with the file and line and reported
together. What can be skipped is, and counted in ``notes``: empty or one-sided lines, duplicate segments,
lines longer than ``MAX_LINE_CHARS``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lslo.languages.codes import lookup
from training.flores import ParallelSplit, find_language_file

MAX_LINE_CHARS = 4096  # longer lines are skipped: no model window holds them, and tokenizing them is slow
# A name part (between . _ - or the ends) that marks validation or test data: valid.en, dev-2023.jsonl,
# IWSLT17.TED.dev2010.en-fr.en, newstest2019.de, tst2013.en, flores.devtest.jsonl
TEST_NAME = re.compile(r"(^|[._-])(test|devtest|newstest|tst)\d*([._-]|$)", re.IGNORECASE)
VALID_NAME = re.compile(r"(^|[._-])(valid|validation|dev|newsdev)\d*([._-]|$)", re.IGNORECASE)
REGION = re.compile(r"^([a-z]{2,3})[_-]([A-Za-z]{2})$")


@dataclass
class DataReport:
    problems: list[str] = field(default_factory=list)  # fatal, reported before training
    notes: list[str] = field(default_factory=list)  # what was skipped, and why


def data_code(code: str) -> str:
    """A language code as data files write it (``en``, ``eng``, ``eng_Latn``, ``pt_br``) in the language table's
    form (``en``), so that one language under two codes is one language; unknown codes stay as they are."""
    row = lookup(code)
    if row is not None:
        return row.code
    match = REGION.match(code)
    if match:
        base, region = match.group(1), match.group(2).upper()
        return "zh-Hant" if base == "zh" and region in ("TW", "HK", "MO") else base
    return code


def detect_format(path: Path) -> str | None:
    """``flores``, ``text``, ``jsonl``, ``tsv`` or None."""
    if path.is_file():
        return {".jsonl": "jsonl", ".json": "jsonl", ".tsv": "tsv"}.get(path.suffix.lower())
    if not path.is_dir():
        return None
    if any(p.is_dir() and any(p.glob(f"*.{p.name}")) for p in path.iterdir()):
        return "flores"
    if any(path.glob("*.jsonl")):
        return "jsonl"
    if any(path.glob("*.tsv")):
        return "tsv"
    if _text_groups(path):
        return "text"
    return None


def _decode(path: Path, report: DataReport) -> list[str] | None:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        report.problems.append(f"{path.name} is not UTF-8 (byte {err.start}): convert it, e.g. with iconv")
        return None
    except OSError as err:
        report.problems.append(f"cannot read {path}: {err.strerror}")
        return None
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _text_groups(root: Path) -> dict[str, dict[str, Path]]:
    """{stem: {language: file}} of ``<stem>.<lang>`` files whose suffix is a language code."""
    groups: dict[str, dict[str, Path]] = {}
    for path in sorted(root.iterdir()):
        stem, dot, suffix = path.name.rpartition(".")
        if path.is_file() and dot and stem and lookup(data_code(suffix)) is not None:
            groups.setdefault(stem, {})[data_code(suffix)] = path
    return {stem: files for stem, files in groups.items() if len(files) >= 2}


class _Segments:
    """Segments as they are read: {language: text} each, with duplicates and one-language segments dropped."""

    def __init__(self, report: DataReport) -> None:
        self.report = report
        self.items: list[dict[str, str]] = []
        self.seen: set[tuple[tuple[str, str], ...]] = set()
        self.skipped = {"empty": 0, "long": 0, "duplicate": 0, "overlap": 0}

    def without(self, others: list[dict[str, str]]) -> None:
        """Drop the segments that share a (language, text) with ``others`` (validation or test data)."""
        held = {(lang, text) for segment in others for lang, text in segment.items()}
        kept = [s for s in self.items if not any(item in held for item in s.items())]
        self.skipped["overlap"] += len(self.items) - len(kept)
        self.items = kept

    def add(self, texts: dict[str, str]) -> None:
        kept, long = {}, 0
        for lang, text in texts.items():
            text = text.strip()
            if len(text) > MAX_LINE_CHARS:
                long += 1
            elif text:
                kept[lang] = text
        if long:
            self.skipped["long"] += long
        if len(kept) < 2:
            if not long:
                self.skipped["empty"] += 1
            return
        key = tuple(sorted(kept.items()))
        if key in self.seen:
            self.skipped["duplicate"] += 1
            return
        self.seen.add(key)
        self.items.append(kept)

    def note(self, where: str) -> None:
        for kind, count in self.skipped.items():
            if count:
                what = {
                    "empty": "segment(s) with fewer than two non-empty sides",
                    "long": f"line(s) over {MAX_LINE_CHARS} characters",
                    "duplicate": "repeated segment(s)",
                    "overlap": "training segment(s) sharing a text with the validation or test data",
                }[kind]
                self.report.notes.append(f"{where}: {count} {what}, skipped")


def _read_text_groups(groups: dict[str, dict[str, Path]], out: _Segments) -> None:
    for stem, files in groups.items():
        columns = {lang: _decode(path, out.report) for lang, path in files.items()}
        if any(c is None for c in columns.values()):
            continue
        sizes = {lang: len(c) for lang, c in columns.items()}  # type: ignore[arg-type]
        if len(set(sizes.values())) > 1:
            counts = ", ".join(f"{files[lang].name} {n}" for lang, n in sizes.items())
            out.report.problems.append(f"the files of {stem} must have the same number of lines: {counts}")
            continue
        for row in zip(*columns.values()):  # type: ignore[call-overload]
            out.add(dict(zip(columns, row)))


def _read_jsonl(paths: Iterable[Path], out: _Segments) -> None:
    for path in paths:
        lines = _decode(path, out.report)
        bad: list[str] = []
        for number, line in enumerate(lines or [], 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                translation = item["translation"] if isinstance(item, dict) else None
            except (json.JSONDecodeError, KeyError):
                bad.append(f"{path.name}:{number}: not a JSON object with a 'translation' field")
                continue
            if not isinstance(translation, dict) or sum(isinstance(v, str) for v in translation.values()) < 2:
                bad.append(f"{path.name}:{number}: 'translation' needs the texts of two languages")
                continue
            out.add({data_code(str(k)): v for k, v in translation.items() if isinstance(v, str)})
        out.report.problems.extend(bad[:5])
        if len(bad) > 5:
            out.report.problems.append(f"{path.name}: and {len(bad) - 5} more such lines")


def _read_tsv(paths: Iterable[Path], out: _Segments) -> None:
    for path in paths:
        lines = _decode(path, out.report)
        if not lines:
            continue
        header = [data_code(c.strip()) for c in lines[0].split("\t")]
        unknown = [c for c in header if lookup(c) is None]
        if len(header) < 2 or unknown:
            out.report.problems.append(
                f"{path.name}: the first row must name the languages of its columns, like "
                f"'en<TAB>fr' (not language codes: {unknown or header})"
            )
            continue
        for number, line in enumerate(lines[1:], 2):
            if not line.strip():
                out.add({})  # counted as empty
                continue
            cells = line.split("\t")
            if len(cells) != len(header):
                out.report.problems.append(f"{path.name}:{number}: {len(cells)} columns, the header has {len(header)}")
                break
            out.add(dict(zip(header, cells)))


@dataclass
class Corpus:
    train: ParallelSplit
    valid: ParallelSplit | None
    format: str


def _part_of(name: str) -> str:
    """``valid``, ``test`` or ``train``: the part of the data a stem or file name holds."""
    if TEST_NAME.search(name):
        return "test"
    return "valid" if VALID_NAME.search(name) else "train"


def _read_parts(path: Path, kind: str, report: DataReport) -> dict[str, _Segments]:
    """The segments of a non-FLORES corpus by part (train, valid, test), each part de-duplicated on its own."""
    parts = {name: _Segments(report) for name in ("train", "valid", "test")}
    if kind == "text":
        groups = _text_groups(path)
        for name, segments in parts.items():
            _read_text_groups({s: f for s, f in groups.items() if _part_of(s) == name}, segments)
        names = {stem: _part_of(stem) for stem in groups}
    else:
        suffixes = (".jsonl", ".json") if kind == "jsonl" else (".tsv",)
        reader = _read_jsonl if kind == "jsonl" else _read_tsv
        files = [f for f in (sorted(path.iterdir()) if path.is_dir() else [path]) if f.suffix.lower() in suffixes]
        if path.is_file():  # a file given by name is all one part: the training data
            reader(files, parts["train"])
            return parts
        for name, segments in parts.items():
            reader([f for f in files if _part_of(f.stem) == name], segments)
        names = {f.name: _part_of(f.stem) for f in files}
    if any(part != "train" for part in names.values()):
        report.notes.append(
            "; ".join(
                f"{part}: {', '.join(n for n, p in names.items() if p == part)}"
                for part in ("train", "valid", "test")
                if part in names.values()
            )
        )
    return parts


def _items(split: ParallelSplit) -> list[dict[str, str]]:
    """A split's segments as {language: text}."""
    return [{c: t for c in split.languages if (t := split.lines[c][i]) is not None} for i in range(split.size)]


def _split_of(name: str, segments: _Segments) -> ParallelSplit | None:
    if not segments.items:
        return None
    codes = sorted({lang for s in segments.items for lang in s})
    lines = {code: [s.get(code) for s in segments.items] for code in codes}
    return ParallelSplit(name, tuple(codes), lines, {})


def _format_of(path: Path, report: DataReport) -> str | None:
    kind = detect_format(path)
    if kind is None:
        report.problems.append(
            f"{path} holds no data this reads: a FLORES directory, files named <stem>.<lang>, "
            ".jsonl or .tsv (see python -m training finetune --help)"
        )
    return kind


def read_corpus(path: Path, split: str, report: DataReport, valid_path: Path | None = None) -> Corpus | None:
    """The training data at ``path`` (any format above) and its validation part (``valid_path``'s data when
    given); ``split`` only for FLORES. Problems go to ``report``."""
    kind = _format_of(path, report)
    if kind is None:
        return None
    given = read_test_data(valid_path, "valid", report) if valid_path is not None else None
    if kind == "flores":
        if given is None and split != "dev" and (path / "dev").is_dir():
            given = read_flores_split(path, "dev", report)  # training on another split: dev validates
        return Corpus(read_flores_split(path, split, report), given, kind)
    parts = _read_parts(path, kind, report)
    held = parts["test"].items + (_items(given) if given is not None else parts["valid"].items)
    parts["train"].without(held)
    parts["train"].note(path.name)
    train = _split_of("train", parts["train"])
    if train is None:
        report.problems.append(
            f"{path} holds no usable training segment (two languages, non-empty; test and "
            "validation files do not count)"
        )
        return None
    valid = given if valid_path is not None else _split_of("valid", parts["valid"])
    return Corpus(train, valid, kind)


def read_test_data(path: Path, split: str, report: DataReport) -> ParallelSplit | None:
    """Data to evaluate or validate on. FLORES: the split named (``auto``: devtest, ``valid``: dev). Other
    forms: ``test``, ``valid`` or ``train`` (that part), ``all``, or ``auto``: the test part, else (noted) all of
    it; ``valid`` also falls back to all of it, which is how a ``--valid`` directory of plain files is read."""
    kind = _format_of(path, report)
    if kind is None:
        return None
    if kind == "flores":
        return read_flores_split(path, {"auto": "devtest", "valid": "dev"}.get(split, split), report)
    if split not in ("auto", "test", "valid", "train", "all"):
        report.problems.append(
            f"--split {split!r}: for data that is not in the FLORES layout, give auto, test, valid, train or all"
        )
        return None
    parts = _read_parts(path, kind, report)
    wanted = {"auto": "test"}.get(split, split)
    if wanted in parts and parts[wanted].items:
        return _split_of(wanted, parts[wanted])
    if split in ("test", "train"):
        report.problems.append(f"{path} has no {split} part (files or stems named {split}*)")
        return None
    if split == "valid" and parts["test"].items:
        report.problems.append(
            f"{path} has no valid part (files or stems named valid*, dev*) and its test part is not validation data"
        )
        return None
    if split == "auto":
        report.notes.append(f"{path} has no test part (test* files or stems): all of it is used")
    elif split == "valid":
        report.notes.append(f"{path} has no valid part (valid*, dev* files or stems): all of it validates")
    every = _Segments(report)
    for segments in parts.values():
        for item in segments.items:
            every.add(item)
    found = _split_of("all", every)
    if found is None:
        report.problems.append(f"{path} holds no usable segment (two languages, non-empty)")
    return found


def read_flores_split(root: Path, split: str, report: DataReport, codes: list[str] | None = None) -> ParallelSplit:
    """A FLORES split: the languages ``codes`` (default: every file of the split)."""
    if not (root / split).is_dir():
        report.problems.append(f"data directory {root} has no {split!r} split ({root / split}/)")
        return ParallelSplit(split, (), {}, {})
    if codes is None:
        codes = sorted(
            lookup(p.name.rsplit(".", 1)[0]).code if lookup(p.name.rsplit(".", 1)[0]) else p.name.rsplit(".", 1)[0]
            for p in (root / split).glob(f"*.{split}")
        )
    lines: dict[str, list[str | None]] = {}
    files: dict[str, Path] = {}
    for code in codes:
        path = find_language_file(root, split, code)
        if path is None:
            report.problems.append(f"language {code!r} has no file in {root / split}")
            continue
        rows = _decode(path, report)
        if rows is None:
            continue
        lines[code] = [r.strip() or None for r in rows]
        files[code] = path
    sizes = {c: len(v) for c, v in lines.items()}
    if len(set(sizes.values())) > 1:
        report.problems.append(
            "the files of one split must have the same number of lines: "
            + ", ".join(f"{files[c].name} {n}" for c, n in sizes.items())
        )
    return ParallelSplit(split, tuple(lines), lines, files)
