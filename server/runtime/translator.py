"""Texts in, texts out, through the engine core: every sentence of every text becomes one request, all of a
call's sentences go to the core together (so one paragraph's sentences share batches with each other and with
other requests), and the translations are put back into each text's segmented.

Placeholders (``server.text.placeholders``) are protected on the way: a text's accelerator marker is taken out
before it is cut into sentences and put back after; each sentence's placeholders go to the core as decoding
constraints; a sentence none of whose translations keeps them all (the same ones, in the same order where order
matters) is left in the source language and counted in ``Translated.kept_source``, never shipped broken.

Alternatives of a text: its k-th alternative takes the k-th alternative of every sentence (the best one where
a sentence has fewer), so a long text has alternatives as a one-sentence text does.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial

from starlette.concurrency import run_in_threadpool

from server.errors import Overloaded, PayloadTooLarge
from server.runtime.decoding import SentenceDecoder
from server.runtime.front_end import FrontEnd
from server.text.glossary import NO_GLOSSARY, Glossary
from server.text.icu import Template, expand
from server.text.markup import parse as parse_html
from server.text.placeholders import Syntax, mask, restore_accelerator, split_accelerator, unmask
from server.text.segment import Piece, SegmentedText, segment
from server.text.units import Hypothesis, Score, Sentence, Text, Translated, combined


def versions_of(
    parts: Sequence[Sequence[tuple[str, Score]]], build: Callable[[list[str]], str], n_best: int
) -> tuple[list[str], list[Score]]:
    """Up to ``n_best`` distinct wholes, best first, from parts' (version, score) choices: the k-th whole is
    built of every part's k-th version (its best where it has fewer) and scored by all of them together."""
    versions: list[str] = []
    scores: list[Score] = []
    for k in range(n_best):
        chosen = [p[k] if k < len(p) else p[0] for p in parts]
        version = build([text for text, _ in chosen])
        if version not in versions:
            versions.append(version)
            scores.append(combined([score for _, score in chosen]))
    return versions, scores


def acceptable(sentence: Sentence, syntax: Syntax, translations: list[Hypothesis]) -> list[Hypothesis]:
    """The translations that keep ``sentence``'s placeholders (best first; those with all its glossary terms
    first); none keeps them: the sentence itself, scored ``-inf`` (confidence 0)."""
    kept = [h for h in translations if syntax.intact(sentence.text, h.text)] if sentence.protect else translations
    if not kept:
        return [Hypothesis(sentence.text, -math.inf, 1)]
    if sentence.terms:
        kept.sort(key=lambda h: bool(Glossary.missing(sentence.terms, h.text)))  # stable: best first within each
    return kept


