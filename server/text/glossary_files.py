"""Glossary files: CSV or TSV with a header row naming the two languages (``en,fr``), and TBX (TermBase
eXchange, ISO 30042: ``termEntry`` / ``langSet xml:lang`` / ``tig`` or ``ntig`` / ``term``), read into a
``Glossary`` for one language pair. Untrusted input: the XML goes through ``defusedxml`` (no entity expansion,
no external entities, no DTD), sizes are bounded, and every refusal says why (a 400)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from server.text.glossary import MAX_TERMS, Glossary, GlossaryError

MAX_GLOSSARY_BYTES = 1 << 20  # 1 MiB: far more than MAX_TERMS terms need
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


@dataclass(frozen=True)
class GlossaryFile:
    source: str  # language codes as the file names them
    target: str
    glossary: Glossary


def read_glossary_file(
    data: bytes, filename: str = "", source: str | None = None, target: str | None = None
) -> GlossaryFile:
    """The glossary in ``data``: TBX when it is XML (or named ``.tbx``), else CSV or TSV (the delimiter
    sniffed from the header row). ``source`` / ``target``: the pair wanted, for a TBX of more languages (default:
    its first two)."""
    if len(data) > MAX_GLOSSARY_BYTES:
        raise GlossaryError(f"the glossary file has {len(data)} bytes; the limit is {MAX_GLOSSARY_BYTES}")
    if not data.strip():
        raise GlossaryError("the glossary file is empty")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise GlossaryError("the glossary file is not UTF-8 text") from None
    if "\x00" in text:
        raise GlossaryError("the glossary file holds binary data")
    if filename.lower().endswith((".tbx", ".xml")) or text.lstrip().startswith("<"):
        return _tbx(text, source, target)
    return _delimited(text)


def _delimited(text: str) -> GlossaryFile:
    header = text.splitlines()[0]
    delimiter = "\t" if "\t" in header else ";" if header.count(";") == 1 and "," not in header else ","
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error as err:
        raise GlossaryError(f"not a valid CSV/TSV glossary: {err}") from None
    head = [c.strip() for c in rows[0]]
    if len(head) != 2 or not all(head):
        raise GlossaryError(
            f"the first row of a CSV/TSV glossary names its two languages, e.g. 'en,fr'; found {len(head)} columns"
        )
    pairs = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) != 2:
            raise GlossaryError(f"row {number} of the glossary has {len(row)} columns; every row has two")
        pairs.append((row[0], row[1]))
        if len(pairs) > MAX_TERMS:
            raise GlossaryError(f"the glossary has more than {MAX_TERMS} terms")
    if not pairs:
        raise GlossaryError("the glossary has a header row but no terms")
    return GlossaryFile(head[0], head[1], Glossary.of(pairs))


def _tbx(text: str, source: str | None, target: str | None) -> GlossaryFile:
    try:
        root = ElementTree.fromstring(text, forbid_dtd=True)
    except DefusedXmlException as err:
        raise GlossaryError(f"the TBX file is refused: {type(err).__name__}") from None
    except ElementTree.ParseError as err:
        raise GlossaryError(f"not a valid TBX file: {err}") from None
    entries = [e for e in root.iter() if _local(e.tag) in ("termEntry", "conceptEntry")]
    if not entries:
        raise GlossaryError("not a TBX glossary: no termEntry (or conceptEntry) in it")
    table: list[dict[str, str]] = []
    languages: list[str] = []
    for entry in entries:
        terms: dict[str, str] = {}
        for lang_set in (e for e in entry if _local(e.tag) == "langSet"):
            code = lang_set.get(XML_LANG) or lang_set.get("lang") or ""
            if not code:
                raise GlossaryError("a TBX langSet has no xml:lang")
            term = next((t for t in lang_set.iter() if _local(t.tag) == "term"), None)
            if term is not None and "".join(term.itertext()).strip():
                terms.setdefault(code, "".join(term.itertext()))
                if code not in languages:
                    languages.append(code)
        table.append(terms)
        if len(table) > MAX_TERMS:
            raise GlossaryError(f"the glossary has more than {MAX_TERMS} terms")
    source = source or (languages[0] if languages else None)
    target = target or next((code for code in languages if code != source), None)
    if source is None or target is None:
        raise GlossaryError("the TBX file has terms in fewer than two languages")
    pairs = [(t[source], t[target]) for t in table if source in t and target in t]
    if not pairs:
        raise GlossaryError(f"the TBX file has no entry with terms in both {source!r} and {target!r}")
    return GlossaryFile(source, target, Glossary.of(pairs))


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""
