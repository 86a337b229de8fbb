"""HTML in, HTML out: the text is translated, everything else comes back as it was, byte for byte.

The document is read by the standard library's HTML parser, which reports where in the source every tag,
text run and entity stands; whatever is not translated (tags with their attributes, comments, the doctype,
untranslated elements) is copied from those positions, so quoting, entity spelling and white space survive.
A tree-building parser (lxml, selectolax, BeautifulSoup) would re-serialise them instead.

Text is translated by *units*: the text of one block (a paragraph, a heading, a list item, a cell) with its
inline elements inside, so ``Change <b>password</b>`` is one sentence to the model, not two fragments. Inside
a unit:

- inline elements (``<b>``, ``<a>``, ``<span>``...) become spans, put back around the translation of their own
  text (``server/text/placement.py``);
- inline elements kept as they are (``<code>``, ``<kbd>``, ``<samp>``, ``<var>``, ``translate="no"``,
  ``class="notranslate"``) give the model their text, so the sentence stays whole, and come back as they were
  in place of that text; images and other empty inline elements come back at their relative place.

Blocks kept as they are (``<script>``, ``<style>``, ``<pre>``, ``<textarea>``, ``<svg>``, ``<math>``,
``<template>``, and blocks marked ``translate="no"``) end a unit and are copied whole. An element left open is
closed where a browser would close it: at the end of its block.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser

from server.text.placement import place_spans
from server.text.segment import has_letters

INLINE = frozenset(
    "a abbr b bdi bdo big cite data del dfn em font i ins label mark nobr q s small span strike strong sub sup time"
    " tt u code kbd samp var img wbr".split()
)
KEPT_INLINE = frozenset({"code", "kbd", "samp", "var"})
KEPT_BLOCK = frozenset({"script", "style", "pre", "textarea", "svg", "math", "template"})
VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
)
MAX_ALIGNED_SPANS = 32  # inline elements per unit placed by their own translation; beyond, by position
WHITESPACE = re.compile(r"[ \t\n\r\f]+")  # HTML's white space (a no-break space is text)


@dataclass
class Span:
    """An inline element inside a unit, over unit text ``[start, end)``. ``kept``: the element is copied as it is
    (``open_tag`` holds all of it) in place of its text; else its tags go around the translation of its text."""

    start: int
    end: int
    open_tag: str
    close_tag: str = ""
    parent: int = -1  # the innermost span open when this one opened
    kept: bool = False


@dataclass
class Unit:
    parts: list[str] = field(default_factory=list)  # the unit's text, entities decoded (joined on demand)
    raws: list[str] = field(default_factory=list)  # the unit's source
    spans: list[Span] = field(default_factory=list)
    length: int = 0

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def raw(self) -> str:
        return "".join(self.raws)

    def model_text(self) -> str:
        return WHITESPACE.sub(" ", self.text).strip(" ")

    def free_text(self) -> str:
        """The text outside kept elements (what is translated)."""
        text, kept = self.text, sorted((s.start, s.end) for s in self.spans if s.kept)
        pieces, last = [], 0
        for start, end in kept:
            pieces.append(text[last:start])
            last = max(last, end)
        return "".join(pieces) + text[last:]

    def span_texts(self) -> list[str]:
        """What places each span in the translation: the translation of its text, asked for as a row of its own
        (none beyond ``MAX_ALIGNED_SPANS`` spans, and none for kept ones: their text is not translated)."""
        if len(self.spans) > MAX_ALIGNED_SPANS:
            return []
        text = self.text
        return [WHITESPACE.sub(" ", text[s.start : s.end]).strip(" ") for s in self.spans if not s.kept]


@dataclass(frozen=True)
class SegmentedHtml:
    parts: tuple[str | Unit, ...]  # source kept as it is, and units to translate

    @property
    def units(self) -> list[Unit]:
        return [p for p in self.parts if isinstance(p, Unit)]

    def assemble(self, translations: Sequence[str], span_translations: Sequence[Sequence[str]]) -> str:
        """The document with unit ``i`` translated as ``translations[i]`` (plain text, escaped here) and its spans
        placed with ``span_translations[i]`` (the translations of ``Unit.span_texts()``)."""
        out, units = [], iter(zip(translations, span_translations))
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                text, spans = next(units)
                out.append(render_unit(part, text, spans))
        return "".join(out)


def render_unit(unit: Unit, translation: str, span_translations: Sequence[str]) -> str:
    """The unit's HTML: its leading and trailing white space, the escaped translation, and its inline elements."""
    text = unit.text
    lead = text[: len(text) - len(text.lstrip(" \t\n\r\f"))]
    trail = text[len(text.rstrip(" \t\n\r\f")) :]
    model, where = _collapsed(text)
    spans = [(where[s.start], where[s.end]) for s in unit.spans]
    aligned = iter(span_translations)
    wanted = [text[s.start : s.end].strip() if s.kept else next(aligned, "") for s in unit.spans]
    places = place_spans(
        model, spans, translation, wanted, [s.kept for s in unit.spans], [s.parent for s in unit.spans]
    )
    # At one position: closes of spans that began earlier (innermost first), then opens in source order, each
    # empty span closing right after it opens. A kept span found in the translation replaces that text.
    inserts: list[tuple[tuple[int, ...], str, int]] = []  # (sort key, tag, where the translation resumes)
    for i, (span, (a, b)) in enumerate(zip(unit.spans, places)):
        if span.kept:
            replaces = bool(wanted[i]) and translation[a:b] == wanted[i]
            inserts.append(((a, 1, i, 0), span.open_tag, b if replaces else a))
            continue
        inserts.append(((a, 1, i, 0), span.open_tag, a))
        if span.close_tag:
            inserts.append(((b, 0, -i, 0) if b > a else (a, 1, i, 1), span.close_tag, max(a, b)))
    pieces, last = [], 0
    for key, tag, resume in sorted(inserts, key=lambda x: x[0]):
        position = max(key[0], last)
        pieces.append(html.escape(translation[last:position], quote=False))
        pieces.append(tag)
        last = max(position, resume)
    pieces.append(html.escape(translation[last:], quote=False))
    return lead + "".join(pieces) + trail


