"""Placeholders and glossaries through the API on the tiny random model, which keeps no placeholder and knows
no term on its own: with protection every answer keeps its input's placeholders or is sent back untranslated
and counted, every catalog the service writes passes gettext's ``msgfmt -c``, and every glossary term that
occurs is in the translation."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import polib
import pytest
from fastapi.testclient import TestClient

from server.documents.catalog import LOST_NOTE
from server.http.routes.translate import UNTRANSLATED_HEADER
from server.text.placeholders import DEFAULT, syntax_for_flags
from server_helpers import make_app

TEXTS = [
    "Hello {name}, you have %(count)d new messages.",
    "Open <b>Settings</b> and read https://example.org/help.",
    "Write to support@example.org or edit ~/.config/app.ini now.",
    "Click here to continue.",  # nothing to protect
]


@pytest.fixture(scope="module")
def client(service_dirs, tmp_path_factory):
    base, bundle = service_dirs
    app = make_app(base, bundle, max_new_tokens=64, files_dir=tmp_path_factory.mktemp("files"))
    with TestClient(app) as c:
        yield c


def test_translations_keep_their_placeholders_or_come_back_as_they_were(client):
    response = client.post("/translate", json={"q": TEXTS, "source": "en", "target": "de"})
    assert response.status_code == 200
    out = response.json()["translatedText"]
    for text, translation in zip(TEXTS, out):
        assert DEFAULT.intact(text, translation), (text, translation)
    # the constraints, not the fallback, keep them: no sentence had to be sent back untranslated
    assert UNTRANSLATED_HEADER not in response.headers and all(t != x for t, x in zip(TEXTS, out))


def test_an_accelerator_stays_on_its_label(client):
    out = client.post("/translate", json={"q": "~Save As", "source": "en", "target": "fr"}).json()["translatedText"]
    assert out.count("~") == 1 and re.search(r"~\w", out)


def test_glossary_and_do_not_translate_terms_are_in_every_translation(client):
    q = ["Open the settings and save the file.", "The Settings dialog of LibreOffice.", "Nothing to enforce here."]
    response = client.post(
        "/translate",
        json={
            "q": q,
            "source": "en",
            "target": "fr",
            "glossary": [{"source": "settings", "target": "Paramètres"}, {"source": "file", "target": "fichier"}],
            "dnt": ["LibreOffice"],
        },
    )
    assert response.status_code == 200, response.text
    first, second, _ = response.json()["translatedText"]
    assert "paramètres" in first.lower() and "fichier" in first.lower()
    assert "paramètres" in second.lower() and "LibreOffice" in second
    html = client.post(
        "/translate",
        json={
            "q": "<p>Open <b>the file</b> now.</p>",
            "source": "en",
            "target": "fr",
            "format": "html",
            "glossary": {"file": "fichier"},
        },
    ).json()
    assert "fichier" in html["translatedText"].lower() and "<b>" in html["translatedText"]


@pytest.mark.parametrize(
    "glossary,dnt,error",
    [
        ([{"source": "a"}], None, "exactly 'source' and 'target'"),
        ({"": "x"}, None, "empty"),
        ([{"source": "file", "target": "fichier"}, {"source": "File", "target": "dossier"}], None, "two targets"),
        ({"x" * 101: "y"}, None, "longer than"),
        (None, [""], "empty"),
    ],
)
def test_bad_glossaries_are_400(client, glossary, dnt, error):
    response = client.post(
        "/translate", json={"q": "a file", "source": "en", "target": "fr", "glossary": glossary, "dnt": dnt}
    )
    assert response.status_code == 400 and error in response.json()["error"]


def test_an_icu_plural_comes_back_as_icu_with_its_branches_translated(client):
    from pyicumessageformat import Parser

    message = "You have {count, plural, one {# file} other {# files}} in {folder}."
    response = client.post("/translate", json={"q": message, "source": "en", "target": "fr"})
    assert response.status_code == 200
    out = response.json()["translatedText"]
    (choice,) = [n for n in Parser().parse(out) if not isinstance(n, str)]
    assert (choice["name"], choice["type"], set(choice["options"])) == ("count", "plural", {"one", "other"})
    for branch in choice["options"].values():
        arguments = [n for n in branch if isinstance(n, dict)]
        assert sorted("#" if n.get("hash") else n["name"] for n in arguments) == ["#", "folder"]
        assert "file" not in "".join(n for n in branch if isinstance(n, str))  # translated, not copied


CATALOG = """msgid ""
msgstr ""
"Project-Id-Version: demo 1.0\\n"
"Content-Type: text/plain; charset=CHARSET\\n"
"Content-Transfer-Encoding: 8bit\\n"
"Plural-Forms: nplurals=INTEGER; plural=EXPRESSION;\\n"

#, c-format
msgid "%s: cannot open '%s': %s\\n"
msgstr ""

