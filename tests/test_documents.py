"""File formats of ``/translate_file`` (``server/documents``), with a stand-in translator, and the file store."""

import io
import time
import zipfile

import docx
import polib
import pytest

from server.documents import DocumentError, read_document
from server.documents.catalog import CatalogDocument
from server.documents.formats import SubtitleDocument, TextDocument, wrap
from server.documents.store import FileStore
from server.documents.word import WordDocument, check_archive, split_over_runs


def translate(suffix, data, target="fr"):
    """The file 'translated' by a stand-in translator that upper-cases every text."""
    document = read_document(suffix, data)
    return document.render([t.upper() for t in document.texts], target)


def test_text_files_keep_their_blank_lines_line_endings_and_byte_order_mark():
    data = b"First paragraph.\nSecond line.\n\n\nAnother one.\n  \nLast.\n"
    document = TextDocument.read(data)
    assert document.texts == ["First paragraph.\nSecond line.", "Another one.", "Last.\n"]
    assert document.characters == sum(len(t) for t in document.texts)
    assert translate(".txt", data) == data.upper()
    windows = "\ufeffOne.\r\n\r\nTwo.\r\n".encode()
    assert translate(".txt", windows) == "\ufeffONE.\r\n\r\nTWO.\r\n".encode()


def test_subtitles_keep_numbers_timings_and_line_counts():
    data = (
        b"1\n00:00:01,000 --> 00:00:02,500\nHello there,\nmy friend.\n\n2\n00:00:03,000 --> 00:00:04,000 X1:40\nBye.\n"
    )
    assert SubtitleDocument.read(data).texts == ["Hello there, my friend.", "Bye."]
    assert translate(".srt", data).decode() == (
        "1\n00:00:01,000 --> 00:00:02,500\nHELLO THERE,\nMY FRIEND.\n\n2\n00:00:03,000 --> 00:00:04,000 X1:40\nBYE.\n"
    )


def test_subtitle_dialogue_tags_line_endings_and_scripts_without_spaces():
    data = (
        "1\r\n00:00:01,000 --> 00:00:02,000\r\n- Is it you?\r\n- Yes, me.\r\n\r\n"
        "2\r\n00:00:03,000 --> 00:00:04,000\r\n<i>Far away,\r\nlong ago.</i>\r\n\r\n"
        "3\r\n00:00:05,000 --> 00:00:06,000\r\n你好\r\n世界\r\n"
    ).encode()
    document = SubtitleDocument.read(data)
    assert document.texts == ["- Is it you?", "- Yes, me.", "Far away, long ago.", "你好世界"]
    out = translate(".srt", data).decode()
    assert "\r\n- IS IT YOU?\r\n- YES, ME.\r\n" in out  # each speaker keeps their line
    assert "\r\n<i>FAR AWAY,\r\nLONG AGO.</i>\r\n" in out  # the tags stay around the lines
    assert out.count("\r\n") == data.decode().count("\r\n")
    assert wrap("one two three four", 2) == ["one two", "three four"] and wrap("一二三四", 2) == ["一二", "三四"]
    with pytest.raises(DocumentError, match="block 1"):
        SubtitleDocument.read(b"not subtitles\n")


CATALOG = """# Translation of the app.
# Copyright (C) the authors.
msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\\n"
"Plural-Forms: nplurals=3; plural=(n==1 ? 0 : n%10>=2 && n%10<=4 ? 1 : 2);\\n"

#. A comment for translators
#: app/views.py:10
#, python-format
msgid "Save"
msgstr ""

msgid "Already done"
msgstr "Déjà fait"

#, fuzzy
msgid "Draft"
msgstr "Brouillon"

msgctxt "menu"
msgid "one file"
msgid_plural "many files"
msgstr[0] ""
msgstr[1] ""
msgstr[2] ""

#~ msgid "Old"
#~ msgstr ""
"""


def test_catalogs_fill_untranslated_messages_as_fuzzy_and_keep_everything_else():
    out = translate(".po", CATALOG.encode(), target="pl").decode()
    catalog = polib.pofile(out)
    save = catalog.find("Save")
    assert save.msgstr == "SAVE" and save.flags == ["python-format", "fuzzy"]
    assert save.comment == "A comment for translators" and save.occurrences == [("app/views.py", "10")]
    done = catalog.find("Already done")
    assert done.msgstr == "Déjà fait" and "fuzzy" not in done.flags  # a translator's work is kept
    assert catalog.find("Draft").msgstr == "Brouillon"  # their draft too
    plural = catalog.find("one file", msgctxt="menu")
    assert plural.msgstr_plural == {0: "ONE FILE", 1: "MANY FILES", 2: "MANY FILES"}
    assert catalog.metadata["Language"] == "pl" and out.startswith("# Translation of the app.\n")
    assert [e.msgid for e in catalog.obsolete_entries()] == ["Old"]


