"""XLIFF 1.2 segmentation: a unit whose ``<seg-source>`` splits its source into ``<mrk mtype="seg" mid="...">``
segments (as segmenting CAT tools such as Okapi and OmegaT write them) is translated segment by segment, and its
target holds the same segments, each ``<mrk>`` with its segment's translation and the text between segments
kept. A ``<seg-source>`` whose segments are not all its direct children is not used (the whole ``<source>`` is
then translated as one text)."""

from __future__ import annotations

import copy
from collections.abc import Sequence

from lxml import etree

from server.documents.inline_codes import Inline, local_name


def _is_segment(node: etree._Element) -> bool:
    return local_name(node.tag) == "mrk" and node.get("mtype") == "seg"


def seg_marks(seg_source: etree._Element) -> list[etree._Element]:
    """The segments of a ``<seg-source>``, in order; [] when it has none or some are nested deeper."""
    direct = [node for node in seg_source if _is_segment(node)]
    every = [node for node in seg_source.iter() if node is not seg_source and _is_segment(node)]
    return direct if len(direct) == len(every) else []


def fill_segments(
    target: etree._Element, seg_source: etree._Element, segments: Sequence[Inline], translations: Sequence[str]
) -> bool:
    """Rebuild ``target`` as ``seg_source`` with each segment's translation in a copy of its ``<mrk>`` (inline
    codes rebuilt); False, ``target`` untouched, when a translation's codes are not its segment's."""
    marks = seg_marks(seg_source)
    if len(marks) != len(segments) or len(segments) != len(translations):
        return False
    built: list[etree._Element] = []
    fills = iter(zip(segments, translations))
    for node in seg_source:
        if not isinstance(node.tag, str):  # a comment or processing instruction
            continue
        if _is_segment(node):
            segment, translation = next(fills)
            mark = etree.Element(node.tag, dict(node.attrib))
            if not segment.fill(mark, translation):
                return False
            mark.tail = node.tail
            built.append(mark)
        else:  # a code between segments: kept as it is
            built.append(copy.deepcopy(node))
    for child in list(target):
        target.remove(child)
    target.text = seg_source.text
    for node in built:
        target.append(node)
    return True
