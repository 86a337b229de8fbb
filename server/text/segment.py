"""A text as the model sees it: rows of at most one sentence, and everything between them kept to put back.

``segment`` splits a text into lines (keeping every line break, blank line, indentation and list marker),
lines into sentences (``sentencex``, chosen by measurement: docs/text.md), and a sentence longer than the
model's window further, at clause punctuation, then between words, then between characters, so that nothing
is ever cut off. Text without letters (numbers, punctuation, symbols) is kept as it is, not translated.
``SegmentedText.assemble`` puts the translated rows back between the kept pieces.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import sentencex

# Languages written without spaces between words or sentences (ISO 639-1/3 codes, and FLORES-200 scripts).
UNSPACED_LANGUAGES = frozenset(
    {"zh", "ja", "th", "lo", "km", "my", "bo", "zho", "jpn", "tha", "lao", "khm", "mya", "bod", "yue"}
)
UNSPACED_SCRIPTS = frozenset({"Hans", "Hant", "Jpan", "Thai", "Laoo", "Khmr", "Mymr", "Tibt"})
LINE_BREAK = re.compile(r"(\r\n|\r|\n|\u2028|\u2029)")
# Indentation (any white space but line breaks) and a list marker: "- ", "* ", "• ", "1. ", "2) ", "a) ", "(b) ",
# "iv. ", "(iv) ". A capital and a full stop ("A. Smith") is read as an initial, not a marker.
LEAD = re.compile(
    r"^[^\S\r\n]*(?:(?:[-*+•‣◦·▪–—]|\(?\d{1,3}[.)]|\(?[a-z]\)|\(?x{0,3}(?:ix|iv|v?i{1,3}|v)[.)])"
    r"[^\S\r\n]+)?"
)
CLAUSE_END = re.compile(r"[,;:、，；：…—–](?=\s*\S)\s*")
# zh / ja: a full stop that sentencex lets run into a following Latin word ("…です。geometry…").
CJK_BREAK = re.compile(r"(?<=[。！？])(?=[^」』”’）)\]\s。！？])")


@dataclass(frozen=True)
class Piece:
    text: str
    translate: bool  # False: kept as it is (white space, list markers, text without letters)


@dataclass(frozen=True)
class SegmentedText:
    pieces: tuple[Piece, ...]
    language: str = ""  # the text's language (whether its script puts spaces between sentences)

    @property
    def rows(self) -> list[str]:
        """The texts to translate, in order."""
        return [p.text for p in self.pieces if p.translate]

    def assemble(self, translations: Sequence[str], target: str) -> str:
        """The text with each row replaced by its translation; everything between rows stays as it was, except
        the spaces between two sentences when the source and the target differ in spacing them (Chinese and
        Japanese use none): then the target's way."""
        if len(translations) != len(self.rows):
            raise ValueError(f"{len(translations)} translations for {len(self.rows)} rows")
        respace = unspaced(target) != unspaced(self.language)
        joiner = "" if unspaced(target) else " "
        out: list[str] = []
        it = iter(translations)
        pieces = self.pieces
        for i, piece in enumerate(pieces):
            if piece.translate:
                if respace and i and pieces[i - 1].translate:  # sentences the source wrote without a space
                    out.append(joiner)
                out.append(next(it).strip())
            elif (
                respace
                and 0 < i < len(pieces) - 1
                and pieces[i - 1].translate
                and pieces[i + 1].translate
                and piece.text.strip() == ""
            ):
                out.append(joiner)
            else:
                out.append(piece.text)
        return "".join(out)


def unspaced(language: str) -> bool:
    base, _, script = language.replace("-", "_").partition("_")
    return base.lower() in UNSPACED_LANGUAGES or script.title() in UNSPACED_SCRIPTS


def has_letters(text: str) -> bool:
    return any(unicodedata.category(c).startswith("L") for c in text)