TEMPLATE = b"""msgid ""
msgstr ""
"Content-Type: text/plain; charset=CHARSET\\n"
"Plural-Forms: nplurals=INTEGER; plural=EXPRESSION;\\n"

msgid "one file"
msgid_plural "%d files"
msgstr[0] ""
msgstr[1] ""
"""


@pytest.mark.parametrize(
    "target,forms",
    [
        ("ja", {0: "%D FILES"}),
        ("pl", {0: "ONE FILE", 1: "%D FILES", 2: "%D FILES"}),
        ("fr", {0: "ONE FILE", 1: "%D FILES"}),
    ],
)
def test_a_template_gets_the_targets_plural_rule_and_utf8(target, forms):
    catalog = polib.pofile(translate(".pot", TEMPLATE, target).decode())
    assert catalog.metadata["Content-Type"] == "text/plain; charset=UTF-8"
    assert catalog.metadata["Plural-Forms"].startswith(f"nplurals={len(forms)};")
    assert catalog.find("one file").msgstr_plural == forms


def test_a_latin1_catalog_is_read_by_its_charset_and_written_in_utf8():
    data = 'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=ISO-8859-1\\n"\n\nmsgid "Café"\nmsgstr ""\n'
    out = translate(".po", data.encode("latin-1")).decode("utf-8")
    assert polib.pofile(out).find("Café").msgstr == "CAFÉ" and "charset=UTF-8" in out


@pytest.mark.parametrize(
    "data,reason",
    [
        (b'msgid "a\nmsgstr', "not a valid .po file: Syntax error"),
        (
            b'msgid ""\nmsgstr ""\n"Plural-Forms: nplurals=1000000000; plural=0;\\n"\n\nmsgid "a"\nmsgid_plural "b"\n'
            b'msgstr[0] ""\n',
            "nplurals=1000000000",
        ),
        (b"", "the file is empty"),
        (b"\x00\x01binary", "binary data"),
        (b"\xff\xfe\x00x", "binary data"),
    ],
)
def test_broken_catalogs_are_refused_with_a_reason(data, reason):
    with pytest.raises(DocumentError, match=reason):
        translate(".po", data)


def test_a_catalog_whose_content_is_a_path_never_reads_that_file(tmp_path):
    secret = tmp_path / "secret.po"
    secret.write_text('msgid "Secret"\nmsgstr ""\n')
    with pytest.raises(DocumentError):
        CatalogDocument.read(str(secret).encode())  # polib would open an existing path given as "content"


def _docx(paragraphs):
    document = docx.Document()
    for runs in paragraphs:
        p = document.add_paragraph()
        for text, bold in runs:
            p.add_run(text).bold = bold
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text = "Cell text."
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_word_paragraphs_keep_their_runs_and_tables_are_translated():
    data = _docx([[("Change ", False), ("password", True), (" now.", False)], [("Plain paragraph.", False)]])
    document = WordDocument.read(data)
    assert document.texts == ["Change password now.", "Change", "password", "now.", "Plain paragraph.", "Cell text."]
    assert document.characters == len("Change password now.Plain paragraph.Cell text.")
    out = docx.Document(io.BytesIO(translate(".docx", data)))
    runs = [(r.text, r.bold) for r in out.paragraphs[0].runs]
    assert runs == [("CHANGE ", False), ("PASSWORD", True), (" NOW.", False)]
    assert out.paragraphs[1].text == "PLAIN PARAGRAPH." and out.tables[0].cell(0, 0).text == "CELL TEXT."


def test_word_hyperlinks_breaks_and_headers_are_handled():
    document = docx.Document()
    p = document.add_paragraph()
    p.add_run("See ")
    link = p._p.add_hyperlink()  # a hyperlink with one run, as Word writes it
    run = link.add_r()
    run.text = "the docs"
    p.add_run(" for details.")
    breaking = document.add_paragraph().add_run("Page one.")
    breaking.add_break(docx.enum.text.WD_BREAK.PAGE)
    document.sections[0].first_page_header.is_linked_to_previous = False
    document.sections[0].first_page_header.paragraphs[0].text = "First page header."
    buffer = io.BytesIO()
    document.save(buffer)
    out = docx.Document(io.BytesIO(translate(".docx", buffer.getvalue())))
    assert out.paragraphs[0].text == "SEE THE DOCS FOR DETAILS."  # the hyperlink's text is translated with the rest
    breaks = out.paragraphs[1].runs[0]._r.findall(docx.oxml.ns.qn("w:br"))
    assert out.paragraphs[1].text.startswith("PAGE ONE.") and [b.get(docx.oxml.ns.qn("w:type")) for b in breaks] == [
        "page"
    ]  # the page break is still there
    assert out.sections[0].first_page_header.paragraphs[0].text == "FIRST PAGE HEADER."