#, c-format
msgid "%'d bytes (%s) copied, %g s, %s/s"
msgstr ""

#, c-format
msgid "%1$s: option '%2$s' requires an argument"
msgstr ""

#, c-format
msgid "%-10.2f%% of %lu blocks"
msgstr ""

#, c-format
msgid "one file removed: %s"
msgid_plural "%d files removed: %s"
msgstr[0] ""
msgstr[1] ""

#, python-format
msgid "%(name)s has %(count)d files"
msgstr ""

#, python-brace-format
msgid "{0} of {total} files"
msgstr ""

msgid "Close the window."
msgstr ""
"""


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="gettext's msgfmt is not installed (.ci/run installs it)")
def test_every_catalog_written_passes_msgfmt_check(client, tmp_path):
    response = client.post(
        "/translate_file", files={"file": ("demo.pot", CATALOG.encode())}, data={"source": "en", "target": "fr"}
    )
    assert response.status_code == 200, response.text
    name = response.json()["translatedFileUrl"].rsplit("/", 1)[1]
    written = tmp_path / "demo.fr.po"
    written.write_bytes(client.get(f"/download_file/{name}").content)
    check = subprocess.run(["msgfmt", "-c", "-o", "/dev/null", str(written)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    translated = lost = 0
    for entry in polib.pofile(str(written)):
        syntax = syntax_for_flags(entry.flags)
        if LOST_NOTE in entry.tcomment:
            lost += 1
            assert not entry.msgstr and not any(entry.msgstr_plural.values())
            continue
        translated += 1
        assert "fuzzy" in entry.flags
        if entry.msgid_plural:
            assert syntax.intact(entry.msgid_plural, entry.msgstr_plural[1])
        else:
            assert syntax.intact(entry.msgid, entry.msgstr)
    assert translated + lost == 8 and translated >= 6


def test_confidence_is_the_models_own_geometric_mean_token_probability(client, service_dirs):
    """With "confidence": true each translation and alternative carries exp(log p / tokens) of itself, as Hugging
    Face's beam search scores it (``sequences_scores``, length penalty 1, the bundle's adapters routed as
    served); without the field the answer is LibreTranslate's."""
    import torch
    from transformers import AutoTokenizer, M2M100ForConditionalGeneration

    from lslo.engine.generation import decoder_start
    from lslo.io import load_bundle
    from lslo.languages.tokenization import decoder_prefix, encode_sources

    base, bundle = service_dirs
    text = "Click here to continue."
    plain = client.post("/translate", json={"q": text, "source": "en", "target": "de"}).json()
    assert set(plain) == {"translatedText"}
    body = client.post(
        "/translate",
        json={"q": [text, "12,345"], "source": "en", "target": "de", "confidence": True, "alternatives": 1},
    ).json()
    (first, number), (alternative, none) = body["confidence"], body["alternativesConfidence"]
    assert number is None and none == []  # nothing to translate: not scored

    tokenizer = AutoTokenizer.from_pretrained(base)
    model = M2M100ForConditionalGeneration.from_pretrained(base, dtype=torch.float32).eval()
    lslo = load_bundle(model, bundle)
    enc = encode_sources(tokenizer, [text], ["en"], 256)
    limit = min(64, 3 * len(tokenizer(text, add_special_tokens=False)["input_ids"]) + 10)  # --max-length-ratio 3
    with torch.no_grad(), lslo.route(["en"], ["de"], True):
        out = model.generate(
            input_ids=enc["input_ids"],
            attention_mask=enc["attention_mask"],
            decoder_input_ids=decoder_prefix(tokenizer, ["de"], decoder_start(model)),
            num_beams=2,
            num_return_sequences=2,
            max_new_tokens=limit,
            do_sample=False,
            early_stopping=True,
            output_scores=True,
            return_dict_in_generate=True,
        )
    texts = [t.strip() for t in tokenizer.batch_decode(out.sequences, skip_special_tokens=True)]
    expected = [round(float(torch.exp(s)), 4) for s in out.sequences_scores]
    assert [body["translatedText"][0], body["alternatives"][0][0]] == texts
    assert [first, alternative[0]] == pytest.approx(expected, abs=2e-4)


def _download(client, response):
    assert response.status_code == 200, response.text
    return client.get("/download_file/" + response.json()["translatedFileUrl"].rsplit("/", 1)[1]).content