def _collapsed(text: str) -> tuple[str, list[int]]:
    """``text`` as the model reads it (``Unit.model_text``), and for each offset of ``text`` (and its end) the
    offset it becomes there."""
    out: list[str] = []
    where: list[int] = []
    space = True  # at the start, white space is dropped
    for c in text:
        where.append(len(out))
        if c in " \t\n\r\f":
            if not space:
                out.append(" ")
            space = True
        else:
            out.append(c)
            space = False
    where.append(len(out))
    model = "".join(out)
    stripped = model.rstrip(" ")
    return stripped, [min(w, len(stripped)) for w in where]


def _attributes(attrs: list[tuple[str, str | None]]) -> dict[str, str]:
    return {k.lower(): (v or "") for k, v in attrs}


def _marked_no(attrs: list[tuple[str, str | None]]) -> bool:
    values = _attributes(attrs)
    return values.get("translate", "").lower() == "no" or "notranslate" in values.get("class", "").split()


class _Reader:
    """Turns the parser's events, with their source text, into kept source and units."""

    def __init__(self) -> None:
        self.parts: list[str | Unit] = []
        self.unit: Unit | None = None
        self.open_spans: list[tuple[str, int]] = []  # (tag, index in unit.spans)
        self.skip: list[str] = []  # a kept block and the elements open inside it
        self.atom: list[str] = []  # a kept inline element and the elements open inside it
        self.atom_raw: list[str] = []
        self.atom_text: list[str] = []

    def keep(self, raw: str) -> None:
        self.flush()
        self.parts.append(raw)

    def flush(self) -> None:
        if self.atom:
            self.end_atom()
        if self.unit is not None:
            for _, index in self.open_spans:  # never closed in this unit
                self.unit.spans[index].end = self.unit.length
            # Nothing to translate without letters ("&nbsp;", "&copy; 2024"): the source stays as it was.
            self.parts.append(self.unit if has_letters(self.unit.free_text()) else self.unit.raw)
            self.unit, self.open_spans = None, []

    def _unit(self) -> Unit:
        if self.unit is None:
            self.unit = Unit()
        return self.unit

    def add_text(self, raw: str, text: str) -> None:
        if self.atom:
            self.atom_raw.append(raw)
            self.atom_text.append(text)
            return
        unit = self._unit()
        unit.parts.append(text)
        unit.raws.append(raw)
        unit.length += len(text)

    def open_span(self, tag: str, raw: str, void: bool) -> None:
        unit = self._unit()
        unit.raws.append(raw)
        parent = self.open_spans[-1][1] if self.open_spans else -1
        unit.spans.append(Span(unit.length, unit.length, raw, parent=parent, kept=void))
        if not void:
            self.open_spans.append((tag, len(unit.spans) - 1))

    def close_span(self, tag: str, raw: str) -> None:
        unit = self._unit()
        unit.raws.append(raw)
        for i in range(len(self.open_spans) - 1, -1, -1):
            if self.open_spans[i][0] == tag:
                index = self.open_spans.pop(i)[1]
                unit.spans[index].end, unit.spans[index].close_tag = unit.length, raw
                del self.open_spans[i:]  # elements opened inside it and left open close with it
                return
        unit.spans.append(Span(0, unit.length, "", raw, -1))  # closes an element opened before this unit

    def start_atom(self, tag: str, raw: str) -> None:
        self.atom, self.atom_raw, self.atom_text = [tag], [raw], []

    def end_atom(self) -> None:
        unit = self._unit()
        raw, text = "".join(self.atom_raw), "".join(self.atom_text)
        unit.raws.append(raw)
        parent = self.open_spans[-1][1] if self.open_spans else -1
        unit.spans.append(Span(unit.length, unit.length + len(text), raw, parent=parent, kept=True))
        unit.parts.append(text)
        unit.length += len(text)
        self.atom, self.atom_raw, self.atom_text = [], [], []


