"""ICU MessageFormat (``server.text.icu``): plural and select messages expanded into whole sentences and put
back, checked by hand and by an independent parser (``pyicumessageformat``): what is written parses, with the
source's choices (argument, kind, offset, keys) and every branch keeping its arguments."""

from __future__ import annotations

import pytest
from pyicumessageformat import Parser

from server.text.icu import expand

MESSAGES = [
    "You have {count, plural, one {# file} other {# files}} in {folder}.",
    "{gender, select, female {She} male {He} other {They}} sent {n, plural, =0 {no message} one {a message} "
    "other {# messages}}.",
    "{n, plural, offset:1 =0 {Nobody} one {You} other {You and # others}} liked it.",
    "{place, selectordinal, one {#st} two {#nd} few {#rd} other {#th}} place",
    "It''s {n, plural, one {'{'quoted'}' #} other {#}}",
]


def choices(nodes):
    """(name, type, offset, keys) of every choice of a parsed message, nested ones included, in order."""
    out = []
    for node in nodes:
        if isinstance(node, dict) and "options" in node:
            out.append((node["name"], node["type"], node.get("offset", 0), tuple(node["options"])))
            for branch in node["options"].values():
                out += choices(branch)
    return out


def arguments(nodes):
    """The simple arguments and '#'s of a parsed message, with their counts."""
    found = []
    for node in nodes:
        if isinstance(node, dict) and "options" in node:
            for branch in node["options"].values():
                found += arguments(branch)
        elif isinstance(node, dict):
            found.append("#" if node.get("hash") else node["name"])
    return sorted(found)


@pytest.mark.parametrize("message", MESSAGES)
def test_a_rendered_message_parses_with_the_sources_choices(message):
    template = expand(message)
    assert template is not None
    parser = Parser()
    rendered = template.render([f"[{leaf.text}]" for leaf in template.leaves])
    source, out = parser.parse(message), parser.parse(rendered)
    assert set(choices(out)) >= set(choices(source))  # every choice, with its argument, kind, offset and keys
    top = [n for n in out if not isinstance(n, str)]
    assert len(top) == 1  # the text around the choice moved into its branches
    for leaf in template.leaves:
        assert "plural" not in leaf.text and "select" not in leaf.text
        assert f"[{leaf.text}]" in rendered
    if "{folder}" in message:
        assert arguments(out).count("folder") == len(template.leaves)  # in every branch


def test_expansion_by_hand():
    template = expand("You have {count, plural, one {# file} other {# files}} in {folder}.")
    assert [leaf.text for leaf in template.leaves] == ["You have # file in {folder}.", "You have # files in {folder}."]
    assert all(leaf.numbered for leaf in template.leaves)
    assert template.render(["Vous avez # fichier dans {folder}.", "Vous avez # fichiers dans {folder}."]) == (
        "{count, plural, one {Vous avez # fichier dans {folder}.} other {Vous avez # fichiers dans {folder}.}}"
    )
    nested = expand("{g, select, female {She} other {They}} sent {n, plural, one {one} other {#}}.")
    assert [leaf.text for leaf in nested.leaves] == ["She sent one.", "She sent #.", "They sent one.", "They sent #."]
    assert not expand("{g, select, a {x} other {y}}").leaves[0].numbered  # '#' means the number in plurals only


@pytest.mark.parametrize(
    "text",
    ["no choice {name} here", "{n, plural, one {x}", "{n, plural, }", "{n, plural, one x}", "}{n, plural, one {x}}"],
)
def test_what_is_not_expanded(text):
    assert expand(text) is None