def test_xliff_and_i18next_files_through_the_api_keep_codes_and_placeholders(client):
    from lxml import etree

    x12 = "{urn:oasis:names:tc:xliff:document:1.2}"
    xliff = (
        """<?xml version="1.0" encoding="UTF-8"?>
<xliff version="1.2" xmlns="urn:oasis:names:tc:xliff:document:1.2">
<file original="ui" source-language="en" datatype="plaintext"><body>"""
        + "".join(
            f'<trans-unit id="u{i}"><source>{s}</source></trans-unit>'
            for i, s in enumerate(
                ['Save the <g id="1">file</g> as %s now.', 'Open <x id="2"/>Settings for {name}.', "Close"]
            )
        )
        + "</body></file></xliff>"
    )
    out = _download(
        client,
        client.post(
            "/translate_file", files={"file": ("ui.xlf", xliff.encode())}, data={"source": "en", "target": "fr"}
        ),
    )
    for unit in etree.fromstring(out).iter(f"{x12}trans-unit"):
        source, target = unit.find(f"{x12}source"), unit.find(f"{x12}target")
        if target is None:
            assert LOST_NOTE in "".join(unit.itertext())
            continue
        assert [(c.tag, dict(c.attrib)) for c in source] == [(c.tag, dict(c.attrib)) for c in target]
        flat = lambda e: (e.text or "") + "".join(f"<{etree.QName(c).localname}>" + (c.tail or "") for c in e)  # noqa: E731
        assert DEFAULT.intact(flat(source), flat(target)), (flat(source), flat(target))
    i18n = {
        "files_one": "{{count}} file was deleted.",
        "files_other": "{{count}} files were deleted.",
        "hello": "Hello %{name}, see $t(files).",
    }
    written = json.loads(
        _download(
            client,
            client.post(
                "/translate_file",
                files={"file": ("app.json", json.dumps(i18n).encode())},
                data={"source": "en", "target": "de"},
            ),
        )
    )
    assert set(written) == {"files_one", "files_other", "hello"}
    assert DEFAULT.intact(i18n["hello"], written["hello"]) and "{{count}}" in written["files_other"]


def _po(client, tmp_path, **fields):
    out = _download(
        client,
        client.post(
            "/translate_file",
            files={"file": ("demo.pot", CATALOG.encode())},
            data={"source": "en", "target": "fr", **fields},
        ),
    )
    path = tmp_path / f"demo-{len(fields)}-{fields.get('min_confidence', '')}.po"
    path.write_bytes(out)
    if shutil.which("msgfmt"):
        check = subprocess.run(["msgfmt", "-c", "-o", "/dev/null", str(path)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
    return polib.pofile(str(path))


def test_catalog_messages_carry_the_confidence_of_translate_and_a_threshold_leaves_them_untranslated(client, tmp_path):
    catalog = _po(client, tmp_path)
    checked = 0
    for entry in catalog:
        if not entry.msgstr or entry.msgid_plural:
            continue
        note = re.search(r"machine translation, confidence ([0-9.]+)", entry.tcomment)
        assert note, entry.tcomment
        same = client.post(
            "/translate", json={"q": entry.msgid, "source": "en", "target": "fr", "confidence": True, "format": "text"}
        ).json()
        assert abs(float(note.group(1)) - same["confidence"]) <= 0.01  # what /translate says of the same text
        checked += 1
    assert checked >= 3
    strict = _po(client, tmp_path, min_confidence="1")  # no translation is certain
    assert all(not e.msgstr and not any(e.msgstr_plural.values()) for e in strict if e.msgid)
    assert all("under the threshold 1.00" in e.tcomment for e in strict if e.msgid and LOST_NOTE not in e.tcomment)
    assert (
        client.post(
            "/translate_file",
            files={"file": ("demo.pot", CATALOG.encode())},
            data={"source": "en", "target": "fr", "min_confidence": "2"},
        ).status_code
        == 400
    )


def test_inline_glossary_and_dnt_in_a_file(client):
    text = b"Open the settings of LibreOffice.\n\nThe file is saved.\n"
    out = _download(
        client,
        client.post(
            "/translate_file",
            files={"file": ("a.txt", text)},
            data={
                "source": "en",
                "target": "fr",
                "glossary": json.dumps({"settings": "Paramètres", "file": "fichier"}),
                "dnt": "LibreOffice",
            },
        ),
    ).decode()
    first, second = out.split("\n\n")
    assert "paramètres" in first.lower() and "LibreOffice" in first and "fichier" in second.lower()
    bad = client.post(
        "/translate_file",
        files={"file": ("a.txt", text)},
        data={"source": "en", "target": "fr", "glossary": "{not json"},
    )
    assert bad.status_code == 400 and "JSON" in bad.json()["error"]


def test_a_presentation_through_the_api_opens_with_its_formatting(client):
    import io

    from pptx import Presentation
    from test_documents_office import _presentation

    out = _download(
        client,
        client.post(
            "/translate_file", files={"file": ("deck.pptx", _presentation())}, data={"source": "en", "target": "de"}
        ),
    )
    deck = Presentation(io.BytesIO(out))
    runs = deck.slides[0].placeholders[1].text_frame.paragraphs[1].runs
    assert len(runs) == 2 and runs[1].font.bold and runs[0].font.bold is None
    assert deck.slides[0].shapes.title.text != "Quarterly results"  # translated (by a random model)
