"""Plain text, subtitles (SRT), gettext catalogs (PO/POT) and HTML files: what to translate, and the file
rebuilt around the translations. Every reader refuses a file that is not what its extension says with
``DocumentError``. A document has ``texts`` (to translate, in order), ``characters`` (how much text that is,
for the limit), ``sample`` (for language detection) and ``render(translations, target)``."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from server.text.markup import SegmentedHtml
from server.text.markup import parse as parse_html
from server.text.placeholders import DEFAULT, Syntax


class DocumentError(ValueError):
    """The file cannot be read as its format; the message says why (shown to the client)."""


BOM = "\ufeff"


def decode_text(data: bytes, what: str, encoding: str = "utf-8") -> str:
    if b"\x00" in data:
        raise DocumentError(f"not a {what} file: it holds binary data")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        raise DocumentError(
            f"not a {what} file in {encoding.upper()} (byte {err.start} is not {encoding.upper()})"
        ) from None
    except LookupError:
        raise DocumentError(f"not a {what} file: its encoding {encoding!r} is not known") from None


@dataclass
class Lines:
    """A text file's line ending and byte-order mark, to write the translation as the source was written."""

    newline: str
    bom: bool

    @classmethod
    def read(cls, data: bytes, what: str) -> tuple[Lines, str]:
        text = decode_text(data, what)
        bom = text.startswith(BOM)
        text = text.removeprefix(BOM)
        newline = "\r\n" if "\r\n" in text else "\n"
        return cls(newline, bom), text.replace("\r\n", "\n")

    def write(self, text: str) -> bytes:
        return ((BOM if self.bom else "") + text.replace("\n", self.newline)).encode("utf-8")


class Measured:
    """``characters``, ``sample`` and ``syntaxes`` of a document whose ``texts`` are its text."""

    @property
    def texts(self) -> list[str]:
        raise NotImplementedError

    @property
    def syntaxes(self) -> list[Syntax]:
        """The placeholder syntax of each text (a format that does not declare one: ``DEFAULT`` for all)."""
        return [DEFAULT] * len(self.texts)

    @property
    def characters(self) -> int:
        return sum(len(t) for t in self.texts)

    @property
    def sample(self) -> str:
        return " ".join(self.texts)[:2000]


@dataclass
class TextDocument(Measured):
    """Paragraphs (blocks between blank lines) are the texts; the blank lines between them stay."""

    parts: list[str]  # paragraphs at even positions, separators at odd ones
    lines: Lines

    @classmethod
    def read(cls, data: bytes) -> TextDocument:
        lines, text = Lines.read(data, ".txt")
        return cls(re.split(r"(\n[ \t]*\n(?:[ \t]*\n)*)", text), lines)

    @property
    def texts(self) -> list[str]:
        return [p for p in self.parts[::2] if p.strip()]

    def render(self, translations: Sequence[str], target: str = "", untranslated: Collection[int] = ()) -> bytes:
        it = iter(translations)
        out = [(next(it) if i % 2 == 0 and p.strip() else p) for i, p in enumerate(self.parts)]
        return self.lines.write("".join(out))


@dataclass
class HtmlDocument(Measured):
    """An HTML file: each unit's text, then its inline elements' texts (they place the tags)."""

    html: SegmentedHtml

    @classmethod
    def read(cls, data: bytes) -> HtmlDocument:
        return cls(parse_html(decode_text(data, ".html").removeprefix(BOM)))

    @property
    def texts(self) -> list[str]:
        return [t for u in self.html.units for t in (u.model_text(), *u.span_texts())]

    @property
    def characters(self) -> int:
        return sum(len(u.model_text()) for u in self.html.units)

    @property
    def sample(self) -> str:
        return " ".join(u.model_text() for u in self.html.units)[:2000]

    def render(self, translations: Sequence[str], target: str = "", untranslated: Collection[int] = ()) -> bytes:
        it = iter(translations)
        units, spans = [], []
        for unit in self.html.units:
            units.append(next(it))
            spans.append([next(it) for _ in unit.span_texts()])
        return self.html.assemble(units, spans).encode("utf-8")


TIMING = re.compile(r"^\d{1,2}:\d{2}:\d{2}[,.]\d{1,3} --> \d{1,2}:\d{2}:\d{2}[,.]\d{1,3}(?: .*)?$")
VTT_TIMING = re.compile(r"^(?:\d+:)?\d{2}:\d{2}\.\d{3}[ \t]+-->[ \t]+(?:\d+:)?\d{2}:\d{2}\.\d{3}(?:[ \t].*)?$")
WRAPPING_TAGS = re.compile(r"^((?:<[^<>]+>)*)(.*?)((?:</[^<>]+>)*)$", re.S)  # "<i>text</i>": tags around a line


def _wrapping(line: str) -> tuple[str, str, str]:
    """(opening tags, text, closing tags) of a subtitle line (the pattern matches every string)."""
    match = WRAPPING_TAGS.match(line.strip())
    assert match is not None
    opening, text, closing = match.groups()
    return opening, text, closing


@dataclass
class Cue:
    index: str  # WebVTT: the optional identifier ("" when there is none)
    timing: str
    lines: list[str]
    verbatim: bool = False  # a WebVTT header, NOTE, STYLE or REGION block: kept as it is (its text in lines)

    @property
    def dialogue(self) -> bool:
        """Lines that each start a speaker's turn ("- Yes.") are translated one by one."""
        return len(self.lines) > 1 and all(line.lstrip().startswith(("-", "–", "—")) for line in self.lines)


