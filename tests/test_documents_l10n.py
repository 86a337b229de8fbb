"""Localisation file formats of ``/translate_file`` (XLIFF 1.2 and 2.0, Qt .ts, Java .properties, Apple .strings,
Android strings.xml, JSON, YAML, WebVTT, Markdown) with a stand-in translator that upper-cases every letter
outside placeholders. What was written is read back with independent parsers (lxml, json, PyYAML, translate-
toolkit's own readers, markdown-it's HTML) and plural categories are checked against CLDR through babel."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from babel import Locale
from babel.messages.plurals import get_plural
from lxml import etree
from markdown_it import MarkdownIt
from translate.storage import properties, ts2, xliff, xliff2

from server.documents import DocumentError, read_document
from server.documents.catalog import LOST_NOTE
from server.text.placeholders import mask, unmask

X12 = "{urn:oasis:names:tc:xliff:document:1.2}"
X20 = "{urn:oasis:names:tc:xliff:document:2.0}"


def upper(document, text, syntax):
    masked, table = mask(text, syntax)
    return unmask(masked.upper(), table)


def translate(suffix, data, target="fr", lost=()):
    document = read_document(suffix, data)
    out = [upper(document, t, s) for t, s in zip(document.texts, document.syntaxes)]
    return document, document.render(out, target, set(lost))


def cldr(language):
    return [
        t
        for t in ("zero", "one", "two", "few", "many", "other")
        if t in Locale.parse(language).plural_form.tags or t == "other"
    ]


XLIFF12 = b"""<?xml version="1.0" encoding="UTF-8"?>
<xliff version="1.2" xmlns="urn:oasis:names:tc:xliff:document:1.2">
 <file original="ui.properties" source-language="en" datatype="plaintext">
  <body>
   <trans-unit id="save"><source>Save the <g id="1">file</g> as %s<x id="2"/> now.</source>
     <note>Button label</note></trans-unit>
   <trans-unit id="done"><source>Done</source><target>Termin\xc3\xa9</target></trans-unit>
   <trans-unit id="brand" translate="no"><source>LibreOffice</source></trans-unit>
   <trans-unit id="code"><source>Press <ph id="3">&lt;b&gt;</ph>Enter</source></trans-unit>
  </body>
 </file>
</xliff>"""


def test_xliff_12_fills_empty_targets_for_review_with_inline_codes_rebuilt():
    document, out = translate(".xlf", XLIFF12)
    assert document.texts == ["Save the <g1>file</g1> as %s<x2/> now.", "Press <x1/>Enter"]
    root = etree.fromstring(out)
    units = {u.get("id"): u for u in root.iter(f"{X12}trans-unit")}
    target = units["save"].find(f"{X12}target")
    assert target.get("state") == "needs-review-translation" and target.get("state-qualifier") == "mt-suggestion"
    assert etree.tostring(target, encoding="unicode", with_tail=False).split(">", 1)[1] == (
        'SAVE THE <g id="1">FILE</g> AS %s<x id="2"/> NOW.</target>'
    )
    assert units["save"].find(f"{X12}note").text == "Button label"
    assert units["done"].find(f"{X12}target").text == "Terminé"  # a translator's target stays
    assert units["brand"].find(f"{X12}target") is None
    ph = units["code"].find(f"{X12}target").find(f"{X12}ph")
    assert ph.text == "<b>" and ph.tail == "ENTER"  # native code kept whole
    assert root.find(f"{X12}file").get("target-language") == "fr"
    store = xliff.xlifffile.parsestring(out)  # translate-toolkit reads it back
    fuzzy = [u.isfuzzy() for u in store.units]
    assert fuzzy[0] and fuzzy[3]


def test_xliff_target_whose_tags_do_not_nest_is_not_used():
    document = read_document(".xlf", XLIFF12)
    out = document.render(["</g1>SAVE<g1> %s<x2/>", "PRESS <x1/>ENTER"], "de", set())
    units = {u.get("id"): u for u in etree.fromstring(out).iter(f"{X12}trans-unit")}
    assert units["save"].find(f"{X12}target") is None or not units["save"].find(f"{X12}target").text
    assert LOST_NOTE in "".join(units["save"].itertext())
    lost = etree.fromstring(translate(".xlf", XLIFF12, lost=[1])[1])
    code = [u for u in lost.iter(f"{X12}trans-unit") if u.get("id") == "code"][0]
    assert code.find(f"{X12}target") is None or not "".join(code.find(f"{X12}target").itertext())
    assert LOST_NOTE in "".join(code.itertext())


XLIFF20 = b"""<?xml version="1.0" encoding="UTF-8"?>
<xliff xmlns="urn:oasis:names:tc:xliff:document:2.0" version="2.0" srcLang="en">
 <file id="f1">
  <unit id="u1"><notes><note>Shown in the toolbar</note></notes>
   <segment><source>Open <pc id="1">the file</pc> {name}.</source></segment>
   <segment><source>Then close it.</source></segment></unit>
  <unit id="u2"><segment><source>Close</source><target>Fermer</target></segment></unit>
 </file>
