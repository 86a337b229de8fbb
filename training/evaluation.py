"""Translate every direction of a split with mixed-pair batches and score it by direction and group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lslo.adapters.handle import LSLoHandle
from lslo.engine.generation import GenerationSettings, engine_for, translate
from training.flores import ParallelSplit
from training.metrics import SpBleu, chrf_pp, group_averages, group_name
from training.pairs import batch_indices, directions
from training.progress import progress as progress_bar


@dataclass
class EvaluationResult:
    split: str
    spm_model: str
    beam: int
    segments: int  # per direction, at most
    spbleu: dict[tuple[str, str], float] = field(default_factory=dict)
    chrf: dict[tuple[str, str], float] = field(default_factory=dict)
    groups: dict[str, float] = field(default_factory=dict)
    chrf_groups: dict[str, float] = field(default_factory=dict)
    samples: dict[tuple[str, str], list[tuple[str, str, str]]] = field(default_factory=dict)
    # Per direction, every segment: its id in the split, the hypothesis, and its ten BLEU statistics.
    segment_rows: dict[tuple[str, str], list[tuple[int, str, list[int]]]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "spm_model": self.spm_model,
            "beam": self.beam,
            "segments_per_direction": self.segments,
            "groups_spbleu": self.groups,
            "groups_chrf++": self.chrf_groups,
            "directions": {
                f"{s}-{t}": {"spbleu": self.spbleu[(s, t)], "chrf++": self.chrf[(s, t)]} for s, t in self.spbleu
            },
            "samples": {f"{s}-{t}": [list(x) for x in v] for (s, t), v in self.samples.items()},
            "segments": {
                f"{s}-{t}": {
                    "ids": [r[0] for r in rows],
                    "hypotheses": [r[1] for r in rows],
                    "bleu_stats": [r[2] for r in rows],
                }
                for (s, t), rows in self.segment_rows.items()
            },
        }


@torch.no_grad()
def translate_directions(
    model: nn.Module,
    tokenizer: Any,
    split: ParallelSplit,
    pairs: Sequence[tuple[str, str]],
    lslo: LSLoHandle | None = None,
    max_sents: int | None = None,
    beam: int = 5,
    max_tokens: int = 6000,
    max_new_tokens: int = 128,
    progress: bool = True,
    fallback: bool = False,
    max_length_ratio: float | None = 3.0,
) -> dict[tuple[str, str], list[tuple[int, str]]]:
    """(src, tgt) -> [(segment, hypothesis)], translating all directions in length-sorted mixed batches.
    ``fallback``: a language without an adapter in ``lslo`` passes through the base alone on its side;
    ``max_length_ratio``: the limit on each translation's length the server applies (``GenerationSettings``)."""
    jobs: list[tuple[int, str, str]] = []
    for src, tgt in pairs:
        segs = [i for i in range(split.size) if split.lines[src][i] is not None and split.lines[tgt][i] is not None]
        jobs += [(i, src, tgt) for i in segs[:max_sents]]
    costs = [len(split.lines[s][i] or "") // 3 + 4 for i, s, _ in jobs]  # rough token estimate for batching
    batches = batch_indices(costs, max_tokens // max(beam, 1), seed=0, epoch=0, shuffle=False)
    settings = GenerationSettings(
        num_beams=beam, max_new_tokens=max_new_tokens, fallback_to_base=fallback, max_length_ratio=max_length_ratio
    )
    out: dict[tuple[str, str], list[tuple[int, str]]] = {p: [] for p in pairs}
    was_training = model.training
    model.eval()
    bar = progress_bar(len(batches), "translating", unit="batch", enabled=progress)
    # One engine for all batches (its copy of the adapters is taken once; none change while evaluating).
    # translate() itself turns the adapters off inside lslo.base_only() and uses generate() for Weight Learning.
    engine = None if lslo is not None and lslo.config.weight_learning else engine_for(model, lslo, settings)
    for batch in batches:
        rows = [jobs[i] for i in batch]
        texts = [split.lines[s][seg] for seg, s, _ in rows]
        hyps = translate(
            model, tokenizer, texts, [r[1] for r in rows], [r[2] for r in rows], settings, lslo, engine=engine
        )
        for (seg, src, tgt), best in zip(rows, hyps):
            out[(src, tgt)].append((seg, best[0]))
        bar.update(1)
    bar.close()
    model.train(was_training)
    for key in out:
        out[key].sort()
    return out


def evaluate_split(
    model: nn.Module,
    tokenizer: Any,
    split: ParallelSplit,
    languages: Sequence[str],
    tiers: Mapping[str, str | None],
    spm_model: str | Path,
    lslo: LSLoHandle | None = None,
    groups: Sequence[str] | None = None,
    max_sents: int | None = None,
    beam: int = 5,
    max_tokens: int = 6000,
    progress: bool = True,
    samples: int = 3,
    fallback: bool = False,
) -> EvaluationResult:
    pairs = directions(languages)
    if groups:
        wanted = set(groups)
        pairs = [(s, t) for s, t in pairs if group_name(tiers[s] or "?", tiers[t] or "?") in wanted]
    hyps = translate_directions(
        model, tokenizer, split, pairs, lslo, max_sents, beam, max_tokens, progress=progress, fallback=fallback
    )
    scorer = SpBleu(spm_model)
    most = max((len(rows) for rows in hyps.values()), default=0)  # a direction's segments, not the split's
    result = EvaluationResult(split.name, scorer.model_path, beam, most)
    for (src, tgt), rows in hyps.items():
        if not rows:
            continue
        refs = [split.lines[tgt][seg] or "" for seg, _ in rows]
        outs = [h for _, h in rows]
        result.spbleu[(src, tgt)], stats = scorer.score_and_statistics(outs, refs)
        result.chrf[(src, tgt)] = chrf_pp(outs, refs)
        result.segment_rows[(src, tgt)] = [(seg, h, st) for (seg, h), st in zip(rows, stats)]
        result.samples[(src, tgt)] = [
            (split.lines[src][seg] or "", h, r) for (seg, h), r in list(zip(rows, refs))[:samples]
        ]
    result.groups = group_averages(result.spbleu, tiers)
    result.chrf_groups = group_averages(result.chrf, tiers)
    return result