def _cjk(c: str) -> bool:
    return ord(c) >= 0x2E80


def join_lines(lines: Sequence[str]) -> str:
    """A cue's lines as one sentence: a space between them, none between two characters of a script without
    spaces (Chinese, Japanese)."""
    out = ""
    for line in (line.strip() for line in lines):
        if out and line and not (_cjk(out[-1]) and _cjk(line[0])):
            out += " "
        out += line
    return out


@dataclass
class SubtitleDocument(Measured):
    """SRT cues: a cue's text is translated as one sentence and wrapped to as many lines again; dialogue lines
    ("- ...") one by one; tags around a whole line (``<i>...</i>``) stay around it."""

    cues: list[Cue]
    lines: Lines

    @classmethod
    def read(cls, data: bytes) -> SubtitleDocument:
        lines, text = Lines.read(data, ".srt")
        cues = []
        for number, block in enumerate(re.split(r"\n[ \t]*\n+", text.strip("\n")), 1):
            rows = block.split("\n")
            if len(rows) < 2 or not rows[0].strip().isdigit() or not TIMING.match(rows[1].strip()):
                raise DocumentError(
                    f"not an .srt file: block {number} does not start with a number and a timing "
                    "line like '00:00:01,000 --> 00:00:02,500'"
                )
            cues.append(Cue(rows[0].strip(), rows[1].strip(), rows[2:]))
        if not cues:
            raise DocumentError("not an .srt file: no subtitles in it")
        return cls(cues, lines)

    @staticmethod
    def _units(cue: Cue) -> list[tuple[str, str, str]]:
        """(opening tags, text, closing tags) of each translated piece of a cue."""
        lines = [line for line in cue.lines if line.strip()]
        if not lines or cue.verbatim:
            return []
        if cue.dialogue:
            return [_wrapping(line) for line in lines]
        opening, _, _ = _wrapping(lines[0])
        _, _, closing = _wrapping(lines[-1])
        inner = [WRAPPING_TAGS.match(line.strip()).group(2) for line in lines]  # type: ignore[union-attr]
        return [(opening, join_lines(inner), closing)]

    @property
    def texts(self) -> list[str]:
        return [text for cue in self.cues for _, text, _ in self._units(cue)]

    def render(self, translations: Sequence[str], target: str = "", untranslated: Collection[int] = ()) -> bytes:
        it = iter(translations)
        blocks = []
        for cue in self.cues:
            units = self._units(cue)
            if cue.verbatim:
                blocks.append("\n".join(cue.lines))
                continue
            if not units:
                lines = cue.lines
            elif cue.dialogue:
                lines = [f"{opening}{next(it)}{closing}" for opening, _, closing in units]
            else:
                opening, _, closing = units[0]
                wrapped = wrap(next(it), len([line for line in cue.lines if line.strip()]))
                lines = [*wrapped[:-1], wrapped[-1] + closing]
                lines[0] = opening + lines[0]
            blocks.append("\n".join([*([cue.index] if cue.index else []), cue.timing, *lines]))
        return self.lines.write("\n\n".join(blocks) + "\n")


@dataclass
class WebVttDocument(SubtitleDocument):
    """WebVTT (.vtt) cues, translated as SRT's are; the ``WEBVTT`` header, ``NOTE``, ``STYLE`` and ``REGION``
    blocks, cue identifiers and cue settings (``align:start``...) stay as they are."""

    @classmethod
    def read(cls, data: bytes) -> WebVttDocument:
        lines, text = Lines.read(data, ".vtt")
        blocks = re.split(r"\n[ \t]*\n+", text.strip("\n"))
        if not re.match(r"WEBVTT(?:[ \t].*)?$", blocks[0].split("\n")[0]):
            raise DocumentError("not a .vtt file: its first line is not 'WEBVTT'")
        cues = [Cue("", "", blocks[0].split("\n"), verbatim=True)]
        for number, block in enumerate(blocks[1:], 2):
            rows = block.split("\n")
            if re.match(r"(?:NOTE|STYLE|REGION)(?:[ \t]|$)", rows[0]):
                cues.append(Cue("", "", rows, verbatim=True))
                continue
            at = 0 if VTT_TIMING.match(rows[0].strip()) else 1
            if at >= len(rows) or not VTT_TIMING.match(rows[at].strip()) or "-->" in rows[0] and at == 1:
                raise DocumentError(
                    f"not a .vtt file: block {number} has no timing line like '00:01.000 --> 00:04.000'"
                )
            cues.append(Cue(rows[0] if at else "", rows[at], rows[at + 1 :]))
        return cls(cues, lines)


def wrap(text: str, n_lines: int) -> list[str]:
    """``text`` on ``n_lines`` lines of about equal length, cut at spaces (anywhere, in text without spaces)."""
    if n_lines <= 1 or len(text) < 2:
        return [text]
    words = text.split(" ") if " " in text else list(text)
    joiner = " " if " " in text else ""
    target = len(text) / n_lines
    lines: list[str] = []
    current = ""
    for word in words:
        candidate = current + joiner + word if current else word
        overshoot = len(candidate) - target
        if current and overshoot > 0 and overshoot >= target - len(current) and len(lines) < n_lines - 1:
            lines.append(current)  # the line is nearer the target without this word
            current = word
        else:
            current = candidate
    return [*lines, current]