</xliff>"""


def test_xliff_20_segments_get_targets_and_the_target_language():
    _, out = translate(".xliff", XLIFF20)
    root = etree.fromstring(out)
    assert root.get("trgLang") == "fr"
    segments = list(root.iter(f"{X20}segment"))
    first = segments[0].find(f"{X20}target")
    assert (
        first.text == "OPEN "
        and first.find(f"{X20}pc").text == "THE FILE"
        and first.find(f"{X20}pc").tail == " {name}."
    )
    assert segments[1].find(f"{X20}target").text == "THEN CLOSE IT."
    assert segments[2].find(f"{X20}target").text == "Fermer"
    assert root.find(f".//{X20}note").text == "Shown in the toolbar"
    assert [str(u.target) for u in xliff2.Xliff2File.parsestring(out).units] == [
        "OPEN THE FILE {name}.",
        "THEN CLOSE IT.",
        "Fermer",
    ]


TS = b"""<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="en">
<context><name>MainWindow</name>
<message><location filename="main.cpp" line="10"/><source>Open %1 files</source><comment>menu</comment>
<translation type="unfinished"></translation></message>
<message numerus="yes"><source>%n file(s) copied</source><translation type="unfinished"><numerusform></numerusform>
</translation></message>
<message><source>Quit</source><translation>Beenden</translation></message>
</context></TS>"""


@pytest.mark.parametrize("target", ["ja", "fr", "ru"])
def test_qt_ts_numerus_forms_follow_the_target_language(target):
    _, out = translate(".ts", TS, target)
    root = etree.fromstring(out)
    assert root.get("language") == target
    messages = root.findall(".//message")
    assert messages[0].find("translation").text == "OPEN %1 FILES" and messages[0].find("comment").text == "menu"
    assert messages[0].find("location").get("line") == "10"
    forms = messages[1].find("translation").findall("numerusform")
    assert len(forms) == get_plural(Locale.parse(target)).num_plurals
    assert {f.text for f in forms} == {"%N FILE(S) COPIED".replace("%N", "%n")}
    assert messages[2].find("translation").text == "Beenden" and messages[2].find("translation").get("type") is None
    assert [u.isfuzzy() for u in ts2.tsfile.parsestring(out).units] == [True, True, False]


def test_java_properties_keep_keys_comments_and_escapes_in_either_encoding():
    utf8 = (
        "# Greeting shown at start\ngreeting=Hello {0}, welcome!\nmulti=First line \\\n  continued\nempty=\n"
        "caf\\u00e9=Caf\u00e9 open\n"
    )
    document, out = translate(".properties", utf8.encode("utf-8"))
    assert document.texts == ["Hello {0}, welcome!", "First line continued", "Café open"]
    store = properties.javautf8file.parsestring(out)
    assert {u.getid(): u.source for u in store.units} == {
        "greeting": "HELLO {0}, WELCOME!",
        "multi": "FIRST LINE CONTINUED",
        "empty": "",
        "caf\\u00e9": "CAFÉ OPEN",
    }
    assert out.startswith(b"# Greeting shown at start\n")
    document = read_document(".properties", "title=R\u00e9sum\u00e9 of the day\n".encode("latin-1"))
    latin = document.render(["R\u00c9SUM\u00c9 \u65e5"], "ja", set())
    assert latin == b"title=R\xc9SUM\xc9 \\u65E5\n"  # ISO-8859-1, and an escape for what it cannot hold


def test_apple_strings_keep_comments_and_objective_c_directives_in_utf16():
    source = '/* Title of the window */\n"title" = "Open %@ now";\n"count" = "%1$d items in %2$@";\n'
    for data, cls in (
        (source.encode("utf-16"), properties.stringsfile),
        (source.encode("utf-8"), properties.stringsutf8file),
    ):
        document, out = translate(".strings", data)
        assert document.texts == ["Open %@ now", "%1$d items in %2$@"]
        store = cls.parsestring(out)
        assert [(u.getid(), u.source) for u in store.units] == [
            ("title", "OPEN %@ NOW"),
            ("count", "%1$d ITEMS IN %2$@"),
        ]
        assert store.units[0].getnotes() == "Title of the window"
        assert out[:2] in (b"\xff\xfe", b"\xfe\xff") if cls is properties.stringsfile else out.startswith(b"/*")


ANDROID = b"""<?xml version="1.0" encoding="utf-8"?>
<resources>
    <!-- the application's name -->
    <string name="app_name" translatable="false">Notes</string>
    <string name="hello">Hello %1$s! It\\'s <b>bold</b>.</string>
    <plurals name="files">
        <item quantity="one">%d file</item>
        <item quantity="other">%d files</item>
    </plurals>