def _events(source: str) -> tuple[list[tuple[int, str, str, list[tuple[str, str | None]]]], bool]:
    """(start offset, kind, tag, attributes) of every parser event, in order, and whether the parser read the
    whole document (it gives up on some broken markup, such as ``<![x``)."""
    events: list[tuple[int, str, str, list[tuple[str, str | None]]]] = []
    line_starts = [0] + [m.end() for m in re.finditer(r"\n", source)]

    class Recorder(HTMLParser):
        def at(self) -> int:
            line, column = self.getpos()
            return line_starts[line - 1] + column

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            events.append((self.at(), "start", tag, attrs))

        def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            events.append((self.at(), "startend", tag, attrs))

        def handle_endtag(self, tag: str) -> None:
            events.append((self.at(), "end", tag, []))

        def handle_data(self, data: str) -> None:
            events.append((self.at(), "data", "", []))

        def handle_entityref(self, name: str) -> None:
            events.append((self.at(), "ref", "", []))

        handle_charref = handle_entityref

        def handle_comment(self, data: str) -> None:
            events.append((self.at(), "other", "", []))

        def handle_decl(self, decl: str) -> None:
            events.append((self.at(), "other", "", []))

        def handle_pi(self, data: str) -> None:
            events.append((self.at(), "other", "", []))

        def unknown_decl(self, data: str) -> None:
            events.append((self.at(), "other", "", []))

    recorder = Recorder(convert_charrefs=False)
    try:
        recorder.feed(source)
        recorder.close()
    except AssertionError:
        return events, False
    return events, True


