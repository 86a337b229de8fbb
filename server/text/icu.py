"""ICU MessageFormat's plural and select: the structure kept, the texts inside translated as whole sentences.

``{count, plural, one {# file} other {# files}} in {folder}`` is not a sentence a model can translate: its
branches are. ``expand`` turns a message into a template and its *leaves*, one full sentence per branch (the
text around a plural or select moves into each branch: ``{count, plural, one {# file in {folder}} other
{# files in {folder}}}``, the form ICU's own guidelines recommend), nested ones too; ``Template.render`` puts
the translated leaves back. Keys, offsets and argument names stay as they were; ``#`` in a plural branch is a
placeholder (the number) that its translation must keep. Apostrophes quote as in ICU's default mode: ``'{'``,
``'}'`` and ``'#'`` are literal, ``''`` is one apostrophe; any other apostrophe is text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

COMPLEX = re.compile(r"\{\s*[A-Za-z_][\w.]*\s*,\s*(?:plural|select|selectordinal)\s*,")
MAX_LEAVES = 64  # branches multiply when nested: a message beyond this is translated as plain text


class IcuError(ValueError):
    """Not a well-formed ICU message (unbalanced braces, a branch without its text)."""


@dataclass(frozen=True)
class Choice:
    argument: str
    kind: str  # plural, select, selectordinal
    offset: str  # "offset:1 " or ""
    branches: tuple[tuple[str, tuple[Node, ...]], ...]  # (key, message)


Node = str | Choice


def has_complex(text: str) -> bool:
    return COMPLEX.search(text) is not None


def _parse(text: str, i: int, depth: int) -> tuple[list[Node], int]:
    """Nodes from ``text[i:]`` up to the ``}`` closing this level (or the end at depth 0)."""
    nodes: list[Node] = []
    literal: list[str] = []
    while i < len(text):
        c = text[i]
        if c == "'" and i + 1 < len(text) and text[i + 1] == "'":
            literal.append("''")
            i += 2
        elif c == "'" and i + 1 < len(text) and text[i + 1] in "{}#":
            end = text.find("'", i + 1)
            end = len(text) - 1 if end < 0 else end
            literal.append(text[i : end + 1])
            i = end + 1
        elif c == "}":
            if depth == 0:
                raise IcuError("a '}' closes nothing")
            break
        elif c == "{":
            m = COMPLEX.match(text, i)
            if m is None:  # a simple argument ({name}, {0, number}): text, kept by the brace placeholders
                end = text.find("}", i)
                if end < 0:
                    raise IcuError("a '{' is never closed")
                literal.append(text[i : end + 1])
                i = end + 1
                continue
            if literal:
                nodes.append("".join(literal))
                literal = []
            choice, i = _choice(text, i, depth)
            nodes.append(choice)
        else:
            literal.append(c)
            i += 1
    if literal:
        nodes.append("".join(literal))
    return nodes, i


def _choice(text: str, i: int, depth: int) -> tuple[Choice, int]:
    head = re.compile(r"\{\s*([A-Za-z_][\w.]*)\s*,\s*(plural|select|selectordinal)\s*,\s*(offset:\s*\d+\s*)?")
    m = head.match(text, i)
    assert m is not None
    argument, kind, offset = m.group(1), m.group(2), (m.group(3) or "")
    i = m.end()
    branches = []
    key_pattern = re.compile(r"\s*(=\d+|[A-Za-z_][\w-]*)\s*\{")
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i < len(text) and text[i] == "}":
            break
        k = key_pattern.match(text, i)
        if k is None:
            raise IcuError(f"a {kind} of {argument!r} has a branch without a key and its {{text}}")
        message, i = _parse(text, k.end(), depth + 1)
        if i >= len(text):
            raise IcuError(f"a branch of {argument!r} is never closed")
        branches.append((k.group(1), tuple(message)))
        i += 1  # its '}'
    if not branches:
        raise IcuError(f"a {kind} of {argument!r} has no branch")
    return Choice(argument, kind, offset.strip() + " " if offset else "", tuple(branches)), i + 1


@dataclass(frozen=True)
class Leaf:
    text: str
    numbered: bool  # inside a plural branch: '#' is the number


@dataclass(frozen=True)
class Template:
    """A message as a tree whose leaves are whole sentences (``leaves``, in order); ``render`` rebuilds it."""

    tree: tuple[Node | Leaf, ...]
    leaves: tuple[Leaf, ...]

    def render(self, translations: Sequence[str]) -> str:
        if len(translations) != len(self.leaves):
            raise ValueError(f"{len(translations)} translations for {len(self.leaves)} texts")
        it = iter(translations)
        return "".join(_render(node, it) for node in self.tree)

    def rebuild(self, translations: Sequence[str]) -> str:
        """``render``, unless a translation's stray brace would break the message: then the source branches."""
        message = self.render(translations)
        again = expand(message)
        if again is None or len(again.leaves) != len(self.leaves):
            return self.render([leaf.text for leaf in self.leaves])
        return message


def _render(node: Node | Leaf, it: Iterator[str]) -> str:
    if isinstance(node, Leaf):
        return next(it)
    if isinstance(node, str):
        return node
    parts = " ".join(f"{key} {{{''.join(_render(n, it) for n in message)}}}" for key, message in node.branches)
    return f"{{{node.argument}, {node.kind}, {node.offset}{parts}}}"


def _distribute(nodes: Sequence[Node], numbered: bool) -> tuple[Node | Leaf, ...]:
    """The first choice of ``nodes`` with the text around it moved into each branch (recursively); a message
    without a choice is one leaf."""
    index = next((i for i, n in enumerate(nodes) if isinstance(n, Choice)), None)
    if index is None:
        text = "".join(nodes)  # type: ignore[arg-type]
        return (Leaf(text, numbered),) if text.strip() else (text,)
    choice = nodes[index]
    assert isinstance(choice, Choice)
    before, after = list(nodes[:index]), list(nodes[index + 1 :])
    branches = tuple(
        (key, _distribute(before + list(message) + after, numbered or choice.kind != "select"))
        for key, message in choice.branches
    )
    return (Choice(choice.argument, choice.kind, choice.offset, branches),)  # type: ignore[arg-type]


def _leaves(tree: Sequence[Node | Leaf]) -> list[Leaf]:
    out: list[Leaf] = []
    for node in tree:
        if isinstance(node, Leaf):
            out.append(node)
        elif isinstance(node, Choice):
            for _, message in node.branches:
                out += _leaves(message)
    return out


def expand(text: str) -> Template | None:
    """The template of a message with a plural or select, or None for one without (or malformed, or with more
    than ``MAX_LEAVES`` branches once distributed: then it is translated as text)."""
    if not has_complex(text):
        return None
    try:
        nodes, _ = _parse(text, 0, 0)
    except IcuError:
        return None
    tree = _distribute(nodes, False)
    leaves = _leaves(tree)
    if len(leaves) > MAX_LEAVES:
        return None
    return Template(tree, tuple(leaves))
