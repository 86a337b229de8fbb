"""Plain text, subtitles (SRT) and gettext catalogs (PO/POT): what to translate, and the file rebuilt around
the translations. Every reader refuses a file that is not what its extension says with ``DocumentError``."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

import polib


class DocumentError(ValueError):
    """The file cannot be read as its format; the message says why (shown to the client)."""


def decode_text(data: bytes, what: str) -> str:
    if b"\x00" in data:
        raise DocumentError(f"not a {what} file: it holds binary data")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DocumentError(f"not a {what} file in UTF-8 (byte {err.start} is not UTF-8)") from None


@dataclass
class TextDocument:
    """Paragraphs (blocks between blank lines) are the texts; the blank lines between them stay."""

    parts: list[str]  # paragraphs at even positions, separators at odd ones

    @classmethod
    def read(cls, data: bytes) -> TextDocument:
        return cls(re.split(r"(\n[ \t]*\n(?:[ \t]*\n)*)", decode_text(data, ".txt").replace("\r\n", "\n")))

    @property
    def texts(self) -> list[str]:
        return [p for p in self.parts[::2] if p.strip()]

    def render(self, translations: Sequence[str]) -> bytes:
        it = iter(translations)
        out = [(next(it) if i % 2 == 0 and p.strip() else p) for i, p in enumerate(self.parts)]
        return "".join(out).encode("utf-8")


TIMING = re.compile(r"^\d{1,2}:\d{2}:\d{2}[,.]\d{1,3} --> \d{1,2}:\d{2}:\d{2}[,.]\d{1,3}(?: .*)?$")


@dataclass
class Cue:
    index: str
    timing: str
    lines: list[str]


@dataclass
class SubtitleDocument:
    """SRT cues: each cue's lines are one text; its translation is wrapped to as many lines again."""

    cues: list[Cue]

    @classmethod
    def read(cls, data: bytes) -> SubtitleDocument:
        text = decode_text(data, ".srt").replace("\r\n", "\n").strip("\n")
        cues = []
        for number, block in enumerate(re.split(r"\n[ \t]*\n+", text), 1):
            lines = block.split("\n")
            if len(lines) < 2 or not lines[0].strip().isdigit() or not TIMING.match(lines[1].strip()):
                raise DocumentError(f"not an .srt file: block {number} does not start with a number and a timing "
                                    "line like '00:00:01,000 --> 00:00:02,500'")
            cues.append(Cue(lines[0].strip(), lines[1].strip(), lines[2:]))
        if not cues:
            raise DocumentError("not an .srt file: no subtitles in it")
        return cls(cues)

    @property
    def texts(self) -> list[str]:
        return [" ".join(line.strip() for line in cue.lines) for cue in self.cues if any(cue.lines)]

    def render(self, translations: Sequence[str]) -> bytes:
        it = iter(translations)
        blocks = []
        for cue in self.cues:
            lines = wrap(next(it), len(cue.lines)) if any(cue.lines) else cue.lines
            blocks.append("\n".join([cue.index, cue.timing, *lines]))
        return ("\n\n".join(blocks) + "\n").encode("utf-8")


def wrap(text: str, n_lines: int) -> list[str]:
    """``text`` on ``n_lines`` lines of about equal length, cut at spaces (anywhere, in text without spaces)."""
    if n_lines <= 1 or len(text) < 2:
        return [text]
    words = text.split(" ") if " " in text else list(text)
    joiner = " " if " " in text else ""
    target = len(text) / n_lines
    lines, current = [], ""
    for word in words:
        candidate = current + joiner + word if current else word
        overshoot = len(candidate) - target
        if current and overshoot > 0 and overshoot >= target - len(current) and len(lines) < n_lines - 1:
            lines.append(current)  # the line is nearer the target without this word
            current = word
        else:
            current = candidate
    return [*lines, current]


@dataclass
class CatalogDocument:
    """A gettext catalog: every untranslated message gets a machine translation, marked ``fuzzy`` for review
    (gettext's convention), plural forms included; translated messages, comments, flags, references and the
    header stay (the header's ``Language`` becomes the target)."""

    catalog: polib.POFile
    todo: list[polib.POEntry]

    @classmethod
    def read(cls, data: bytes) -> CatalogDocument:
        text = decode_text(data, ".po")
        if not text.strip():
            raise DocumentError("not a .po file: it is empty")
        # polib takes either a path or the content and opens whatever exists as a path: it only ever gets the
        # path of a file written here, so no uploaded text can name a file on this machine.
        with tempfile.NamedTemporaryFile("w", suffix=".po", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            try:
                catalog = polib.pofile(f.name, encoding="utf-8")
            except (OSError, ValueError, UnicodeDecodeError) as err:
                raise DocumentError(f"not a valid .po file: {str(err).replace(' ' + f.name, '')}") from None
        todo = [e for e in catalog if not e.obsolete and e.msgid and not e.translated()]
        if not catalog and not catalog.metadata:
            raise DocumentError("not a .po file: no messages and no header in it")
        return cls(catalog, todo)

    @property
    def texts(self) -> list[str]:
        out = []
        for entry in self.todo:
            out.append(entry.msgid)
            if entry.msgid_plural:
                out.append(entry.msgid_plural)
        return out

    def render(self, translations: Sequence[str], target: str = "") -> bytes:
        it = iter(translations)
        for entry in self.todo:
            singular = next(it)
            if entry.msgid_plural:
                plural = next(it)
                forms = max(len(entry.msgstr_plural), plural_count(self.catalog), 2)
                entry.msgstr_plural = {i: singular if i == 0 else plural for i in range(forms)}
            else:
                entry.msgstr = singular
            if "fuzzy" not in entry.flags:
                entry.flags.append("fuzzy")
        if target:
            self.catalog.metadata["Language"] = target
        text = str(self.catalog)
        if not self.catalog.header and text.startswith("#\n"):  # polib writes an empty header comment as "#"
            text = text[2:]
        return text.encode("utf-8")


def plural_count(catalog: polib.POFile) -> int:
    match = re.search(r"nplurals\s*=\s*(\d+)", catalog.metadata.get("Plural-Forms", ""))
    return int(match.group(1)) if match else 2
