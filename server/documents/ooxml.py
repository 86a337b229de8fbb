"""Excel workbooks (.xlsx) and PowerPoint presentations (.pptx), translated inside their archives: only the
parts that hold text are rewritten, every other part (charts, images, styles, formulas, macros' absence) is
copied byte for byte, so nothing a library does not model is lost.

- ``.xlsx``: the shared strings (``xl/sharedStrings.xml``, the text of every text cell) and inline strings in
  the sheets. Numbers, formulas, sheet names and comments stay.
- ``.pptx``: every paragraph of the slides and their notes (``ppt/slides/``, ``ppt/notesSlides/``): text boxes,
  tables, grouped shapes. Layouts and masters (their "Click to add title" prompts) stay.

A text made of several runs (stretches of one formatting) reaches the model with each run as a numbered tag
around its words (``<g1>bold</g1> and plain``), which the placeholder rules protect; the translation is
written back into copies of the source's runs, so bold stays on the words it was on. Line breaks and fields
(slide numbers) are empty tags (``<x2/>``) kept whole. Before anything is parsed, the archive is checked as a
``.docx`` is: the parts of its format present, no more than ``MAX_EXPANDED_BYTES`` expanded, no member
expanding beyond ``MAX_RATIO`` (a zip bomb).
"""

from __future__ import annotations

import copy
import io
import re
import zipfile
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from lxml import etree

from server.documents.formats import DocumentError, Measured
from server.documents.inline_codes import CODE

MAX_EXPANDED_BYTES = 50 * 2**20
MAX_RATIO = 200  # expanded / compressed size of any member (ordinary Office XML compresses about 5-20 times)
SHEET = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
DRAWING = "http://schemas.openxmlformats.org/drawingml/2006/main"
LETTER = re.compile(r"[^\W\d_]")
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


def check_archive(data: bytes, what: str, required: str) -> zipfile.ZipFile:
    """The archive, once it is a zip with ``required`` in it and no bomb."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise DocumentError(f"not a {what} file: it is not a zip archive (a renamed file of another kind?)") from None
    names = set(archive.namelist())
    if "[Content_Types].xml" not in names or not any(n.startswith(required) for n in names):
        raise DocumentError(f"not a {what} file: the archive has no {required}")
    total = 0
    for info in archive.infolist():
        total += info.file_size
        if total > MAX_EXPANDED_BYTES:
            raise DocumentError(f"the {what} expands to more than {MAX_EXPANDED_BYTES // 2**20} MiB")
        if info.compress_size and info.file_size / info.compress_size > MAX_RATIO:
            raise DocumentError(
                f"the {what} member {info.filename} expands {info.file_size // info.compress_size}"
                f" times; more than {MAX_RATIO} looks like a zip bomb"
            )
    return archive


@dataclass
class Runs:
    """One text of runs: each run's element and text element, and the tagged text the model reads."""

    container: etree._Element  # <si>, <is> or <a:p>
    pieces: list[tuple[str, etree._Element | None, etree._Element | None]]  # (kind, run, text element)
    text: str = ""

    def tagged(self) -> str:
        texts = [p for p in self.pieces if p[0] == "run"]
        if len(texts) <= 1 and all(kind == "run" for kind, _, _ in self.pieces):
            return "".join((t.text or "") for _, _, t in self.pieces if t is not None)
        out = []
        for number, (kind, _, element) in enumerate(self.pieces, 1):
            text = (element.text or "") if element is not None else ""
            out.append(f"<g{number}>{text}</g{number}>" if kind == "run" else f"<x{number}/>")
        return "".join(out)

    def write(self, translation: str) -> bool:
        """The translation into the runs; False (nothing changed) when its tags are not the source's."""
        if not CODE.search(translation):
            runs = [p for p in self.pieces if p[0] == "run"]
            if len(runs) != 1 or len(self.pieces) != 1:
                return False
            element = runs[0][2]
            assert element is not None  # a run has its text element
            element.text = translation
            _preserve(element, translation)
            return True
        order = self._order(translation)
        if order is None:
            return False
        first = self.pieces[0][1]
        assert first is not None  # every piece has its run or atom element
        parent = first.getparent()
        at = parent.index(first)
        for _, element, _ in self.pieces:
            parent.remove(element)
        for offset, (number, text) in enumerate(order):
            kind, element, text_element = self.pieces[number - 1]
            clone = copy.deepcopy(element)
            assert clone is not None
            if kind == "run":
                assert text_element is not None and text is not None  # a run has its text element and text
                clone_text = clone.find(text_element.tag)
                clone_text.text = text
                _preserve(clone_text, text)
            parent.insert(at + offset, clone)
        return True

    def _order(self, translation: str) -> list[tuple[int, str | None]] | None:
        """(piece number, its text; None for an atom) in the translation's order; None when the translation's
        tags are not the source's (each piece exactly once, runs opened and closed, no text outside them)."""
        order: list[tuple[int, str | None]] = []
        used: set[int] = set()
        position, open_ = 0, None
        for m in CODE.finditer(translation):
            gap, position = translation[position : m.start()], m.end()
            closing, kind, number = m.group(1), m.group(2), int(m.group(3))
            if not 1 <= number <= len(self.pieces) or (self.pieces[number - 1][0] == "run") != (kind == "g"):
                return None
            if open_ is not None:  # inside a run only its closing tag may come
                if not closing or number != open_:
                    return None
                order.append((number, gap))
                open_ = None
                continue
            if closing or number in used or gap.strip():  # text outside every run has no formatting to take
                return None
            if gap:
                _extend_last(order, gap)  # a space between two runs goes to the first
            used.add(number)
            if kind == "g":
                open_ = number
            else:
                order.append((number, None))
        tail = translation[position:]
        if open_ is not None or used != set(range(1, len(self.pieces) + 1)) or tail.strip():
            return None
        if tail:
            _extend_last(order, tail)
        return order