def sentences(line: str, language: str) -> list[str]:
    """``line`` cut into sentences, each with the white space after it; they join back to ``line``."""
    code = language.replace("-", "_").partition("_")[0].lower() or "en"
    # sentencex sees white space as ASCII spaces (its rules expect them; some others made it panic); each
    # character stays one character, so its pieces' lengths cut the original line.
    plain = "".join(" " if c.isspace() else c for c in line)
    try:
        lengths = [len(s) for s in sentencex.segment(code, plain) if s]
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: BLE001 - sentencex's Rust core can panic (a BaseException): one sentence
        lengths = [len(line)]
    if sum(lengths) != len(line):  # the segmenter must not lose or add a character; else keep the line whole
        lengths = [len(line)]
    found, start = [], 0
    for n in lengths:
        found.append(line[start : start + n])
        start += n
    if unspaced(language):
        found = [part for s in found for part in CJK_BREAK.split(s) if part]
    return found


def _split_keep(text: str, pattern: re.Pattern[str]) -> list[str]:
    """``text`` cut after each match of ``pattern`` (the match stays with the part before it)."""
    parts, start = [], 0
    for m in pattern.finditer(text):
        parts.append(text[start : m.end()])
        start = m.end()
    if start < len(text):
        parts.append(text[start:])
    return parts


def _pack(parts: Sequence[str], fits: Callable[[str], bool]) -> list[str]:
    """Consecutive ``parts`` joined into as few chunks as fit; a part that does not fit alone stays alone."""
    chunks: list[str] = []
    for part in parts:
        if chunks and fits(chunks[-1] + part):
            chunks[-1] += part
        else:
            chunks.append(part)
    return chunks


MAX_ROW_CHARS = 2048  # no row of a model window (at most a few hundred tokens) is longer in characters


def _by_characters(text: str, fits: Callable[[str], bool]) -> list[str]:
    """The longest prefixes that fit, one after another (a word or a CJK run longer than the window)."""
    chunks = []
    while text:
        low, high = 1, min(len(text), MAX_ROW_CHARS)  # the longest prefix that fits; at least one character
        while low < high:
            mid = (low + high + 1) // 2
            if fits(text[:mid]):
                low = mid
            else:
                high = mid - 1
        chunks.append(text[:low])
        text = text[low:]
    return chunks


def split_long(sentence: str, fits: Callable[[str], bool]) -> list[str]:
    """Chunks of ``sentence`` that each fit, cut at clause punctuation, else between words, else anywhere.
    They join back to ``sentence``."""
    if fits(sentence):
        return [sentence]
    out = []
    for clause in _pack(_split_keep(sentence, CLAUSE_END), fits):
        if fits(clause):
            out.append(clause)
            continue
        for words in _pack(_split_keep(clause, re.compile(r"\s+")), fits):
            out.extend([words] if fits(words) else _by_characters(words, fits))
    return out


def _line_pieces(line: str, language: str, fits: Callable[[str], bool]) -> Iterator[Piece]:
    lead = LEAD.match(line)
    start = lead.end() if lead else 0
    core = line[start:].rstrip()
    if start:
        yield Piece(line[:start], False)
    for sentence in sentences(core, language) if core else []:
        body = sentence.rstrip()
        if not has_letters(body):
            yield Piece(sentence, False)
            continue
        for chunk in split_long(body, fits):
            stripped = chunk.rstrip()
            yield Piece(stripped, True) if has_letters(stripped) else Piece(stripped, False)
            if len(chunk) > len(stripped):
                yield Piece(chunk[len(stripped) :], False)
        if len(sentence) > len(body):
            yield Piece(sentence[len(body) :], False)
    if len(line) > start + len(core):
        yield Piece(line[start + len(core) :], False)


def segment(text: str, language: str, fits: Callable[[str], bool]) -> SegmentedText:
    """``text`` in ``language`` as rows that each satisfy ``fits`` (the model's window) and kept pieces."""
    pieces: list[Piece] = []
    for part in LINE_BREAK.split(text):
        if not part:
            continue
        if LINE_BREAK.fullmatch(part):
            pieces.append(Piece(part, False))
        else:
            pieces.extend(_line_pieces(part, language, fits))
    merged: list[Piece] = []
    for piece in pieces:  # adjacent kept pieces as one
        if merged and not piece.translate and not merged[-1].translate:
            merged[-1] = Piece(merged[-1].text + piece.text, False)
        elif piece.text:
            merged.append(piece)
    return SegmentedText(tuple(merged), language)
