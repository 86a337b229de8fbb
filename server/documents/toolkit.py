"""Software localisation files, read and written with translate-toolkit (the library Weblate reads them with):
XLIFF 1.2 and 2.0, Qt Linguist ``.ts``, Java ``.properties``, Android ``strings.xml``, Apple ``.strings``, JSON
(flat, nested, i18next) and YAML (Rails i18n and plain).

Bilingual files (XLIFF, ``.ts``) get a target for every translatable unit that has none, marked for review (XLIFF
1.2: ``state="needs-review-translation" state-qualifier="mt-suggestion"``; 2.0: ``state="initial"``; ``.ts``:
``type="unfinished"``); units with a target, or ``translate="no"``, stay as they are. Monolingual files (the
others) are the source-language file with every translatable value translated: keys, comments, order,
untranslatable entries (Android's ``translatable="false"``, JSON numbers) stay; Android's string arrays are
translated item by item (``server.documents.android_arrays``), XLIFF 1.2's ``<seg-source>`` segment by segment
(``server.documents.segments``). Plurals are written in the
target language's CLDR categories (``key_one``/``key_other`` in English become ``key_other`` alone in Japanese
and ``one``/``few``/``many``/``other`` in Polish), each from the source form of the same category, else from
``other``.

XLIFF's inline codes (``<g>``, ``<x/>``, ``<ph>``, ``<pc>``, ``<mrk>``, ...) reach the model as numbered tags
(``<g1>...</g1>``, ``<x2/>``), which the placeholder rules protect, and are rebuilt from the source's elements;
a translation whose tags do not nest is not used. A text whose translation lost a placeholder keeps no target
(bilingual: with a translator note saying so) or its source text (monolingual).

Uploaded XML is checked with defusedxml before translate-toolkit (lxml) parses it: entity declarations and
external references are refused, so no file of this machine can be pulled into a translation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeXml
from lxml import etree
from translate.lang.data import get_cldr_plural_tags
from translate.misc.multistring import multistring
from translate.storage import aresource, jsonl10n, properties, ts2, xliff, xliff2
from translate.storage import yaml as toolkit_yaml

from server.documents.android_arrays import string_array_items
from server.documents.catalog import LOST_NOTE, confidence_note, plural_forms
from server.documents.formats import BOM, DocumentError, Measured, decode_text
from server.documents.inline_codes import CODE, Inline, local_name
from server.documents.segments import fill_segments, seg_marks
from server.text.placeholders import DEFAULT, Syntax

QT = Syntax(qt=True)
XLIFF12_NS = "urn:oasis:names:tc:xliff:document:1.2"
PLURAL_KEY = re.compile(r"_(zero|one|two|few|many|other)$")
LANGUAGE_ROOT = re.compile(r"^[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")


# ------------------------------------------------------------------------------------------------ messages
@dataclass
class Message:
    """One translatable unit: the texts it sends (its source, each plural form, or each segment of an XLIFF
    ``<seg-source>``) and where they go."""

    unit: Any  # a translate-toolkit unit
    forms: list[str]
    inline: Inline | None = None
    segments: list[Inline] | None = None  # XLIFF 1.2 <seg-source>: one text per <mrk mtype="seg">

    @property
    def texts(self) -> list[str]:
        if self.segments is not None:
            return [segment.text for segment in self.segments]
        return [self.inline.text] if self.inline else self.forms


def _forms(unit: Any) -> list[str]:
    source = unit.source
    if isinstance(source, multistring) and len(source.strings) > 1:
        return [str(s) for s in source.strings]
    return [str(source)]


def _check_xml(data: bytes, what: str) -> None:
    try:
        SafeXml.fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise DocumentError(f"not translated: the {what} file declares entities or refers to external ones") from None
    except SafeXml.ParseError as err:
        raise DocumentError(f"not a well-formed {what} file: {err}") from None


@dataclass
class ToolkitDocument(Measured):
    """A localisation file of one of the formats above; ``what`` names it in messages."""

    store: Any
    messages: list[Message]
    what: str
    bilingual: bool
    syntax: Syntax = DEFAULT
    plural_count: int | None = None  # .ts: numerus forms are counted, not named

    @property
    def texts(self) -> list[str]:
        return [text for m in self.messages for text in m.texts]

    @property
    def syntaxes(self) -> list[Syntax]:
        return [self.syntax] * len(self.texts)

    def render(
        self,
        translations: Sequence[str],
        target: str = "",
        untranslated: Collection[int] = (),
        confidences: Sequence[float | None] = (),
        threshold: float = 0.0,
    ) -> bytes:
        """As ``CatalogDocument.render``: in bilingual files, a unit under ``threshold`` gets no target and a
        note saying why; monolingual files carry no notes (the caller sends the source text for such units)."""
        lost_texts = set(untranslated)
        if target:
            if isinstance(self.store, toolkit_yaml.RubyYAMLFile):
                _rename_root(self.store, target)
            self.store.settargetlanguage(target)
            if not self.bilingual:  # plural keys as the target's CLDR rules name them (i18next, Rails, Android)
                tags = cldr_plural_tags(target)
                self.store.get_plural_tags = lambda _target=None: tags
        it, index = iter(translations), 0
        for message in self.messages:
            done = [next(it) for _ in message.texts]
            lost = any(i in lost_texts for i in range(index, index + len(done)))
            sure = [c for c in confidences[index : index + len(done)] if c is not None]
            index += len(done)
            if self.bilingual and sure and min(sure) < threshold and not lost:
                message.unit.addnote(confidence_note(min(sure), threshold), origin="translator")
            elif self.bilingual:
                self._fill_bilingual(message, done, lost, target)
            elif not lost:
                message.unit.target = self._plural(message, done, target)
        return self._serialize()

    def _plural(self, message: Message, done: list[str], target: str) -> str | multistring:
        if len(done) == 1 and not (self.plural_count and message.unit.hasplural()):
            return done[0]
        if self.plural_count:  # Qt: the target's count of forms, the singular first
            forms = (plural_forms(target) or (2, ""))[0] if target else len(done)
            return multistring([done[0] if i == 0 and forms > 1 and len(done) > 1 else done[-1] for i in range(forms)])
        source = self.store.sourcelanguage or "en"
        source_tags = get_cldr_plural_tags(source.replace("_", "-").split("-")[0], len(done))
        by_tag = dict(zip(source_tags, done)) if len(source_tags) == len(done) else {}
        return multistring([by_tag.get(tag, done[-1]) for tag in self.store.get_plural_tags()])

    def _fill_bilingual(self, message: Message, done: list[str], lost: bool, target: str) -> None:
        unit = message.unit
        if lost:
            unit.addnote(LOST_NOTE, origin="translator")
            return
        if message.segments is not None:
            unit.target = " "  # creates the target element
            node = _target_node(unit)
            if node is None or not fill_segments(node, _seg_source(unit), message.segments, done):
                unit.target = ""
                unit.addnote(LOST_NOTE, origin="translator")
                return
            _mark_for_review(unit)
            return
        value = self._plural(message, done, target)
        if message.inline is not None:
            unit.target = CODE.sub("", str(value)) or " "  # creates the target element
            node = _target_node(unit)
            if node is None or not message.inline.fill(node, done[0]):
                unit.target = ""
                unit.addnote(LOST_NOTE, origin="translator")
                return
        else:
            unit.target = value
        _mark_for_review(unit)

    def _serialize(self) -> bytes:
        try:
            return bytes(self.store)
        except (ValueError, TypeError) as err:  # a value the format cannot hold
            raise DocumentError(f"the translated {self.what} file could not be written: {err}") from None


CLDR_ORDER = ("zero", "one", "two", "few", "many", "other")


def cldr_plural_tags(language: str) -> list[str]:
    """The CLDR plural categories of ``language`` in CLDR's order (what i18next and Rails name keys by);
    ``["one", "other"]`` for a language babel does not know."""
    from babel import Locale, UnknownLocaleError

    try:
        tags = Locale.parse(language.replace("-", "_")).plural_form.tags
    except (UnknownLocaleError, ValueError, TypeError):
        return ["one", "other"]
    return [t for t in CLDR_ORDER if t in tags or t == "other"]


def _rename_root(store: Any, language: str) -> None:
    """A Rails file's root key is its language: ``en:`` becomes ``fr:``."""
    original = store._original
    if hasattr(original, "insert") and len(original) == 1:
        (key,) = original
        if key != language:
            original.insert(0, language, original.pop(key))


