"""Texts in, texts out, through the engine core: every sentence of every text becomes one row, all rows of a
request go to the core together (so one paragraph's sentences share batches with each other and with other
requests), and the translations are put back into each text's layout.

Alternatives of a text: its k-th alternative takes the k-th alternative of every sentence (the best one where
a sentence has fewer), so a long text has alternatives as a one-sentence text does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from starlette.concurrency import run_in_threadpool

from server.decoding import RowDecoder
from server.errors import Overloaded, PayloadTooLarge
from server.front_end import FrontEnd, Row
from server.text.markup import parse as parse_html
from server.text.segment import Layout, segment


def candidates(rows: Sequence[Sequence[str]], layout: Layout, target: str, n_best: int) -> list[str]:
    """Up to ``n_best`` distinct versions of the text, best first, from each row's n-best translations."""
    versions: list[str] = []
    for k in range(n_best):
        version = layout.assemble([r[k] if k < len(r) else r[0] for r in rows], target)
        if version not in versions:
            versions.append(version)
    return versions


class TextTranslator:
    def __init__(self, front: FrontEnd, decoder: RowDecoder, max_rows: int, timeout_s: float) -> None:
        self.front = front
        self.decoder = decoder
        self.max_rows = max_rows
        self.timeout_s = timeout_s

    async def layouts(self, jobs: Sequence[Row]) -> list[Layout]:
        """Each text cut into rows that fit the model's window (off the event loop unless short: it tokenizes)."""
        # Texts no longer than one row's tokens are segmented on the event loop: each is one row or a few short
        # ones (a few milliseconds at most: 133 CJK characters take 5 ms with the demo's tokenizer), where the hop
        # to a worker thread and back costs more than the work. Longer texts may be cut and packed at length: a
        # worker thread segments them.
        def cut() -> list[Layout]:
            return [segment(j.text, j.source, self.front.fits) for j in jobs]

        if sum(len(j.text) for j in jobs) <= self.front.segment_tokens:
            return cut()
        return await run_in_threadpool(cut)

    async def translate(self, jobs: Sequence[Row], timeout_s: float | None = None, *,
                        document: bool = False) -> list[list[str]]:
        """For each job, up to ``n_best`` distinct translations of its whole text, best first. A text asked for
        twice in one call is translated once.

        A request's rows go to the core together and may not outnumber the queue (413). A ``document`` may
        hold more: its rows go in chunks of half the queue, one after the other, so that other requests keep
        their share; ``timeout_s`` bounds the whole call either way."""
        unique = list(dict.fromkeys(jobs))
        if len(unique) < len(jobs):
            done = dict(zip(unique, await self.translate(unique, timeout_s, document=document)))
            return [done[j] for j in jobs]
        layouts = await self.layouts(jobs)
        rows = [Row(text, j.source, j.target, j.n_best) for j, layout in zip(jobs, layouts) for text in layout.rows
                if j.source != j.target]
        if len(rows) > self.max_rows and not document:
            raise PayloadTooLarge(f"the texts hold {len(rows)} sentences together; the limit is {self.max_rows} "
                                  "(send fewer or shorter texts per request)")
        results = iter(await self._rows(rows, timeout_s or self.timeout_s) if rows else [])
        out = []
        for job, layout in zip(jobs, layouts):
            if job.source == job.target or not layout.rows:
                out.append([job.text])
                continue
            mine = [next(results) for _ in layout.rows]
            out.append(candidates(mine, layout, job.target, job.n_best))
        return out

    async def _rows(self, rows: list[Row], timeout: float) -> list[list[str]]:
        deadline = time.monotonic() + timeout
        chunk = max(1, self.max_rows // 2) if len(rows) > self.max_rows else len(rows)
        out: list[list[str]] = []
        for start in range(0, len(rows), chunk):
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise asyncio.TimeoutError
                out += await asyncio.wait_for(self.decoder.translate(rows[start : start + chunk]), remaining)
            except asyncio.TimeoutError:
                raise Overloaded(f"translation took longer than {timeout:g}s; retry later",
                                 {"Retry-After": "5"}) from None
        return out


async def translate_html(translator: TextTranslator, documents: Sequence[str], sources: Sequence[str], target: str,
                         n_best: int, timeout_s: float | None = None, *, document: bool = False) -> list[list[str]]:
    """For each HTML document, up to ``n_best`` distinct translations (tags, attributes and untranslated
    elements as in the source). Each unit is one job; its inline elements' texts are jobs of their own that
    place the tags (one translation per distinct text)."""
    parsed = await run_in_threadpool(lambda: [parse_html(d) for d in documents])
    jobs: list[Row] = []
    for layout, source in zip(parsed, sources):
        for unit in layout.units:
            jobs.append(Row(unit.model_text(), source, target, n_best))
            jobs.extend(Row(t, source, target, 1) for t in unit.span_texts())
    results = iter(await translator.translate(jobs, timeout_s, document=document))
    out = []
    for layout in parsed:
        versions: list[list[str]] = []  # per unit, its versions
        spans: list[list[str]] = []
        for unit in layout.units:
            versions.append(next(results))
            spans.append([next(results)[0] for _ in unit.span_texts()])
        documents_out: list[str] = []
        for k in range(n_best):
            doc = layout.assemble([v[k] if k < len(v) else v[0] for v in versions], spans)
            if doc not in documents_out:
                documents_out.append(doc)
        out.append(documents_out)
    return out
