"""HTML in, HTML out: the text is translated, everything else comes back as it was, byte for byte.

The document is read by the standard library's HTML parser, which reports where in the source every tag,
text run and entity stands; anything not translated (tags with their attributes, comments, doctype,
``<script>``, ``<style>``, ``<code>``, ``<pre>``, ``<textarea>``, ``<svg>``, elements marked ``translate="no"``
or ``class="notranslate"``) is copied from those positions, so quoting, entity spelling and white space
survive. A tree-building parser (lxml, selectolax, BeautifulSoup) would re-serialise them instead.

Text is translated by *units*: the text of one block (a paragraph, a list item, a cell) with its inline
elements (``<b>``, ``<a>``, ``<span>``...) inside, so ``Change <b>password</b>`` is one sentence to the
model, not two fragments. The inline tags are put back around the translation of their own text where it can
be found in the unit's translation, else at the same relative position.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser

INLINE = frozenset({"a", "abbr", "b", "bdi", "bdo", "big", "cite", "data", "del", "dfn", "em", "font", "i", "ins",
                    "label", "mark", "nobr", "q", "s", "small", "span", "strike", "strong", "sub", "sup", "time",
                    "tt", "u"})
OPAQUE = frozenset({"script", "style", "code", "pre", "textarea", "svg", "math", "template", "kbd", "samp", "var"})
VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
                  "track", "wbr"})
MAX_ALIGNED_SPANS = 32  # inline elements per unit placed by their own translation; beyond, by position
WHITESPACE = re.compile(r"\s+")


@dataclass
class Span:
    """An inline element inside a unit: its tags (as in the source) around unit text ``[start, end)``."""

    start: int
    end: int
    open_tag: str
    close_tag: str = ""  # empty while (or if never) closed


@dataclass
class Unit:
    text: str = ""  # the unit's text, entities decoded, white space as in the source
    spans: list[Span] = field(default_factory=list)
    raw: str = ""  # the unit's source, tags and entities included

    def model_text(self) -> str:
        return WHITESPACE.sub(" ", self.text).strip()

    def span_texts(self) -> list[str]:
        """Texts whose own translations place the spans (none beyond ``MAX_ALIGNED_SPANS``)."""
        if len(self.spans) > MAX_ALIGNED_SPANS:
            return []
        return [WHITESPACE.sub(" ", self.text[s.start : s.end]).strip() for s in self.spans]


@dataclass(frozen=True)
class HtmlLayout:
    parts: tuple[str | Unit, ...]  # source text kept as it is, and units to translate

    @property
    def units(self) -> list[Unit]:
        return [p for p in self.parts if isinstance(p, Unit)]

    def assemble(self, translations: Sequence[str], span_translations: Sequence[Sequence[str]]) -> str:
        """The document with unit ``i`` translated as ``translations[i]`` (plain text; escaped here) and its
        inline elements placed with the help of ``span_translations[i]``."""
        out, units = [], iter(zip(translations, span_translations))
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                text, spans = next(units)
                out.append(render_unit(part, text, spans))
        return "".join(out)


def _word_boundary(text: str, position: int) -> int:
    """``position`` moved to the nearest space or end of ``text`` (scripts without spaces: unchanged)."""
    if " " not in text or position <= 0 or position >= len(text):
        return max(0, min(position, len(text)))
    left, right = text.rfind(" ", 0, position), text.find(" ", position)
    left, right = (left + 1 if left >= 0 else 0), (right if right >= 0 else len(text))
    return left if position - left <= right - position else right


def place_spans(source: str, spans: Sequence[tuple[int, int]], translation: str,
                span_translations: Sequence[str]) -> list[tuple[int, int]]:
    """Where spans ``[start, end)`` of ``source`` fall in ``translation``: where the translation of a span's own
    text is found (searching on from the previous span), else at the same relative position."""
    placed: list[tuple[int, int]] = []
    cursor, lowered = 0, translation.lower()
    scale = len(translation) / max(len(source), 1)
    for i, (start, end) in enumerate(spans):
        wanted = span_translations[i].strip().lower() if i < len(span_translations) else ""
        found = lowered.find(wanted, cursor) if wanted else -1
        if wanted and found < 0:
            found = lowered.find(wanted)
        if found >= 0:
            placed.append((found, found + len(wanted)))
            cursor = found + len(wanted)
        else:
            a = _word_boundary(translation, round(start * scale))
            b = max(a, _word_boundary(translation, round(end * scale)))
            while a < b and translation[a].isspace():
                a += 1
            while b > a and translation[b - 1].isspace():
                b -= 1
            placed.append((a, b))
    return placed


def render_unit(unit: Unit, translation: str, span_translations: Sequence[str]) -> str:
    """The unit's HTML: its leading and trailing white space, the escaped translation, and its inline tags."""
    lead = unit.text[: len(unit.text) - len(unit.text.lstrip())]
    trail = unit.text[len(unit.text.rstrip()):]
    offset = len(lead)
    spans = [(s.start - offset, s.end - offset) for s in unit.spans]
    # At one position: closes of spans that began earlier (innermost first), then opens in source order, each
    # empty span closing right after it opens.
    inserts: list[tuple[tuple[int, ...], str]] = []
    for i, (span, (a, b)) in enumerate(zip(unit.spans, place_spans(unit.text.strip(), spans, translation,
                                                                    span_translations))):
        inserts.append(((a, 1, i, 0), span.open_tag))
        if span.close_tag:
            inserts.append(((b, 0, -i, 0) if b > a else (a, 1, i, 1), span.close_tag))
    pieces, last = [], 0
    for key, tag in sorted(inserts, key=lambda x: x[0]):
        position = key[0]
        pieces.append(html.escape(translation[last:position], quote=False))
        pieces.append(tag)
        last = position
    pieces.append(html.escape(translation[last:], quote=False))
    return lead + "".join(pieces) + trail


