"""XLIFF's inline codes (``<g>``, ``<x/>``, ``<ph>``, ``<bpt>``, ``<pc>``, ``<mrk>``, ...) as numbered tags the
model can read and the placeholder rules protect (``<g1>...</g1>`` around text to translate, ``<x2/>`` for a code
kept whole), and the target element rebuilt from the source's elements."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

PAIRED = {"g", "pc", "mrk"}  # inline elements whose content is text to translate; others are kept whole
CODE = re.compile(r"<(/?)([gx])(\d+)(/?)>")  # the numbered tags of XLIFF codes, Markdown and Office runs


def local_name(tag: Any) -> str:
    """An element's tag without its namespace; "" for a comment or processing instruction."""
    return etree.QName(tag).localname if isinstance(tag, str) else ""


@dataclass
class Inline:
    """An XLIFF ``<source>``'s content as text with numbered tags, and the elements those tags stand for."""

    text: str
    codes: dict[int, etree._Element] = field(default_factory=dict)

    @classmethod
    def of(cls, element: etree._Element) -> Inline:
        codes: dict[int, etree._Element] = {}

        def walk(node: etree._Element) -> str:
            out = node.text or ""
            for child in node:
                if not isinstance(child.tag, str):  # a comment or processing instruction
                    out += child.tail or ""
                    continue
                number = len(codes) + 1
                codes[number] = child
                if local_name(child.tag) in PAIRED and child.get("translate") != "no" and len(child) + bool(child.text):
                    out += f"<g{number}>{walk(child)}</g{number}>"
                else:
                    out += f"<x{number}/>"
                out += child.tail or ""
            return out

        return cls(walk(element), codes)

    def fill(self, target: etree._Element, translation: str) -> bool:
        """Write ``translation`` into ``target`` with the codes rebuilt; False (``target`` untouched) when its tags
        are not the source's or do not nest."""
        root = etree.Element("root")
        stack, used, position = [root], set(), 0

        def put(text: str) -> None:
            node = stack[-1]
            if len(node):
                node[-1].tail = (node[-1].tail or "") + text
            else:
                node.text = (node.text or "") + text

        for m in CODE.finditer(translation):
            put(translation[position : m.start()])
            position = m.end()
            closing, kind, number, empty = m.group(1), m.group(2), int(m.group(3)), m.group(4)
            source = self.codes.get(number)
            if source is None:
                return False
            if closing:
                if kind != "g" or len(stack) == 1 or stack[-1].get("__code") != str(number):
                    return False
                stack.pop().attrib.pop("__code")
                continue
            if number in used or (kind == "x") != bool(empty):
                return False
            used.add(number)
            if kind == "x":
                atom = copy.deepcopy(source)
                atom.tail = None
                stack[-1].append(atom)
            else:
                shell = etree.SubElement(stack[-1], source.tag, dict(source.attrib))
                shell.set("__code", str(number))
                stack.append(shell)
        put(translation[position:])
        if len(stack) != 1 or used != set(self.codes):
            return False
        for child in list(target):
            target.remove(child)
        target.text = root.text
        for child in list(root):
            target.append(child)
        return True