def _extend_last(order: list[tuple[int, str | None]], text: str) -> None:
    """Append ``text`` to the last piece's text, if the last piece is a run."""
    if order and (last := order[-1])[1] is not None:
        order[-1] = (last[0], f"{last[1]}{text}")


def _preserve(element: etree._Element, text: str) -> None:
    if text != text.strip():
        element.set("{http://www.w3.org/XML/1998/namespace}space", "preserve")


def _sheet_runs(container: etree._Element) -> Runs | None:
    """<si> or <is>: a plain <t>, or <r> runs (phonetic <rPh> and <phoneticPr> stay)."""
    plain = container.find(f"{{{SHEET}}}t")
    if plain is not None:
        return Runs(container, [("run", plain, plain)])
    pieces = [("run", r, r.find(f"{{{SHEET}}}t")) for r in container.findall(f"{{{SHEET}}}r")]
    if not pieces or any(t is None for _, _, t in pieces):
        return None
    return Runs(container, pieces)


def _slide_order(part: str) -> tuple[bool, int]:
    """Slides before notes, each by its number (``ppt/slides/slide12.xml`` -> (False, 12))."""
    number = re.search(r"(\d+)\.xml$", part)
    return part.startswith("ppt/notes"), int(number.group(1)) if number else 0


def _slide_runs(paragraph: etree._Element) -> Runs | None:
    pieces = []
    for child in paragraph:
        name = etree.QName(child).localname
        if name == "r":
            text = child.find(f"{{{DRAWING}}}t")
            if text is None:
                return None
            pieces.append(("run", child, text))
        elif name in ("br", "fld"):
            pieces.append(("atom", child, None))
    return Runs(paragraph, pieces) if any(kind == "run" for kind, _, _ in pieces) else None


@dataclass
class PackageDocument(Measured):
    """An .xlsx or .pptx: its members, the parsed parts that hold text, and their texts."""

    archive_members: list[tuple[zipfile.ZipInfo, bytes]]
    parts: dict[str, etree._Element]
    units: list[Runs] = field(default_factory=list)

    @property
    def texts(self) -> list[str]:
        return [u.text for u in self.units]

    @classmethod
    def _open(cls, data: bytes, what: str, required: str, wanted: re.Pattern[str]) -> PackageDocument:
        archive = check_archive(data, what, required)
        members, parts = [], {}
        with archive:
            for info in archive.infolist():
                content = archive.read(info)
                members.append((info, content))
                if wanted.fullmatch(info.filename):
                    try:
                        parts[info.filename] = etree.fromstring(content, PARSER)
                    except etree.XMLSyntaxError as err:
                        raise DocumentError(f"not a valid {what} file: {info.filename}: {err}") from None
        return cls(members, parts)

    def _collect(self, found: list[Runs | None]) -> None:
        for runs in found:
            if runs is not None:
                runs.text = runs.tagged()
                if LETTER.search(CODE.sub("", runs.text)):
                    self.units.append(runs)

    def render(self, translations: Sequence[str], target: str = "", untranslated: Collection[int] = ()) -> bytes:
        for runs, translation in zip(self.units, translations, strict=True):
            runs.write(translation)  # a translation that does not fit its runs leaves the source text
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            for info, content in self.archive_members:
                if info.filename in self.parts:
                    content = etree.tostring(
                        self.parts[info.filename], xml_declaration=True, encoding="UTF-8", standalone=True
                    )
                archive.writestr(info, content)
        return out.getvalue()


class WorkbookDocument(PackageDocument):
    @classmethod
    def read(cls, data: bytes) -> WorkbookDocument:
        document = cls._open(
            data,
            ".xlsx",
            "xl/workbook.xml",
            re.compile(
                r"xl/sharedStrings\.xml|xl/worksheets/"
                r"sheet\d+\.xml"
            ),
        )
        found = []
        for name, root in document.parts.items():
            if name.endswith("sharedStrings.xml"):
                found += [_sheet_runs(si) for si in root.iter(f"{{{SHEET}}}si")]
            else:
                found += [_sheet_runs(inline) for inline in root.iter(f"{{{SHEET}}}is")]
        document._collect(found)
        return document  # type: ignore[return-value]


class PresentationDocument(PackageDocument):
    @classmethod
    def read(cls, data: bytes) -> PresentationDocument:
        document = cls._open(
            data, ".pptx", "ppt/presentation.xml", re.compile(r"ppt/(?:slides/slide|notesSlides/notesSlide)\d+\.xml")
        )
        found = []
        for name in sorted(document.parts, key=_slide_order):
            found += [_slide_runs(p) for p in document.parts[name].iter(f"{{{DRAWING}}}p")]
        document._collect(found)
        return document  # type: ignore[return-value]
