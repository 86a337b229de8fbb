"""Word documents (.docx): every paragraph (body, tables, headers, footers) is translated as a whole, and its
runs (the stretches of one formatting) share the translation where the translation of each run's own text is
found in it, else by relative position; so bold stays on the words it was on where the translation allows.

A .docx is a zip archive. Before python-docx reads it, the archive is checked: it must be a zip with the
parts of a Word document, and must not expand to more than ``ooxml.MAX_EXPANDED_BYTES`` or at a ratio beyond
``ooxml.MAX_RATIO`` (a zip bomb would otherwise fill memory).
"""

from __future__ import annotations

import io
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from docx.oxml.ns import qn
from docx.text.hyperlink import Hyperlink
from docx.text.paragraph import Paragraph
from docx.text.run import Run

from server.documents.formats import DocumentError, Measured
from server.documents.ooxml import check_archive as check_archive_of
from server.text.placement import place_spans

MAX_RUNS_ALIGNED = 32


def check_archive(data: bytes) -> None:
    check_archive_of(data, ".docx", "word/document.xml").close()


def _paragraphs(document: Any) -> Iterator[Paragraph]:
    def of(container: Any) -> Iterator[Paragraph]:  # a document, a cell, a header or a footer
        yield from container.paragraphs
        for table in getattr(container, "tables", []):
            for row in table.rows:
                for cell in row.cells:
                    yield from of(cell)

    yield from of(document)
    for section in document.sections:
        for part in (
            section.header,
            section.footer,
            section.first_page_header,
            section.first_page_footer,
            section.even_page_header,
            section.even_page_footer,
        ):
            if not part.is_linked_to_previous:
                yield from of(part)


def _runs(paragraph: Paragraph) -> list[Run]:
    """The paragraph's runs with text, those inside hyperlinks included, in order."""
    runs: list[Run] = []
    for item in paragraph.iter_inner_content():
        runs.extend(item.runs if isinstance(item, Hyperlink) else [item])
    return [r for r in runs if r.text]


def set_run_text(run: Run, text: str) -> None:
    """Replace a run's text but not its other content (breaks, tabs, symbols, drawings): the first text element
    takes the text, the others are emptied."""
    elements = run._r.findall(qn("w:t"))
    if not elements:
        run.text = text
        return
    elements[0].text = text
    if text != text.strip():
        elements[0].set(qn("xml:space"), "preserve")
    for element in elements[1:]:
        element.text = ""


@dataclass
class WordDocument(Measured):
    """Each paragraph (body, tables, all headers and footers) is translated as a whole; its runs (those inside
    hyperlinks too) share the translation. Text in tracked changes, content controls, text boxes and notes
    is not reached."""

    document: object  # docx.Document
    paragraphs: list[Paragraph]  # those with text, in order

    @classmethod
    def read(cls, data: bytes) -> WordDocument:
        import docx

        check_archive(data)
        try:
            document = docx.Document(io.BytesIO(data))
            seen, paragraphs = set(), []
            for p in _paragraphs(document):
                if id(p._p) not in seen and p.text.strip():  # a merged table cell repeats its paragraphs
                    seen.add(id(p._p))
                    paragraphs.append(p)
        except DocumentError:
            raise
        except Exception as err:  # noqa: BLE001 - python-docx raises many kinds on a damaged file
            raise DocumentError(f"not a readable .docx file ({type(err).__name__})") from None
        return cls(document, paragraphs)

    @property
    def texts(self) -> list[str]:
        """Per paragraph: its text, then (with several runs) each run's text, to place the runs."""
        out = []
        for p in self.paragraphs:
            runs = _runs(p)
            out.append("".join(r.text for r in runs).strip())
            if 1 < len(runs) <= MAX_RUNS_ALIGNED:
                out.extend(r.text.strip() for r in runs)
        return out

    @property
    def characters(self) -> int:
        return sum(len("".join(r.text for r in _runs(p))) for p in self.paragraphs)

    @property
    def sample(self) -> str:
        return " ".join(p.text for p in self.paragraphs)[:2000]

    def render(self, translations: Sequence[str], target: str = "", untranslated: Collection[int] = ()) -> bytes:
        it = iter(translations)
        for p in self.paragraphs:
            runs = _runs(p)
            translation = next(it)
            aligned = [next(it) for _ in runs] if 1 < len(runs) <= MAX_RUNS_ALIGNED else []
            texts = [r.text for r in runs]
            for run, text in zip(runs, split_over_runs("".join(texts), texts, translation, aligned)):
                set_run_text(run, text)
        buffer = io.BytesIO()
        self.document.save(buffer)  # type: ignore[attr-defined]
        return buffer.getvalue()


def split_over_runs(source: str, runs: Sequence[str], translation: str, run_translations: Sequence[str]) -> list[str]:
    """The translation cut into one piece per run, in order, every character in exactly one piece."""
    if len(runs) == 1:
        return [translation]
    lead = len(source) - len(source.lstrip())
    spans, start = [], -lead
    for text in runs:
        spans.append((max(start, 0), max(start + len(text), 0)))
        start += len(text)
    placed = place_spans(source.strip(), spans, translation, run_translations)
    cuts = [0]
    for (a, _), text in zip(placed[1:], runs[1:]):
        cut = min(max(a, cuts[-1]), len(translation))
        while text[:1].isspace() and cut > cuts[-1] and translation[cut - 1].isspace():
            cut -= 1  # the run began with a space in the source: it takes the space before its words again
        cuts.append(cut)
    cuts.append(len(translation))
    pieces = [translation[cuts[i] : cuts[i + 1]] for i in range(len(runs))]
    return pieces