def test_runs_share_a_translation_in_order_without_losing_a_character():
    pieces = split_over_runs(
        "Change password now.",
        ["Change ", "password", " now."],
        "Changer le mot de passe maintenant.",
        ["Changer", "mot de passe", "maintenant."],
    )
    assert pieces == ["Changer le ", "mot de passe", " maintenant."]
    odd = split_over_runs("a b c", ["a ", "b ", "c"], "xyz", ["nothing", "found", "here"])
    assert "".join(odd) == "xyz" and len(odd) == 3


def _zip(members, compression=zipfile.ZIP_DEFLATED):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data,reason",
    [
        (b"Just text renamed to .docx", "not a zip archive"),
        (_zip({"hello.txt": "x"}), "no word/document.xml"),
        (_zip({"[Content_Types].xml": "<x/>", "word/document.xml": "\0" * 50_000_000}), "zip bomb"),
        (_zip({"[Content_Types].xml": "<x/>", "word/document.xml": "<not-word/>"}), "not a readable .docx"),
    ],
)
def test_what_is_not_a_word_document_is_refused(data, reason):
    with pytest.raises(DocumentError, match=reason):
        translate(".docx", data)
    if reason == "zip bomb":
        assert len(data) < 200_000  # 50 MB of zeros in a small file: refused before it is expanded


def test_check_archive_accepts_a_real_document():
    check_archive(_docx([[("Hello.", False)]]))


def test_file_store_names_downloads_and_expiry(tmp_path):
    store = FileStore(tmp_path, ttl_s=0.5)
    name = store.save(b"data", "txt", "guide.fr.txt", "text/plain")
    assert len(name) == 36 and name.endswith(".txt")
    assert store.get(name).path.read_bytes() == b"data" and store.get(name).download_name == "guide.fr.txt"
    for bad in ("../" + name, name.upper(), name + "x", "a" * 32 + ".exe", "", "."):
        assert store.get(bad) is None
    time.sleep(0.6)
    assert store.get(name) is None and not (tmp_path / name).exists() and len(store) == 0


def test_file_stores_of_two_processes_on_one_directory_share_files_and_expiry(tmp_path):
    """--workers: each front end has its own FileStore on the same directory."""
    one, two = FileStore(tmp_path, ttl_s=0.5), FileStore(tmp_path, ttl_s=0.5)
    name = one.save(b"data", "json", "strings.fr.json", "application/json")
    stored = two.get(name)
    assert stored.path.read_bytes() == b"data" and stored.download_name == "strings.fr.json"
    assert stored.media_type == "application/json" and len(two) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, name + ".meta"])  # nothing half-written
    time.sleep(0.6)
    assert two.get(name) is None and one.get(name) is None and list(tmp_path.iterdir()) == []


def test_file_store_keeps_within_its_byte_budget_dropping_the_oldest(tmp_path):
    store = FileStore(tmp_path, ttl_s=60, max_bytes=10)
    first = store.save(b"123456", "txt", "a.txt", "text/plain")
    second = store.save(b"7890", "txt", "b.txt", "text/plain")
    third = store.save(b"abcde", "txt", "c.txt", "text/plain")  # 15 bytes would not fit: the oldest goes
    assert store.get(first) is None and store.get(second) and store.get(third) and len(store) == 2


def test_catalog_confidence_notes_and_threshold_by_hand():
    source = b'msgid "Open"\nmsgstr ""\n\n# keep this\nmsgid "Close"\nmsgstr ""\n'
    document = read_document(".po", source)
    written = polib.pofile(document.render(["Ouvrir", "Fermer"], "fr", (), [0.8712, 0.31], 0.5).decode())
    opened, closed = written.find("Open"), written.find("Close")
    assert opened.msgstr == "Ouvrir" and opened.tcomment == "machine translation, confidence 0.87"
    assert closed.msgstr == "" and closed.tcomment == (
        "keep this\nnot machine-translated: confidence 0.31 is under the threshold 0.50"
    )
    again = read_document(".po", written.__unicode__().encode())  # translated again: one note, the new one
    closed = polib.pofile(again.render(["Fermer"], "fr", (), [0.9]).decode()).find("Close")
    assert closed.tcomment == "keep this\nmachine translation, confidence 0.90"