</resources>"""


@pytest.mark.parametrize("target", ["pl", "ja", "fr"])
def test_android_strings_keep_untranslatable_entries_markup_and_write_the_targets_plurals(target):
    _, out = translate(".xml", ANDROID, target)
    root = etree.fromstring(out)
    strings = {s.get("name"): s for s in root.iter("string")}
    assert strings["app_name"].text == "Notes"
    hello = strings["hello"]
    assert hello.text == "HELLO %1$s! IT\\'S " and hello.find("b").text == "BOLD" and hello.find("b").tail == "."
    items = root.find("plurals").findall("item")
    assert [i.get("quantity") for i in items] == cldr(target)
    assert {i.get("quantity"): i.text for i in items}.get("one", "%d FILE") == "%d FILE"
    assert all(i.text == "%d FILES" for i in items if i.get("quantity") != "one")
    assert b"<!-- the application's name -->" in out


ANDROID_ARRAYS = b"""<?xml version="1.0" encoding="utf-8"?>
<resources xmlns:xliff="urn:oasis:names:tc:xliff:document:1.2">
    <string name="title">Planets</string>
    <string-array name="planets">
        <item>Mercury\\'s orbit</item>
        <item>Open <b>%1$s</b> files</item>
        <item>@string/title</item>
        <item>Hello <xliff:g id="count">%d</xliff:g> people</item>
    </string-array>
    <string-array name="codes" translatable="false">
        <item>alpha</item>
    </string-array>
</resources>"""


def test_android_string_arrays_are_translated_item_by_item():
    document, out = translate(".xml", ANDROID_ARRAYS)
    assert document.texts == [
        "Planets",
        "Mercury's orbit",
        "Open <b>%1$s</b> files",
        'Hello <xliff:g id="count">%d</xliff:g> people',
    ]  # Android's escaping undone; the reference and the untranslatable array are not sent
    root = etree.fromstring(out)
    planets, codes = root.findall("string-array")
    items = planets.findall("item")
    assert len(items) == 4 and not planets.findall("string")  # still <item>s, in their order
    assert items[0].text == "MERCURY\\'S ORBIT"  # escaped again as Android needs
    assert items[1].text == "OPEN " and items[1].find("b").text == "%1$s" and items[1].find("b").tail == " FILES"
    assert items[2].text == "@string/title"
    g = items[3].find("{urn:oasis:names:tc:xliff:document:1.2}g")
    assert items[3].text == "HELLO " and g.get("id") == "count" and g.text == "%d" and g.tail == " PEOPLE"
    assert [i.text for i in codes.findall("item")] == ["alpha"]
    assert root.find("string").text == "PLANETS"


XLIFF12_SEGMENTED = b"""<?xml version="1.0" encoding="UTF-8"?>
<xliff version="1.2" xmlns="urn:oasis:names:tc:xliff:document:1.2">
 <file original="help.html" source-language="en" datatype="html">
  <body>
   <trans-unit id="p1">
    <source>Open the <g id="1">Format</g> menu. Choose %s.</source>
    <seg-source><mrk mtype="seg" mid="1">Open the <g id="1">Format</g> menu.</mrk> <mrk mtype="seg" mid="2">\
Choose %s.</mrk></seg-source>
   </trans-unit>
  </body>
 </file>
