"""Glossaries: source terms and the target terms a translation must use, and do-not-translate terms (a target
equal to its source).

A term matches where its source occurs case-insensitively as whole words (in scripts written without spaces,
Chinese and Japanese, anywhere); where two matches overlap the longer term wins. Inflection is not modelled: a
source term matches its written form only (give ``file`` and ``files`` as two entries where both occur), and the
target term is emitted exactly as given, or with its first letter capitalised (a sentence may start with it).
The front end turns every match into a decoding constraint (``lslo.engine.constraints``), so the engine emits the
target term; ``Glossary.missing`` checks a translation afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from server.text.segment import unspaced

MAX_TERMS = 1000  # entries in one glossary
MAX_TERM_CHARS = 100


class GlossaryError(ValueError):
    """A glossary that cannot be used (the message says why, for a 400)."""


@dataclass(frozen=True)
class Term:
    source: str
    target: str


@dataclass(frozen=True)
class Glossary:
    terms: tuple[Term, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.terms)

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str]], dnt: Iterable[str] = ()) -> Glossary:
        """A glossary of (source, target) pairs and do-not-translate terms; GlossaryError for empty or overlong
        terms, a source term given two different targets, or too many entries."""
        terms: dict[str, Term] = {}
        for source, target in [*pairs, *((t, t) for t in dnt)]:
            source, target = " ".join(str(source).split()), " ".join(str(target).split())
            if not source or not target:
                raise GlossaryError("a glossary term is empty")
            if len(source) > MAX_TERM_CHARS or len(target) > MAX_TERM_CHARS:
                raise GlossaryError(f"a glossary term is longer than {MAX_TERM_CHARS} characters: {source[:40]!r}…")
            key = source.casefold()
            if key in terms and terms[key].target != target:
                raise GlossaryError(f"the glossary gives {source!r} two targets: {terms[key].target!r} and {target!r}")
            terms[key] = Term(source, target)
        if len(terms) > MAX_TERMS:
            raise GlossaryError(f"the glossary has {len(terms)} terms; the limit is {MAX_TERMS}")
        return cls(tuple(terms.values()))

    def merged(self, other: Glossary) -> Glossary:
        """This glossary with ``other``'s terms added (``other`` wins where both give a source term)."""
        if not other:
            return self
        mine = {t.source.casefold(): t for t in self.terms}
        mine.update((t.source.casefold(), t) for t in other.terms)
        return Glossary(tuple(mine.values()))

    @cached_property
    def _patterns(self) -> dict[bool, list[tuple[re.Pattern[str], Term]]]:
        """Each term's pattern, compiled once per glossary: with word boundaries, and without (unspaced scripts)."""
        out: dict[bool, list[tuple[re.Pattern[str], Term]]] = {True: [], False: []}
        for term in self.terms:
            pattern = re.escape(term.source).replace(r"\ ", r"\s+")
            out[False].append((re.compile(pattern, re.IGNORECASE), term))
            out[True].append((re.compile(rf"(?<!\w){pattern}(?!\w)", re.IGNORECASE), term))
        return out

    def matches(self, text: str, language: str) -> list[Term]:
        """The terms whose source occurs in ``text`` (one per occurrence, in order; overlaps: longer wins)."""
        if not self.terms:
            return []
        found: list[tuple[int, int, Term]] = []
        for pattern, term in self._patterns[not unspaced(language)]:
            found += [(m.start(), m.end(), term) for m in pattern.finditer(text)]
        found.sort(key=lambda f: (f[0], -(f[1] - f[0])))
        kept, end = [], -1
        for start, stop, term in found:
            if start >= end:
                kept.append(term)
                end = stop
        return kept

    @staticmethod
    def missing(targets: Iterable[str], translation: str) -> list[str]:
        """The required target terms ``translation`` lacks (case-insensitively; one per occurrence)."""
        folded = translation.casefold()
        out: list[str] = []
        counts: dict[str, int] = {}
        for target in targets:
            key = target.casefold()
            counts[key] = counts.get(key, 0) + 1
            if folded.count(key) < counts[key]:
                out.append(target)
        return out


NO_GLOSSARY = Glossary()


def parse_inline(glossary: list[dict[str, str]] | dict[str, str] | None, dnt: list[str] | None) -> Glossary:
    """A request's ``glossary`` (a list of ``{"source", "target"}`` or an object of source -> target) and
    ``dnt`` (terms kept as they are)."""
    if isinstance(glossary, dict):
        pairs = list(glossary.items())
    else:
        pairs = []
        for i, entry in enumerate(glossary or []):
            if not isinstance(entry, dict) or set(entry) != {"source", "target"}:
                raise GlossaryError(f"glossary[{i}] must be an object with exactly 'source' and 'target'")
            pairs.append((entry["source"], entry["target"]))
    return Glossary.of(pairs, dnt or ())
