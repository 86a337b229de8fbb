"""Where inline elements go in a translation.

A unit's source text has spans (``[start, end)``: a ``<b>``, an ``<a>``, a ``<code>`` kept as it is...). In its
translation, a span goes where the translation of its own text is found -- on word boundaries, inside its
parent span's place, after its previous sibling, the occurrence nearest its relative position -- else at its
relative position, at word boundaries. Places always nest as the spans do, so the markup stays well formed.
"""

from __future__ import annotations

from collections.abc import Sequence


def _word_char(c: str) -> bool:
    """A character that continues a word written with spaces (letters of Han, kana... stand alone)."""
    return c.isalnum() and ord(c) < 0x2E80


def _on_boundaries(text: str, start: int, end: int) -> bool:
    if start > 0 and _word_char(text[start - 1]) and _word_char(text[start]):
        return False
    return not (end < len(text) and _word_char(text[end - 1]) and _word_char(text[end]))


def word_boundary(text: str, position: int, low: int = 0, high: int | None = None) -> int:
    """``position`` moved to the nearest space (or edge) within ``[low, high]``; unchanged in text without spaces."""
    high = len(text) if high is None else high
    position = max(low, min(position, high))
    if " " not in text[low:high] or position in (low, high):
        return position
    left = text.rfind(" ", low, position)
    right = text.find(" ", position, high)
    left = left + 1 if left >= 0 else low
    right = right if right >= 0 else high
    return left if position - left <= right - position else right


def parents(spans: Sequence[tuple[int, int]]) -> list[int]:
    """For each span, the index of the innermost earlier span containing it, or -1."""
    out: list[int] = []
    for i, (start, end) in enumerate(spans):
        parent = -1
        for j in range(i - 1, -1, -1):
            if spans[j][0] <= start and end <= spans[j][1]:  # the same range counts: <b><i>x</i></b>
                parent = j
                break
        out.append(parent)
    return out


def place_spans(
    source: str,
    spans: Sequence[tuple[int, int]],
    translation: str,
    span_translations: Sequence[str],
    exact: Sequence[bool] = (),
    parent_of: Sequence[int] | None = None,
) -> list[tuple[int, int]]:
    """``[a, b)`` in ``translation`` for each span ``[start, end)`` of ``source``. ``span_translations[i]`` is
    what to look for (empty: place by position); ``exact[i]``: match it case-sensitively (kept text);
    ``parent_of[i]``: the span it is nested in (default: the innermost earlier span containing it)."""
    ancestry = list(parent_of) if parent_of is not None else parents(spans)
    placed: list[tuple[int, int]] = []
    sibling_end: dict[int, int] = {}  # parent index -> where its last placed child ends
    lowered = translation.lower()
    for i, (start, end) in enumerate(spans):
        parent = ancestry[i]
        outer_low, high = placed[parent] if parent >= 0 else (0, len(translation))
        source_low, source_high = spans[parent] if parent >= 0 else (0, len(source))
        scale = (high - outer_low) / max(source_high - source_low, 1)
        guess = outer_low + round((start - source_low) * scale)  # the same relative place in the parent's
        low = max(outer_low, sibling_end.get(parent, outer_low))  # after the previous sibling
        guess = max(guess, low)
        wanted = span_translations[i].strip() if i < len(span_translations) else ""
        found = _nearest(
            translation if i < len(exact) and exact[i] else lowered,
            wanted if i < len(exact) and exact[i] else wanted.lower(),
            low,
            high,
            guess,
        )
        if found is not None:
            a, b = found
        else:
            a = word_boundary(translation, guess, low, high)
            b = max(a, word_boundary(translation, outer_low + round((end - source_low) * scale), a, high))
            while a < b and translation[a].isspace():
                a += 1
            while b > a and translation[b - 1].isspace():
                b -= 1
        placed.append((a, b))
        sibling_end[parent] = b
    return placed


def _nearest(text: str, wanted: str, low: int, high: int, guess: int) -> tuple[int, int] | None:
    """The occurrence of ``wanted`` in ``text[low:high]`` on word boundaries nearest ``guess``, if any."""
    if not wanted:
        return None
    best = None
    position = text.find(wanted, low, high)
    while position >= 0:
        closer = best is None or abs(position - guess) < abs(best - guess)
        if closer and _on_boundaries(text, position, position + len(wanted)):
            best = position
        position = text.find(wanted, position + 1, high)
    return None if best is None else (best, best + len(wanted))
