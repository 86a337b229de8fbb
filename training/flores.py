"""Reading parallel data in the FLORES-101 layout (``<root>/dev/eng.dev``) or the FLORES-200 layout
(``<root>/dev/eng_Latn.dev``).

Files of one split are line-aligned across languages. An empty line means the segment is missing in that
language (the corpus builder writes such lines for its partially aligned ``train`` split); pairs are
formed only where both sides exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lslo.errors import ConfigError
from lslo.languages.codes import flores_names


@dataclass(frozen=True)
class ParallelSplit:
    name: str
    languages: tuple[str, ...]
    lines: dict[str, list[str | None]]  # model code -> one entry per segment (None where missing)
    files: dict[str, Path]

    @property
    def size(self) -> int:
        return len(next(iter(self.lines.values()))) if self.lines else 0

    def present(self, code: str) -> int:
        return sum(1 for line in self.lines[code] if line is not None)


def find_language_file(root: Path, split: str, code: str) -> Path | None:
    for stem in flores_names(code):
        path = root / split / f"{stem}.{split}"
        if path.is_file():
            return path
    return None


def missing_languages(root: Path, split: str, codes: Sequence[str]) -> list[str]:
    """Problems for languages that have no file in ``root/split`` (one line per language)."""
    problems = []
    for code in codes:
        if find_language_file(root, split, code) is None:
            tried = ", ".join(f"{split}/{stem}.{split}" for stem in flores_names(code))
            problems.append(f"language {code!r} has no file in {root} (looked for {tried})")
    return problems


def read_split(root: str | Path, split: str, codes: Sequence[str]) -> ParallelSplit:
    """Read ``split`` for ``codes``; ConfigError lists every missing file or misaligned length at once."""
    root = Path(root)
    if not (root / split).is_dir():
        raise ConfigError([f"data directory {root} has no {split!r} split (expected {root / split}/)"], "data")
    problems = missing_languages(root, split, codes)
    if problems:
        raise ConfigError(problems, "data")
    lines: dict[str, list[str | None]] = {}
    files: dict[str, Path] = {}
    for code in codes:
        path = find_language_file(root, split, code)
        assert path is not None
        text = path.read_text(encoding="utf-8")
        rows = text.split("\n")
        if rows and rows[-1] == "":
            rows.pop()
        lines[code] = [r.strip() or None for r in rows]
        files[code] = path
    sizes = {c: len(v) for c, v in lines.items()}
    if len(set(sizes.values())) > 1:
        raise ConfigError(
            [f"{files[c].name} has {n} lines" for c, n in sizes.items()]
            + ["files of one split must be line-aligned (same number of lines)"],
            "data",
        )
    return ParallelSplit(split, tuple(codes), lines, files)