def _target_node(unit: Any) -> etree._Element | None:
    for node in unit.xmlelement.iter():
        if local_name(node.tag) == "target":
            return node
    return None


def _mark_for_review(unit: Any) -> None:
    if isinstance(unit, xliff2.Xliff2Unit):
        unit.xmlelement.set("state", "initial")
        return
    if isinstance(unit, xliff.xliffunit):
        node = _target_node(unit)
        if node is not None:
            node.set("state", "needs-review-translation")
            node.set("state-qualifier", "mt-suggestion")
        unit.xmlelement.set("approved", "no")
        return
    unit.markfuzzy(True)


# ---------------------------------------------------------------------------------------------- the readers
def _parse(cls: Any, data: bytes, what: str) -> Any:
    try:
        return cls.parsestring(data)
    except DocumentError:
        raise
    except Exception as err:  # noqa: BLE001 - translate-toolkit raises many kinds (lxml, ruamel, json, its own)
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DocumentError(f"not a valid {what} file: {message[:300]}") from None


def _source_element(unit: Any) -> etree._Element | None:
    for node in unit.xmlelement.iter():
        if local_name(node.tag) == "source":
            return node
    return None


def _document(
    store: Any, what: str, bilingual: bool, syntax: Syntax = DEFAULT, inline: bool = False, plural_count: bool = False
) -> ToolkitDocument:
    messages = []
    for unit in store.units:
        if unit.isheader() or not unit.istranslatable() or unit.isobsolete():
            continue
        forms = _forms(unit)
        if not any(isinstance(f, str) and f.strip() for f in forms) or not isinstance(unit.source, str):
            continue
        if bilingual and unit.target and any(str(t).strip() for t in getattr(unit.target, "strings", [unit.target])):
            continue
        rich, segments = None, None
        if inline:
            source = _source_element(unit)
            if source is not None and len(source):
                rich = Inline.of(source)
            segmented = _seg_source(unit)
            marks = seg_marks(segmented) if segmented is not None else []
            if marks:
                segments = [Inline.of(mark) for mark in marks]
        messages.append(Message(unit, forms, rich, segments))
    return ToolkitDocument(store, messages, what, bilingual, syntax, 1 if plural_count else None)