</xliff>"""


def test_xliff_12_seg_source_is_translated_segment_by_segment():
    document, out = translate(".xlf", XLIFF12_SEGMENTED)
    assert document.texts == ["Open the <g1>Format</g1> menu.", "Choose %s."]
    target = etree.fromstring(out).find(f".//{X12}trans-unit/{X12}target")
    marks = target.findall(f"{X12}mrk")
    assert [(m.get("mtype"), m.get("mid")) for m in marks] == [("seg", "1"), ("seg", "2")]
    assert marks[0].text == "OPEN THE " and marks[0].find(f"{X12}g").text == "FORMAT"
    assert marks[0].find(f"{X12}g").tail == " MENU." and marks[0].tail == " "
    assert marks[1].text == "CHOOSE %s." and target.get("state") == "needs-review-translation"
    unit = xliff.xlifffile.parsestring(out).units[0]
    assert unit.isfuzzy() and "".join(etree.fromstring(out).find(f".//{X12}target").itertext()) == (
        "OPEN THE FORMAT MENU. CHOOSE %s."
    )
    fresh = read_document(".xlf", XLIFF12_SEGMENTED)
    broken = fresh.render(["</g1>OPEN<g1>", "CHOOSE %s."], "fr", set())  # a segment's codes do not nest
    unit = etree.fromstring(broken).find(f".//{X12}trans-unit")
    target = unit.find(f"{X12}target")
    assert target is None or not "".join(target.itertext()).strip()
    assert LOST_NOTE in "".join(unit.itertext())


def test_json_flat_and_nested_keep_keys_order_and_values_that_are_not_text():
    data = {
        "title": "Hello {name}",
        "menu": {"open": "Open", "recent": ["First", "Second"]},
        "max": 5,
        "enabled": True,
        "blank": "",
    }
    _, out = translate(".json", json.dumps(data).encode())
    assert json.loads(out) == {
        "title": "HELLO {name}",
        "menu": {"open": "OPEN", "recent": ["FIRST", "SECOND"]},
        "max": 5,
        "enabled": True,
        "blank": "",
    }


@pytest.mark.parametrize("target", ["ja", "pl", "de"])
def test_i18next_plural_keys_are_the_targets_categories(target):
    data = {"item_one": "{{count}} item", "item_other": "{{count}} items", "nested": {"see": "See $t(item)"}}
    _, out = translate(".json", json.dumps(data).encode(), target)
    written = json.loads(out)
    tags = cldr(target)
    assert sorted(k for k in written if k.startswith("item_")) == sorted(f"item_{t}" for t in tags)
    for tag in tags:
        assert written[f"item_{tag}"] == ("{{count}} ITEM" if tag == "one" else "{{count}} ITEMS")
    assert written["nested"] == {"see": "SEE $t(item)"}


def test_rails_yaml_root_becomes_the_target_with_comments_and_plurals():
    source = b"""en:
  # the greeting on the start page
  hello: "Hello %{name}"
  messages:
    count:
      one: one message
      other: "%{count} messages"
    limit: 10
    ratio: 1.5
    enabled: true
"""
    _, out = translate(".yml", source, "pl")
    written = yaml.safe_load(out)
    assert list(written) == ["pl"]
    assert written["pl"]["hello"] == "HELLO %{name}" and written["pl"]["messages"]["limit"] == 10
    assert written["pl"]["messages"]["ratio"] == 1.5 and written["pl"]["messages"]["enabled"] is True
    assert list(written["pl"]["messages"]["count"]) == cldr("pl")
    assert written["pl"]["messages"]["count"]["few"] == "%{count} MESSAGES"
    assert b"# the greeting on the start page" in out
    plain = yaml.safe_load(translate(".yaml", b"title: Welcome\nitems:\n  - Open\n  - Close\n")[1])
    assert plain == {"title": "WELCOME", "items": ["OPEN", "CLOSE"]}


def test_webvtt_keeps_header_notes_styles_identifiers_and_cue_settings():
    source = (
        b"WEBVTT - Introduction\n\nNOTE written by hand\nover two lines\n\nSTYLE\n::cue { color: red }\n\n"
        b"intro\n00:01.000 --> 00:04.000 align:start line:0\n<v Roger>Hello there,\nhow are you?\n\n"
        b"00:00:05.000 --> 00:00:07.500\n- Fine.\n- Good.\n"
    )
    document, out = translate(".vtt", source)
    assert document.texts == ["Hello there, how are you?", "- Fine.", "- Good."]
    assert out == (
        b"WEBVTT - Introduction\n\nNOTE written by hand\nover two lines\n\nSTYLE\n::cue { color: red }\n\n"
        b"intro\n00:01.000 --> 00:04.000 align:start line:0\n<v Roger>HELLO THERE,\nHOW ARE YOU?\n\n"
        b"00:00:05.000 --> 00:00:07.500\n- FINE.\n- GOOD.\n"
    )


MARKDOWN = """---
title: Guide
---
# Working with `files` #

