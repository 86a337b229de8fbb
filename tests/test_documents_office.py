"""Excel (.xlsx) and PowerPoint (.pptx) files built in code with openpyxl and python-pptx, translated by a
stand-in that upper-cases letters outside tags, and read back with the same libraries: text translated,
numbers, formulas, sheet names, formatting and images kept, zip bombs and renamed files refused."""

from __future__ import annotations

import io
import re
import zipfile

import openpyxl
import pytest
from openpyxl.cell.rich_text import CellRichText, TextBlock
from openpyxl.cell.text import InlineFont
from pptx import Presentation
from pptx.util import Inches

from server.documents import DocumentError, read_document


def upper(text):
    return re.sub(r"(<[^>]*>)|([^<]+)", lambda m: m.group(1) or m.group(2).upper(), text)


def translate(suffix, data):
    document = read_document(suffix, data)
    return document, document.render([upper(t) for t in document.texts], "fr")


def _workbook():
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Prices"
    sheet["A1"] = "Open the file"
    sheet["A2"] = 42
    sheet["A3"] = "=A2*2"
    sheet["B1"] = CellRichText([TextBlock(InlineFont(b=True), "Bold"), " and plain"])
    sheet["B2"] = "Open the file"  # shared with A1
    sheet["B3"] = "  spaced  "
    book.create_sheet("Notes")["A1"] = "Second sheet text"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_workbook_text_cells_are_translated_and_the_rest_kept():
    document, out = translate(".xlsx", _workbook())
    assert set(document.texts) == {
        "Open the file",
        "<g1>Bold</g1><g2> and plain</g2>",
        "  spaced  ",
        "Second sheet text",
    }
    book = openpyxl.load_workbook(io.BytesIO(out), rich_text=True)
    assert book.sheetnames == ["Prices", "Notes"]
    sheet = book["Prices"]
    assert sheet["A1"].value == "OPEN THE FILE" and sheet["B2"].value == "OPEN THE FILE"
    assert sheet["A2"].value == 42 and sheet["A3"].value == "=A2*2"
    rich = sheet["B1"].value
    assert isinstance(rich, CellRichText) and str(rich) == "BOLD AND PLAIN"
    assert rich[0].font.b and rich[0].text == "BOLD"
    assert sheet["B3"].value == "  SPACED  " and book["Notes"]["A1"].value == "SECOND SHEET TEXT"


def test_a_translation_that_loses_its_runs_leaves_the_source_text():
    document = read_document(".xlsx", _workbook())
    translations = [("BOLD AND PLAIN" if t.startswith("<g1>") else t.upper()) for t in document.texts]
    book = openpyxl.load_workbook(io.BytesIO(document.render(translations, "fr")), rich_text=True)
    assert str(book["Prices"]["B1"].value) == "Bold and plain" and book["Prices"]["A1"].value == "OPEN THE FILE"


def _presentation(image: bytes | None = None):
    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Quarterly results"
    body = slide.placeholders[1].text_frame
    body.text = "Sales grew"
    paragraph = body.add_paragraph()
    run = paragraph.add_run()
    run.text = "Costs "
    bold = paragraph.add_run()
    bold.text = "fell"
    bold.font.bold = True
    table = slide.shapes.add_table(1, 2, Inches(1), Inches(5), Inches(4), Inches(1)).table
    table.cell(0, 0).text = "Region"
    table.cell(0, 1).text = "North"
    slide.notes_slide.notes_text_frame.text = "Speak slowly"
    if image:
        slide.shapes.add_picture(io.BytesIO(image), Inches(6), Inches(1))
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360"
    "f8cfc0f01f0005000201e5274ede0000000049454e44ae426082"
)


def test_presentation_slides_tables_and_notes_are_translated_with_formatting_and_images():
    source = _presentation(PNG)
    document, out = translate(".pptx", source)
    assert "<g1>Costs </g1><g2>fell</g2>" in document.texts and "Speak slowly" in document.texts
    deck = Presentation(io.BytesIO(out))
    slide = deck.slides[0]
    texts = [s.text_frame.text for s in slide.shapes if s.has_text_frame]
    assert texts[:2] == ["QUARTERLY RESULTS", "SALES GREW\nCOSTS FELL"]
    runs = slide.placeholders[1].text_frame.paragraphs[1].runs
    assert [(r.text, r.font.bold) for r in runs] == [("COSTS ", None), ("FELL", True)]
    table = next(s for s in slide.shapes if s.has_table).table
    assert [table.cell(0, i).text for i in range(2)] == ["REGION", "NORTH"]
    assert slide.notes_slide.notes_text_frame.text == "SPEAK SLOWLY"
    pictures = [s for s in slide.shapes if s.shape_type == 13]
    assert pictures and pictures[0].image.blob == PNG
    before, after = zipfile.ZipFile(io.BytesIO(source)), zipfile.ZipFile(io.BytesIO(out))
    assert before.namelist() == after.namelist()
    untouched = [n for n in before.namelist() if not re.match(r"ppt/(slides|notesSlides)/\w+\.xml$", n)]
    assert all(before.read(n) == after.read(n) for n in untouched)  # byte for byte


def _zip(members):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return out.getvalue()


@pytest.mark.parametrize(
    ("suffix", "data", "reason"),
    [
        (".xlsx", b"just text", "not a zip"),
        (".pptx", _zip({"[Content_Types].xml": "<Types/>", "word/document.xml": "<w/>"}), "ppt/presentation.xml"),
        (
            ".xlsx",
            _zip(
                {
                    "[Content_Types].xml": "<Types/>",
                    "xl/workbook.xml": "<w/>",
                    "xl/sharedStrings.xml": b"\x00" * (30 * 2**20),
                }
            ),
            "zip bomb",
        ),
        (
            ".xlsx",
            _zip({"[Content_Types].xml": "<Types/>", "xl/workbook.xml": "<w/>", "xl/sharedStrings.xml": "<sst"}),
            "not a valid .xlsx",
        ),
    ],
)
def test_what_is_not_a_workbook_or_presentation_is_refused(suffix, data, reason):
    with pytest.raises(DocumentError, match=reason):
        read_document(suffix, data)