def _seg_source(unit: Any) -> etree._Element | None:
    for node in unit.xmlelement:
        if local_name(node.tag) == "seg-source":
            return node
    return None


def read_xliff(data: bytes) -> ToolkitDocument:
    _check_xml(data, ".xlf")
    version = re.search(rb"<xliff\b[^>]*\bversion\s*=\s*[\"']([0-9.]+)", data[:4096])
    if version is None:
        raise DocumentError("not an XLIFF file: no <xliff version=...> element at its start")
    if version.group(1).startswith(b"2"):
        return _document(_parse(xliff2.Xliff2File, data, "XLIFF 2"), "XLIFF 2", True, inline=True)
    if not version.group(1).startswith(b"1."):
        raise DocumentError(f"XLIFF version {version.group(1).decode()} is not read; 1.2 and 2.x are")
    return _document(_parse(xliff.xlifffile, data, "XLIFF 1.2"), "XLIFF 1.2", True, inline=True)


def read_ts(data: bytes) -> ToolkitDocument:
    _check_xml(data, ".ts")
    if not re.search(rb"<TS\b", data[:4096]):
        raise DocumentError("not a Qt Linguist .ts file: no <TS> element at its start")
    return _document(_parse(ts2.tsfile, data, ".ts"), ".ts", True, QT, plural_count=True)


