"""What the front end translates: a ``Text`` (a whole text of a request, an HTML unit, an entry of a file), cut
into ``Sentence``s (each one request to the engine core), and what comes back for a text (``Translated``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from server.text.glossary import NO_GLOSSARY, Glossary
from server.text.placeholders import DEFAULT, Syntax


@dataclass(frozen=True)
class Text:
    """A text to translate whole; ``n_best`` translations are wanted (1 + alternatives); ``syntax``: the
    placeholder syntaxes it uses (``server.text.placeholders``); ``glossary``: the terms it must translate so."""

    text: str
    source: str
    target: str
    n_best: int = 1
    syntax: Syntax = DEFAULT
    glossary: Glossary = NO_GLOSSARY


@dataclass(frozen=True)
class Sentence:
    """One sentence of a text, decoded as one request: ``protect`` holds the placeholders its translation must
    contain and ``terms`` the glossary's target terms (one per occurrence), which the core enforces as decoding
    constraints."""

    text: str
    source: str
    target: str
    n_best: int = 1
    protect: tuple[str, ...] = ()
    terms: tuple[str, ...] = ()


@dataclass(frozen=True)
class Hypothesis:
    """One translation of a sentence: its text and, from beam search, the log-probability the model gives it
    (summed over its ``tokens``, EOS included); greedy decoding gives no score (None)."""

    text: str
    log_prob: float | None = None
    tokens: int = 0

    @property
    def score(self) -> Score:
        return None if self.log_prob is None else (self.log_prob, self.tokens)


Score = tuple[float, int] | None  # (log-probability, tokens) of a whole version; None: not scored


def combined(scores: list[Score]) -> Score:
    """The score of a text made of parts so scored (None if any part is unscored)."""
    known = [s for s in scores if s is not None]
    if len(known) < len(scores):
        return None
    return sum(s[0] for s in known), sum(s[1] for s in known)


def confidence(score: Score) -> float | None:
    """A version's confidence in [0, 1]: the geometric mean of its tokens' probabilities, ``exp(log p / n)``
    (the length-normalised score beam search ranks by); 0 for a text with a sentence left untranslated."""
    if score is None or score[1] <= 0:
        return None
    return round(math.exp(score[0] / score[1]), 4)


@dataclass(frozen=True)
class Translated:
    """A text's translations (up to ``n_best`` distinct versions, best first), how many of its sentences were
    left in the source language because no translation kept their placeholders, and how many glossary terms the
    best version lacks (the engine emits them, so only where a term cannot be written within the length limit)."""

    versions: list[str]
    kept_source: int = 0
    terms_missed: int = 0  # required glossary terms absent from the best version
    scores: tuple[Score, ...] = ()  # per version (empty: not scored)

    @property
    def scored(self) -> list[tuple[str, Score]]:
        """(version, score) pairs."""
        return list(zip(self.versions, self.scores or (None,) * len(self.versions)))

    @property
    def confidences(self) -> list[float | None]:
        return [confidence(s) for s in self.scores] or [None] * len(self.versions)