Open the *File* menu, choose **Save As** and read [the guide](https://example.org/guide "Guide").
A second line with ![an icon](icon.png) and <kbd>Ctrl</kbd>.

```python
print("code is not translated")
```

    indented code stays too

> - a quoted item
> - another one

1. first step
2. second step

| Key | Action |
|-----|--------|
| F1 | Open the help |
"""


def _shape(html):
    """The element structure of rendered HTML, text and code aside."""
    return re.findall(r"</?[a-z0-9]+", html)


def test_markdown_keeps_code_markup_and_structure():
    document, out = translate(".md", MARKDOWN.encode())
    text = out.decode()
    md = MarkdownIt("commonmark").enable("table").enable("strikethrough")
    assert _shape(md.render(text)) == _shape(md.render(MARKDOWN))
    assert text.startswith("---\ntitle: Guide\n---\n# WORKING WITH `files` #\n")
    assert 'print("code is not translated")' in text and "    indented code stays too" in text
    assert '[THE GUIDE](https://example.org/guide "Guide")' in text and "![an icon](icon.png)" in text
    assert "*FILE*" in text and "**SAVE AS**" in text and "<kbd>CTRL</kbd>" in text
    assert "| F1 | OPEN THE HELP |" in text and "> - A QUOTED ITEM" in text and "2. SECOND STEP" in text


def test_markdown_escapes_what_the_translation_would_turn_into_markup():
    document = read_document(".md", b"Stars and *emphasis* here.\n")
    out = document.render(["2 * 3 = <g1>six</g1> [sic] _x_"], "fr").decode()
    assert MarkdownIt("commonmark").render(out) == "<p>2 * 3 = <em>six</em> [sic] _x_</p>\n"
    assert document.render(["1. <g1>un</g1>"], "fr").decode() == "1\\. *un*\n"


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<resources><string name="a">&lol2;</string></resources>"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<xliff version="1.2"><file><body><trans-unit id="a"><source>&secret;</source></trans-unit></body></file></xliff>"""


@pytest.mark.parametrize(
    ("suffix", "data", "reason"),
    [
        (".xlf", b"<xliff version='1.2'><file><body>", "well-formed"),
        (".xlf", EXTERNAL, "entities"),
        (".xml", BOMB, "entities"),
        (".xml", b"<?xml version='1.0'?><manifest package='x'/>", "Android"),
        (".xlf", b"<?xml version='1.0'?><xliff version='3.0'/>", "version"),
        (".xlf", b"<?xml version='1.0'?><html/>", "XLIFF"),
        (".ts", b"<?xml version='1.0'?><resources/>", "Qt"),
        (".json", b"[1, 2, 3]", "object"),
        (".json", b'{"a": ', "valid .json"),
        (".json", b"\x00\x01binary", "binary"),
        (".yml", b"a: [unclosed", "valid .yml"),
        (".vtt", b"1\n00:00:01,000 --> 00:00:02,000\nHi\n", "WEBVTT"),
        (".vtt", b"WEBVTT\n\nno timing here\n", "timing"),
    ],
)
def test_broken_localisation_files_are_refused_with_a_reason(suffix, data, reason):
    with pytest.raises(DocumentError, match=reason):
        read_document(suffix, data)


def test_a_yaml_alias_bomb_is_refused():
    levels = ["a: &a ['x','x','x','x','x','x','x','x','x','x']"]
    for i in range(1, 9):
        levels.append(f"{chr(97 + i)}: &{chr(97 + i)} [" + ",".join([f"*{chr(96 + i)}"] * 10) + "]")
    with pytest.raises(DocumentError):
        read_document(".yml", "\n".join(levels).encode())


def test_a_bilingual_unit_under_the_confidence_threshold_gets_a_note_not_a_target():
    document = read_document(".xlf", XLIFF12)
    out = document.render(
        ["SAVE THE <g1>FILE</g1> AS %s<x2/> NOW.", "PRESS <x1/>ENTER"],
        "fr",
        set(),
        confidences=[0.2, 0.9],
        threshold=0.5,
    )
    units = {u.get("id"): u for u in etree.fromstring(out).iter(f"{X12}trans-unit")}
    assert units["save"].find(f"{X12}target") is None
    assert "confidence 0.20 is under the threshold 0.50" in "".join(units["save"].itertext())
    assert "".join(units["code"].find(f"{X12}target").itertext()) == "PRESS <b>ENTER"