def parse(source: str) -> SegmentedHtml:
    """The document as kept source and translatable units. Joining the kept parts and the units' ``raw`` gives
    ``source`` back exactly."""
    events, complete = _events(source)
    if not complete and events:
        events = events[:-1]  # where the last event read ends is not known: from there on the source is kept
    reader = _Reader()
    position = 0
    for i, (start, kind, tag, attrs) in enumerate(events):
        end = events[i + 1][0] if i + 1 < len(events) else (len(source) if complete else start)
        if start > position:  # source the parser reported no event for
            reader.keep(source[position:start])
        if end <= start:
            continue
        _dispatch(reader, kind, tag, attrs, source[start:end])
        position = end
    if position < len(source):
        reader.keep(source[position:])
    reader.flush()
    return SegmentedHtml(tuple(_merge_strings(reader.parts)))


def _dispatch(reader: _Reader, kind: str, tag: str, attrs: list[tuple[str, str | None]], raw: str) -> None:
    """One parser event into the reader: inside a kept block, inside a kept inline element, or in the text."""
    if reader.skip:
        _in_kept_block(reader, kind, tag, attrs, raw)
    elif reader.atom:
        _in_kept_inline(reader, kind, tag, attrs, raw)
    elif kind in ("data", "ref"):
        reader.add_text(raw, html.unescape(raw) if kind == "ref" else raw)
    elif kind in ("start", "startend") and tag in INLINE:
        if kind == "start" and tag not in VOID and (tag in KEPT_INLINE or _marked_no(attrs)):
            reader.start_atom(tag, raw)
        else:
            reader.open_span(tag, raw, void=kind == "startend" or tag in VOID)
    elif kind == "end" and tag in INLINE:
        reader.close_span(tag, raw)
    else:  # blocks, line breaks, comments, declarations and kept blocks: a unit ends here
        reader.keep(raw)
        if kind == "start" and tag not in VOID and (tag in KEPT_BLOCK or _marked_no(attrs)):
            reader.skip.append(tag)


def _in_kept_block(reader: _Reader, kind: str, tag: str, attrs: list[tuple[str, str | None]], raw: str) -> None:
    """Follow the kept block's nesting until it closes (or its parent does)."""
    if kind == "start" and tag not in VOID:
        reader.skip.append(tag)
    elif kind == "end" and tag in reader.skip:
        while reader.skip and reader.skip.pop() != tag:
            pass
    elif kind == "end" and reader.skip[0] not in ("script", "style", "textarea"):
        reader.skip.clear()  # the end of an enclosing element closes the kept one, as in a browser
        _dispatch(reader, kind, tag, attrs, raw)
        return
    reader.parts.append(raw)


def _in_kept_inline(reader: _Reader, kind: str, tag: str, attrs: list[tuple[str, str | None]], raw: str) -> None:
    """Inside a kept inline element: its text is the model's, its markup comes back as it was."""
    if kind == "start" and tag not in VOID:
        reader.atom.append(tag)
    elif kind == "end" and tag in reader.atom:
        while reader.atom and reader.atom.pop() != tag:
            pass
        reader.atom_raw.append(raw)
        if not reader.atom:
            reader.end_atom()
        return
    elif kind in ("start", "end", "startend") and tag not in INLINE:
        reader.end_atom()  # a block starts or ends: the kept element ends with the unit
        _dispatch(reader, kind, tag, attrs, raw)
        return
    if kind in ("data", "ref"):
        reader.add_text(raw, html.unescape(raw) if kind == "ref" else raw)
    else:
        reader.atom_raw.append(raw)


def _merge_strings(parts: list[str | Unit]) -> list[str | Unit]:
    merged: list[str | Unit] = []
    buffer: list[str] = []
    for part in parts:
        if isinstance(part, str):
            buffer.append(part)
            continue
        if buffer:
            merged.append("".join(buffer))
            buffer = []
        merged.append(part)
    if buffer and "".join(buffer):
        merged.append("".join(buffer))
    return [p for p in merged if p != ""]
