"""Stored glossaries: the file formats (CSV, TSV, TBX built in code as terminology tools write them; hostile XML
refused), the store (in memory and in a directory, ids that never name a path), and the API (admin token
without keys, one set per key with keys, used by ``glossary_id`` in /translate and /translate_file)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from server.runtime.glossary_store import GlossaryStore, owner_of
from server.text.glossary import MAX_TERMS, Glossary, GlossaryError
from server.text.glossary_files import GlossaryFile, read_glossary_file
from server_helpers import make_app

TBX = """<?xml version="1.0" encoding="UTF-8"?>
<martif type="TBX" xml:lang="en">
  <martifHeader><fileDesc><sourceDesc><p>demo termbase</p></sourceDesc></fileDesc></martifHeader>
  <text><body>
    <termEntry id="t1">
      <langSet xml:lang="en-US"><tig><term>spreadsheet</term></tig></langSet>
      <langSet xml:lang="fr-FR"><tig><term>classeur</term></tig></langSet>
      <langSet xml:lang="de"><ntig><termGrp><term>Tabellendokument</term></termGrp></ntig></langSet>
    </termEntry>
    <termEntry id="t2">
      <langSet xml:lang="en-US"><tig><term>cell <hi>range</hi></term></tig></langSet>
      <langSet xml:lang="fr-FR"><tig><term>plage de cellules</term></tig></langSet>
    </termEntry>
  </body></text>