def read_android(data: bytes) -> ToolkitDocument:
    _check_xml(data, "Android strings.xml")
    if not re.search(rb"<resources\b", data[:4096]):
        raise DocumentError(
            "not an Android strings.xml: its root is not <resources> (other .xml files are not translated)"
        )
    document = _document(_parse(aresource.AndroidResourceFile, data, "Android strings.xml"), "strings.xml", False)
    document.messages += [Message(item, [item.source]) for item in string_array_items(document.store)]
    return document


def read_properties(data: bytes) -> ToolkitDocument:
    """UTF-8 (Java 9 and later) is written back as UTF-8; anything else is read as ISO-8859-1 (Java's own
    rule) and written in ISO-8859-1 with ``\\uXXXX`` escapes for what it cannot hold (the target's script)."""
    decode_text(data, ".properties", "latin-1")  # refuses binary data
    try:
        data.decode("utf-8")
        return _document(_parse(properties.javautf8file, data, ".properties"), ".properties", False)
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    escaped = re.sub(r"[^\x00-\x7f]", lambda m: f"\\u{ord(m.group()):04x}", text).encode("ascii")
    store = _parse(properties.javafile, escaped, ".properties")
    store.encoding = "iso-8859-1"
    return _document(store, ".properties", False)


def read_strings(data: bytes) -> ToolkitDocument:
    utf16 = data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:200]
    if not utf16:
        decode_text(data, ".strings")
    cls = properties.stringsfile if utf16 else properties.stringsutf8file
    return _document(_parse(cls, data, ".strings"), ".strings", False)


def read_json(data: bytes) -> ToolkitDocument:
    text = decode_text(data, ".json").removeprefix(BOM)
    try:
        content = json.loads(text)
    except json.JSONDecodeError as err:
        raise DocumentError(f"not a valid .json file: {err}") from None
    if not isinstance(content, dict):
        raise DocumentError("not a translatable .json file: its top level is not an object of keys and strings")
    cls = jsonl10n.I18NextV4File if _has_plural_keys(content) else jsonl10n.JsonFile
    return _document(_parse(cls, text.encode("utf-8"), ".json"), ".json", False)


def _has_plural_keys(content: Any) -> bool:
    if isinstance(content, dict):
        return any(PLURAL_KEY.search(k) and isinstance(v, str) for k, v in content.items()) or any(
            _has_plural_keys(v) for v in content.values()
        )
    return False


class _ScalarsKept:
    """translate-toolkit reads YAML numbers and booleans as text (and refuses floats); here they are not units,
    so they stay numbers and booleans in the translated file."""

    def _flatten(self, data: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(data, (bool, int, float)) and not isinstance(data, str):
            return iter(())
        return super()._flatten(data, *args, **kwargs)  # type: ignore[misc]


class _YamlFile(_ScalarsKept, toolkit_yaml.YAMLFile):
    pass


class _RailsYamlFile(_ScalarsKept, toolkit_yaml.RubyYAMLFile):
    pass


def read_yaml(data: bytes) -> ToolkitDocument:
    text = decode_text(data, ".yml").removeprefix(BOM)
    first = re.search(r"^([A-Za-z][\w-]*):\s*(?:#.*)?$", text, re.M)
    rails = (
        first is not None
        and LANGUAGE_ROOT.match(first.group(1)) is not None
        and len(re.findall(r"^[^\s#-][^:]*:", text, re.M)) == 1
    )
    cls = _RailsYamlFile if rails else _YamlFile
    return _document(_parse(cls, text.encode("utf-8"), ".yml"), ".yml", False)