def _skips(tag: str, attrs: list[tuple[str, str | None]]) -> bool:
    values = {k.lower(): (v or "") for k, v in attrs}
    return (tag in OPAQUE or values.get("translate", "").lower() == "no"
            or "notranslate" in values.get("class", "").split())


class _Reader:
    """Turns the parser's events, with their source text, into kept source and units."""

    def __init__(self) -> None:
        self.parts: list[str | Unit] = []
        self.unit: Unit | None = None
        self.open_spans: list[tuple[str, Span]] = []
        self.skip: list[str] = []  # elements open inside an untranslated one (its own tag first)

    def keep(self, raw: str) -> None:
        self.flush()
        self.parts.append(raw)

    def flush(self) -> None:
        if self.unit is not None:
            for _, span in self.open_spans:  # never closed in this unit
                span.end = len(self.unit.text)
            self.parts.append(self.unit if self.unit.model_text() else self.unit.raw)
            self.unit, self.open_spans = None, []

    def add_text(self, raw: str, text: str) -> None:
        self.unit = self.unit or Unit()
        self.unit.text += text
        self.unit.raw += raw

    def add_tag(self, tag: str, raw: str, opening: bool) -> None:
        self.unit = self.unit or Unit()
        self.unit.raw += raw
        here = len(self.unit.text)
        if opening:
            span = Span(here, here, raw)
            self.unit.spans.append(span)
            self.open_spans.append((tag, span))
            return
        for i in range(len(self.open_spans) - 1, -1, -1):
            if self.open_spans[i][0] == tag:
                span = self.open_spans.pop(i)[1]
                span.end, span.close_tag = here, raw
                return
        self.unit.spans.append(Span(0, here, "", raw))  # closes an element opened before this unit


def _events(source: str) -> list[tuple[int, str, str, list[tuple[str, str | None]]]]:
    """(start offset, kind, tag, attributes) of every parser event, in order."""
    events: list[tuple[int, str, str, list[tuple[str, str | None]]]] = []

    class Recorder(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=False)
            self.line_starts = [0] + [m.end() for m in re.finditer(r"\n", source)]

        def at(self) -> int:
            line, column = self.getpos()
            return self.line_starts[line - 1] + column

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

        def handle_charref(self, name: str) -> None:
            events.append((self.at(), "ref", "", []))

        def handle_comment(self, data: str) -> None:
            events.append((self.at(), "other", "", []))

        def handle_decl(self, decl: str) -> None:
            events.append((self.at(), "other", "", []))

        def handle_pi(self, data: str) -> None:
            events.append((self.at(), "other", "", []))

        def unknown_decl(self, data: str) -> None:
            events.append((self.at(), "other", "", []))

    recorder = Recorder()
    recorder.feed(source)
    recorder.close()
    return events


def parse(source: str) -> HtmlLayout:
    """The document as kept source and translatable units (malformed HTML is read as browsers would).
    Joining the kept parts and the units' ``raw`` gives ``source`` back exactly."""
    events = _events(source)
    reader = _Reader()
    position = 0
    for i, (start, kind, tag, attrs) in enumerate(events):
        end = events[i + 1][0] if i + 1 < len(events) else len(source)
        if start > position:  # source the parser reported no event for
            reader.keep(source[position:start])
        if end <= start:
            continue
        _dispatch(reader, kind, tag, attrs, source[start:end])
        position = end
    if position < len(source):
        reader.keep(source[position:])
    reader.flush()
    return HtmlLayout(tuple(_merge_strings(reader.parts)))


def _dispatch(reader: _Reader, kind: str, tag: str, attrs: list[tuple[str, str | None]], raw: str) -> None:
    if reader.skip:  # inside an untranslated element: track nesting until it closes
        if kind == "start" and tag not in VOID:
            reader.skip.append(tag)
        elif kind == "end" and tag in reader.skip:
            while reader.skip and reader.skip.pop() != tag:
                pass
        reader.parts.append(raw)
        return
    if kind == "data":
        reader.add_text(raw, raw)
    elif kind == "ref":
        reader.add_text(raw, html.unescape(raw))
    elif kind in ("start", "startend") and tag in INLINE and not _skips(tag, attrs):
        if kind == "start":
            reader.add_tag(tag, raw, opening=True)
        else:
            reader.keep(raw)
    elif kind == "end" and tag in INLINE:
        reader.add_tag(tag, raw, opening=False)
    else:  # blocks, void elements, comments, declarations, and untranslated elements: a unit ends here
        reader.keep(raw)
        if kind == "start" and tag not in VOID and _skips(tag, attrs):
            reader.skip.append(tag)


def _merge_strings(parts: list[str | Unit]) -> list[str | Unit]:
    merged: list[str | Unit] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        elif part != "":
            merged.append(part)
    return merged
