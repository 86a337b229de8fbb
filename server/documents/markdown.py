"""Markdown (CommonMark with tables and strikethrough, parsed by markdown-it-py): each paragraph, heading, list
item and table cell is translated as a whole; code blocks, fenced code, HTML blocks, link reference definitions,
a YAML front matter and the blocks' own markers (``#``, ``-``, ``>``, ``|``, indentation) stay as they are.

Inside a text, emphasis, strikethrough and links reach the model as numbered tags around their words
(``<g1>two</g1>``) and inline code, images, autolinks, inline HTML and hard breaks as empty ones (``<x2/>``),
which the placeholder rules protect; the translation is written back with the source's markup (links as inline
links: ``[text][ref]`` becomes ``[text](url)``). Characters Markdown would read as markup in the translation's
own text (``*``, ``_`` at a word's edge, backticks, brackets, ``<``) are escaped. A paragraph of several lines
comes back on one line (Markdown renders it the same).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from markdown_it.token import Token

from server.documents.formats import DocumentError, Lines, Measured
from server.documents.inline_codes import CODE

PAIRED = {"em": "em", "strong": "strong", "s": "s", "link": "link"}
FRONT_MATTER = re.compile(r"\A---[ \t]*\n.*?\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)
LETTER = re.compile(r"[^\W\d_]")


def _title(title: str) -> str:
    return f' "{title}"' if title else ""


def _atom(token: Token) -> str:
    """The Markdown source of an inline token kept whole."""
    if token.type == "code_inline":
        pad = " " if token.content.startswith("`") or token.content.endswith("`") else ""
        return f"{token.markup}{pad}{token.content}{pad}{token.markup}"
    if token.type == "image":
        alt = "".join(c.content for c in token.children or [])
        return f"![{alt}]({token.attrs.get('src', '')}{_title(str(token.attrs.get('title', '')))})"
    if token.type == "hardbreak":
        return "\\\n"
    return token.content  # html_inline


def _escape(text: str) -> str:
    text = re.sub(r"([\\`*\[\]<])", r"\\\1", text)
    return re.sub(r"(?<!\w)_|_(?!\w)", r"\\_", text)


@dataclass
class Inline:
    """One inline text: what the model reads, and the Markdown each numbered tag stands for."""

    line: int  # where it starts in the source (0-based)
    lines: int  # how many source lines it covers
    source: str  # its Markdown as written on its first line
    text: str
    opening: dict[int, str] = field(default_factory=dict)
    closing: dict[int, str] = field(default_factory=dict)
    atoms: dict[int, str] = field(default_factory=dict)

    @classmethod
    def of(cls, token: Token) -> Inline:
        out: list[str] = []
        stack: list[int] = []
        number = 0
        opening: dict[int, str] = {}
        closing: dict[int, str] = {}
        atoms: dict[int, str] = {}
        children = token.children or []
        i = 0
        while i < len(children):
            child = children[i]
            kind = child.type.rsplit("_", 1)[0]
            if child.type == "link_open" and child.markup == "autolink":
                number += 1
                atoms[number] = f"<{children[i + 1].content}>"
                out.append(f"<x{number}/>")
                i += 3
                continue
            if child.type.endswith("_open") and kind in PAIRED:
                number += 1
                stack.append(number)
                opening[number] = "[" if kind == "link" else child.markup
                closing[number] = (
                    f"]({child.attrs.get('href', '')}{_title(str(child.attrs.get('title', '')))})"
                    if kind == "link"
                    else child.markup
                )
                out.append(f"<g{number}>")
            elif child.type.endswith("_close") and kind in PAIRED and stack:
                out.append(f"</g{stack.pop()}>")
            elif child.type in ("text", "text_special"):
                out.append(child.content)
            elif child.type == "softbreak":
                out.append(" ")
            else:
                number += 1
                atoms[number] = _atom(child)
                out.append(f"<x{number}/>")
            i += 1
        start, end = token.map or (0, 1)
        return cls(
            start, token.content.count("\n") + 1, token.content.split("\n")[0], "".join(out), opening, closing, atoms
        )

    def markdown(self, translation: str, continuation: str) -> str | None:
        """The translation as Markdown; None when its tags are not this text's or do not nest."""
        out: list[str] = []
        stack: list[int] = []
        used: set[int] = set()
        position = 0
        for m in CODE.finditer(translation):
            out.append(_escape(translation[position : m.start()]))
            position = m.end()
            closing, kind, number, empty = m.group(1), m.group(2), int(m.group(3)), m.group(4)
            if closing:
                if kind != "g" or not stack or stack[-1] != number:
                    return None
                out.append(self.closing[stack.pop()])
                continue
            if (
                number in used
                or (kind == "x") != bool(empty)
                or number not in (self.atoms if kind == "x" else self.opening)
            ):
                return None
            used.add(number)
            if kind == "x":
                out.append(self.atoms[number].replace("\n", "\n" + continuation))
            else:
                stack.append(number)
                out.append(self.opening[number])
        out.append(_escape(translation[position:]))
        if stack or used != set(self.atoms) | set(self.opening):
            return None
        text = "".join(out).strip()
        numbered = re.match(r"\d+(?=[.)](?:\s|$))", text)
        if numbered:  # "1. " would start a list
            return f"{text[: numbered.end()]}\\{text[numbered.end() :]}"
        return "\\" + text if re.match(r"[#>+=-]", text) else text  # a heading, a quote, a list, a rule


@dataclass
class MarkdownDocument(Measured):
    lines: Lines
    source_lines: list[str]
    inlines: list[Inline]

    @classmethod
    def read(cls, data: bytes) -> MarkdownDocument:
        lines, text = Lines.read(data, ".md")
        front = FRONT_MATTER.match(text)
        skip = front.group().count("\n") if front else 0
        body = "\n" * skip + text[front.end() :] if front else text  # line numbers stay the file's
        parser = MarkdownIt("commonmark").enable("table").enable("strikethrough")
        try:
            tokens = parser.parse(body)
        except (ValueError, RecursionError) as err:
            raise DocumentError(f"not a Markdown file this service can read: {err}") from None
        inlines = [Inline.of(t) for t in tokens if t.type == "inline" and LETTER.search(t.content)]
        return cls(lines, text.split("\n"), inlines)

    @property
    def texts(self) -> list[str]:
        return [i.text for i in self.inlines]

    def render(self, translations: Sequence[str], target: str = "", untranslated: Collection[int] = ()) -> bytes:
        out: list[str | None] = list(self.source_lines)
        cursor: dict[int, int] = {}
        for inline, translation in zip(self.inlines, translations, strict=True):
            line = self.source_lines[inline.line]
            at = line.find(inline.source, cursor.get(inline.line, 0)) if inline.source else -1
            if at < 0:
                continue  # not found as written (cannot happen with markdown-it's content): left as it is
            prefix = line[:at]
            written = inline.markdown(translation, re.sub(r"[^>\s]", " ", prefix))
            if written is None:
                continue
            current = out[inline.line] or ""
            shift = len(current) - len(line)  # earlier cells of this row changed its length
            if inline.lines == 1:
                out[inline.line] = current[: at + shift] + written + current[at + shift + len(inline.source) :]
                cursor[inline.line] = at + len(inline.source)
            else:
                out[inline.line] = prefix + written
                for j in range(inline.line + 1, inline.line + inline.lines):
                    out[j] = None
        return self.lines.write("\n".join(line for line in out if line is not None))