</martif>"""


def pairs(g: GlossaryFile) -> list[tuple[str, str]]:
    return [(t.source, t.target) for t in g.glossary.terms]


def test_csv_tsv_and_tbx_glossaries_are_read():
    csv = read_glossary_file(b'en,fr\nfile,fichier\n"Save, as","Enregistrer sous"\nLibreOffice,LibreOffice\n')
    assert (csv.source, csv.target) == ("en", "fr")
    assert pairs(csv) == [("file", "fichier"), ("Save, as", "Enregistrer sous"), ("LibreOffice", "LibreOffice")]
    tsv = read_glossary_file("\ufeffen\tde\nfile\tDatei\n".encode())
    assert (tsv.source, tsv.target, pairs(tsv)) == ("en", "de", [("file", "Datei")])
    tbx = read_glossary_file(TBX.encode(), "terms.tbx")
    assert (tbx.source, tbx.target) == ("en-US", "fr-FR")
    assert pairs(tbx) == [("spreadsheet", "classeur"), ("cell range", "plage de cellules")]
    german = read_glossary_file(TBX.encode(), "terms.tbx", "en-US", "de")
    assert pairs(german) == [("spreadsheet", "Tabellendokument")]


BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<martif><text><body><termEntry><langSet xml:lang="en"><tig><term>&lol2;</term></tig></langSet></termEntry>
</body></text></martif>"""
EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE martif [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<martif><text><body><termEntry><langSet xml:lang="en"><tig><term>&secret;</term></tig></langSet></termEntry>
</body></text></martif>"""


@pytest.mark.parametrize(
    "data,error",
    [
        (b"", "empty"),
        (b"\xff\xfe\x00x", "not UTF-8"),
        (b"en,fr,de\na,b,c\n", "names its two languages"),
        (b"en,fr\nfile\n", "row 2 of the glossary has 1 columns"),
        (b"en,fr\n", "no terms"),
        ("en,fr\n" + "".join(f"t{i},u{i}\n" for i in range(MAX_TERMS + 1)), "more than"),
        (b"<martif><text><body></body></text></martif>", "no termEntry"),
        (b"<martif><unclosed>", "not a valid TBX"),
        (BOMB.encode(), "refused"),
        (EXTERNAL.encode(), "refused"),
        (b"x" * ((1 << 20) + 1), "limit"),
    ],
)
def test_bad_glossary_files_are_refused_with_the_reason(data, error):
    with pytest.raises(GlossaryError, match=error):
        read_glossary_file(data if isinstance(data, bytes) else data.encode())


@pytest.mark.parametrize("directory", [False, True])
def test_the_store_keeps_each_owners_glossaries_apart(tmp_path, directory):
    store = GlossaryStore(tmp_path / "g" if directory else None, max_glossaries=2)
    one = GlossaryFile("en", "fr", Glossary.of([("file", "fichier")]))
    alice, bob = owner_of("key-a"), owner_of("key-b")
    assert store.put(alice, "ui", one) is True and store.put(alice, "ui", one) is False
    assert store.get(alice, "ui") == one and store.get(bob, "ui") is None and store.ids(bob) == []
    store.put(alice, "docs", one)
    with pytest.raises(ValueError, match="limit is 2"):
        store.put(alice, "third", one)
    for hostile in ("../ui", "ui/../../x", ".hidden", "a" * 65, ""):
        assert store.get(alice, hostile) is None and store.delete(alice, hostile) is False
    assert store.delete(alice, "ui") and store.ids(alice) == ["docs"]
    if directory:
        assert "key-a" not in str(list((tmp_path / "g").rglob("*")))  # keys are hashed, never written
        assert GlossaryStore(tmp_path / "g").get(alice, "docs") == one  # another process sees it


@pytest.fixture(scope="module")
def admin(service_dirs):
    base, bundle = service_dirs
    with TestClient(make_app(base, bundle, admin_token="tok", max_new_tokens=48)) as c:
        yield c


AUTH = {"Authorization": "Bearer tok"}


def test_a_stored_glossary_is_managed_with_the_admin_token_and_enforced_by_id(admin):
    body = "en,fr\nwindow,fenêtre\nLibreOffice,LibreOffice\n"
    assert admin.put("/glossaries/ui", content=body).status_code == 401
    created = admin.put("/glossaries/ui", content=body, headers={**AUTH, "content-type": "text/csv"})
    assert created.status_code == 200 and created.json() == {
        "id": "ui",
        "source": "en",
        "target": "fr",
        "terms": 2,
        "created": True,
    }
    tbx = admin.put("/glossaries/calc", files={"file": ("terms.tbx", TBX.encode())}, headers=AUTH)
    assert tbx.status_code == 200 and tbx.json()["terms"] == 2
    assert admin.get("/glossaries", headers=AUTH).json() == {"glossaries": ["calc", "ui"]}
    assert admin.get("/glossaries/ui", headers=AUTH).json()["entries"] == [
        {"source": "window", "target": "fenêtre"},
        {"source": "LibreOffice", "target": "LibreOffice"},
    ]

    q = "Close the window of LibreOffice."
    out = admin.post("/translate", json={"q": q, "source": "en", "target": "fr", "glossary_id": "ui"})
    assert out.status_code == 200 and "fenêtre" in out.json()["translatedText"].lower()
    assert "LibreOffice" in out.json()["translatedText"]
    inline = admin.post(
        "/translate",
        json={"q": q, "source": "en", "target": "fr", "glossary_id": "ui", "glossary": {"window": "vitre"}},
    ).json()["translatedText"]
    assert "vitre" in inline.lower()  # the inline terms win over the stored ones
    wrong = admin.post("/translate", json={"q": q, "source": "en", "target": "de", "glossary_id": "ui"})
    assert wrong.status_code == 400 and "en→fr" in wrong.json()["error"]
    assert (
        admin.post("/translate", json={"q": q, "source": "en", "target": "fr", "glossary_id": "nope"}).status_code
        == 404
    )
    done = admin.post(
        "/translate_file",
        files={"file": ("a.txt", b"Open the window.")},
        data={"source": "en", "target": "fr", "glossary_id": "ui"},
    )
    name = done.json()["translatedFileUrl"].rsplit("/", 1)[1]
    assert "fenêtre" in admin.get(f"/download_file/{name}").text.lower()

    assert admin.put("/glossaries/..%2Fx", content=body, headers=AUTH).status_code in (400, 404)
    assert admin.put("/glossaries/bad", content=b"en,xx-nope\na,b\n", headers=AUTH).status_code == 400
    assert admin.delete("/glossaries/ui", headers=AUTH).status_code == 204
    assert admin.delete("/glossaries/ui", headers=AUTH).status_code == 404


def test_with_api_keys_each_key_has_its_own_glossaries(service_dirs):
    base, bundle = service_dirs
    with TestClient(make_app(base, bundle, api_keys="ka,kb")) as c:
        put = c.put("/glossaries/ui?api_key=ka", content="en,fr\nwindow,fenêtre\n")
        assert put.status_code == 200
        assert c.get("/glossaries", headers={"X-API-Key": "kb"}).json() == {"glossaries": []}
        assert c.get("/glossaries", headers={"X-API-Key": "kc"}).status_code == 403
        mine = c.post(
            "/translate",
            json={"q": "The window.", "source": "en", "target": "fr", "api_key": "ka", "glossary_id": "ui"},
        )
        assert mine.status_code == 200
        theirs = c.post(
            "/translate",
            json={"q": "The window.", "source": "en", "target": "fr", "api_key": "kb", "glossary_id": "ui"},
        )
        assert theirs.status_code == 404
