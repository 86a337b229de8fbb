"""File formats of ``/translate_file`` (``server/documents``), with a stand-in translator, and the file store."""

import asyncio
import io
import time
import zipfile

import docx
import polib
import pytest

from server.documents import DocumentError, translate_document
from server.documents.formats import CatalogDocument, SubtitleDocument, TextDocument, wrap
from server.documents.store import FileStore
from server.documents.word import WordDocument, check_archive, split_over_runs


async def _upper(texts):
    return [t.upper() for t in texts]


async def _html(document):
    return document.upper()


def translate(suffix, data, target="fr"):
    return asyncio.run(translate_document(suffix, data, _upper, _html, target))


def test_text_files_keep_their_blank_lines():
    data = b"First paragraph.\nSecond line.\n\n\nAnother one.\n  \nLast.\n"
    document = TextDocument.read(data)
    assert document.texts == ["First paragraph.\nSecond line.", "Another one.", "Last.\n"]
    assert translate(".txt", data) == data.upper()


def test_subtitles_keep_numbers_timings_and_line_counts():
    data = (b"1\n00:00:01,000 --> 00:00:02,500\nHello there,\nmy friend.\n\n"
            b"2\n00:00:03,000 --> 00:00:04,000 X1:40\nBye.\n")
    assert SubtitleDocument.read(data).texts == ["Hello there, my friend.", "Bye."]
    assert translate(".srt", data).decode() == ("1\n00:00:01,000 --> 00:00:02,500\nHELLO THERE,\nMY FRIEND.\n\n"
                                                "2\n00:00:03,000 --> 00:00:04,000 X1:40\nBYE.\n")
    assert wrap("one two three four", 2) == ["one two", "three four"] and wrap("一二三四", 2) == ["一二", "三四"]
    with pytest.raises(DocumentError, match="block 1"):
        SubtitleDocument.read(b"not subtitles\n")


CATALOG = '''# Translation of the app.
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

msgctxt "menu"
msgid "one file"
msgid_plural "many files"
msgstr[0] ""
msgstr[1] ""
msgstr[2] ""

#~ msgid "Old"
#~ msgstr ""
'''


def test_catalogs_fill_untranslated_messages_as_fuzzy_and_keep_everything_else():
    out = translate(".po", CATALOG.encode(), target="pl").decode()
    catalog = polib.pofile(out)
    save = catalog.find("Save")
    assert save.msgstr == "SAVE" and save.flags == ["python-format", "fuzzy"]
    assert save.comment == "A comment for translators" and save.occurrences == [("app/views.py", "10")]
    done = catalog.find("Already done")
    assert done.msgstr == "Déjà fait" and "fuzzy" not in done.flags  # a translator's work is kept
    plural = catalog.find("one file", msgctxt="menu")
    assert plural.msgstr_plural == {0: "ONE FILE", 1: "MANY FILES", 2: "MANY FILES"}
    assert catalog.metadata["Language"] == "pl" and out.startswith("# Translation of the app.\n")
    assert [e.msgid for e in catalog.obsolete_entries()] == ["Old"]


@pytest.mark.parametrize("data,reason", [
    (b'msgid "a\nmsgstr', "not a valid .po file: Syntax error"),
    (b"", "the file is empty"),
    (b"\x00\x01binary", "binary data"),
    (b"\xff\xfe\x00x", "binary data"),
])
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
    assert WordDocument.read(data).texts == ["Change password now.", "Change", "password", "now.",
                                             "Plain paragraph.", "Cell text."]
    out = docx.Document(io.BytesIO(translate(".docx", data)))
    runs = [(r.text, r.bold) for r in out.paragraphs[0].runs]
    assert runs == [("CHANGE ", False), ("PASSWORD", True), (" NOW.", False)]
    assert out.paragraphs[1].text == "PLAIN PARAGRAPH." and out.tables[0].cell(0, 0).text == "CELL TEXT."


def test_runs_share_a_translation_in_order_without_losing_a_character():
    pieces = split_over_runs("Change password now.", ["Change ", "password", " now."],
                             "Changer le mot de passe maintenant.", ["Changer", "mot de passe", "maintenant."])
    assert pieces == ["Changer le ", "mot de passe", " maintenant."]
    odd = split_over_runs("a b c", ["a ", "b ", "c"], "xyz", ["nothing", "found", "here"])
    assert "".join(odd) == "xyz" and len(odd) == 3


def _zip(members, compression=zipfile.ZIP_DEFLATED):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@pytest.mark.parametrize("data,reason", [
    (b"Just text renamed to .docx", "not a zip archive"),
    (_zip({"hello.txt": "x"}), "no word/document.xml"),
    (_zip({"[Content_Types].xml": "<x/>", "word/document.xml": "\0" * 50_000_000}), "zip bomb"),
    (_zip({"[Content_Types].xml": "<x/>", "word/document.xml": "<not-word/>"}), "not a readable .docx"),
])
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