class TextTranslator:
    def __init__(self, front: FrontEnd, decoder: SentenceDecoder, max_rows: int, timeout_s: float) -> None:
        self.front = front
        self.decoder = decoder
        self.max_rows = max_rows
        self.timeout_s = timeout_s

    async def segmented_texts(
        self, texts: Sequence[str], sources: Sequence[str], syntaxes: Sequence[Syntax]
    ) -> list[SegmentedText]:
        """Each text cut into sentences that fit the model's window, never inside a placeholder (off the event
        loop unless short: it tokenizes)."""

        # Texts no longer than one sentence's tokens are segmented on the event loop: each is one sentence or a
        # few short ones, where the hop to a worker thread and back costs more than the work. Longer texts may be
        # cut and packed at length: a worker thread segments them.
        def cut() -> list[SegmentedText]:
            out = []
            for text, source, syntax in zip(texts, sources, syntaxes):
                masked, table = mask(text, syntax)

                def fits(t: str, table: list[str] = table) -> bool:
                    return self.front.fits(unmask(t, table))

                segmented = segment(masked, source, fits)
                if table:
                    segmented = SegmentedText(
                        tuple(Piece(unmask(p.text, table), p.translate) for p in segmented.pieces), segmented.language
                    )
                out.append(segmented)
            return out

        if sum(len(t) for t in texts) <= self.front.segment_tokens:
            return cut()
        return await run_in_threadpool(cut)

    async def translate(
        self, texts: Sequence[Text], timeout_s: float | None = None, *, document: bool = False
    ) -> list[Translated]:
        """For each text, up to ``n_best`` distinct translations of it whole, best first. A text asked for twice
        in one call is translated once.

        An ICU plural or select message is translated branch by branch, each a whole sentence
        (``server.text.icu``), and rebuilt. A call's sentences go to the core together and may not outnumber the
        queue (413). A ``document`` may
        hold more: its sentences go in chunks of half the queue, one after the other, so that other requests keep
        their share; ``timeout_s`` bounds the whole call either way."""
        unique = list(dict.fromkeys(texts))
        if len(unique) < len(texts):
            done = dict(zip(unique, await self.translate(unique, timeout_s, document=document)))
            return [done[t] for t in texts]
        templates = [expand(t.text) for t in texts]
        if any(templates):
            return await self._with_icu(texts, templates, timeout_s, document)
        return await self.translate_flat(texts, timeout_s, document)

    async def translate_flat(
        self, texts: Sequence[Text], timeout_s: float | None = None, document: bool = False
    ) -> list[Translated]:
        """``translate`` of texts read as plain text (an ICU message's structure is not looked for)."""
        accelerators = [split_accelerator(t.text) for t in texts]
        segmented_texts = await self.segmented_texts(
            [a[0] for a in accelerators], [t.source for t in texts], [t.syntax for t in texts]
        )
        sentences = [
            Sentence(
                piece,
                t.source,
                t.target,
                t.n_best,
                tuple(t.syntax.placeholders(piece)),
                tuple(term.target for term in t.glossary.matches(piece, t.source)),
            )
            for t, segmented in zip(texts, segmented_texts)
            for piece in segmented.rows
            if t.source != t.target
        ]
        if len(sentences) > self.max_rows and not document:
            raise PayloadTooLarge(
                f"the texts hold {len(sentences)} sentences together; the limit is "
                f"{self.max_rows} (send fewer or shorter texts per request)"
            )
        results = iter(await self._rows(sentences, timeout_s or self.timeout_s) if sentences else [])
        ordered = iter(sentences)
        out = []
        for text, segmented, (_, marker, letter) in zip(texts, segmented_texts, accelerators):
            if text.source == text.target or not segmented.rows:
                out.append(Translated([text.text]))
                continue
            mine, kept_source, missed = [], 0, 0
            for _ in segmented.rows:
                sentence = next(ordered)
                kept = acceptable(sentence, text.syntax, next(results))
                kept_source += kept[0].log_prob == -math.inf
                missed += len(Glossary.missing(sentence.terms, kept[0].text))
                mine.append(kept)
            versions, scores = versions_of(
                [[(h.text, h.score) for h in hs] for hs in mine],
                partial(segmented.assemble, target=text.target),
                text.n_best,
            )
            out.append(
                Translated(
                    [restore_accelerator(v, marker, letter) for v in versions], kept_source, missed, tuple(scores)
                )
            )
        return out

    async def _with_icu(
        self, texts: Sequence[Text], templates: Sequence[Template | None], timeout_s: float | None, document: bool
    ) -> list[Translated]:
        """Texts some of which are ICU plural or select messages: those are translated branch by branch (each a
        whole sentence, ``#`` and quoted literals protected) and rebuilt; the others as they are."""
        flat: list[Text] = []
        for text, template in zip(texts, templates):
            if template is None:
                flat.append(text)
            else:
                flat += [
                    replace(text, text=leaf.text, syntax=text.syntax.for_icu(leaf.numbered)) for leaf in template.leaves
                ]
        # The leaves hold no plural or select (and a message ``expand`` refused is plain text): one level only.
        results = iter(await self.translate_flat(flat, timeout_s, document))
        out = []
        for text, template in zip(texts, templates):
            if template is None:
                out.append(next(results))
                continue
            leaves = [next(results) for _ in template.leaves]
            versions, scores = versions_of([r.scored for r in leaves], template.rebuild, text.n_best)
            out.append(
                Translated(
                    versions, sum(r.kept_source for r in leaves), sum(r.terms_missed for r in leaves), tuple(scores)
                )
            )
        return out

    async def _rows(self, rows: list[Sentence], timeout: float) -> list[list[Hypothesis]]:
        deadline = time.monotonic() + timeout
        chunk = max(1, self.max_rows // 2) if len(rows) > self.max_rows else len(rows)
        out: list[list[Hypothesis]] = []
        for start in range(0, len(rows), chunk):
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise asyncio.TimeoutError
                out += await asyncio.wait_for(self.decoder.translate(rows[start : start + chunk]), remaining)
            except asyncio.TimeoutError:
                raise Overloaded(
                    f"translation took longer than {timeout:g}s; retry later", {"Retry-After": "5"}
                ) from None
        return out


async def translate_html(
    translator: TextTranslator,
    documents: Sequence[str],
    sources: Sequence[str],
    target: str,
    n_best: int,
    timeout_s: float | None = None,
    *,
    document: bool = False,
    glossaries: Sequence[Glossary] | None = None,
) -> list[Translated]:
    """For each HTML document, up to ``n_best`` distinct translations (tags, attributes and untranslated
    elements as in the source). Each unit is one text; its inline elements' texts are texts of their own that
    place the tags (one translation per distinct text). ``glossaries``: one per document (default: none)."""
    parsed = await run_in_threadpool(lambda: [parse_html(d) for d in documents])
    texts: list[Text] = []
    for segmented, source, glossary in zip(parsed, sources, glossaries or [NO_GLOSSARY] * len(parsed)):
        for unit in segmented.units:
            texts.append(Text(unit.model_text(), source, target, n_best, glossary=glossary))
            texts.extend(Text(t, source, target, 1, glossary=glossary) for t in unit.span_texts())
    results = iter(await translator.translate(texts, timeout_s, document=document))
    out = []
    for segmented in parsed:
        units: list[list[tuple[str, Score]]] = []  # per unit, its (version, score) pairs
        spans: list[list[str]] = []
        kept_source = missed = 0
        for unit in segmented.units:
            translated = next(results)
            units.append(translated.scored)
            kept_source, missed = kept_source + translated.kept_source, missed + translated.terms_missed
            span_results = [next(results) for _ in unit.span_texts()]
            spans.append([r.versions[0] for r in span_results])
            kept_source += sum(r.kept_source for r in span_results)
            missed += sum(r.terms_missed for r in span_results)
        documents_out, scores = versions_of(units, partial(segmented.assemble, span_translations=spans), n_best)
        out.append(Translated(documents_out, kept_source, missed, tuple(scores)))
    return out
