"""Many-to-many training examples, token-budget batches and collation.

Every ordered pair of distinct languages (the paper's §5) over every segment present in both gives one example;
``DirectionSampler`` draws a few of them per segment and epoch instead (pretraining on a large many-way corpus).
Each row is tokenized with its own source language token, so a batch mixes directions freely.
Batch order is a pure function of (seed, epoch): a resumed or multi-process run sees the same batches.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from lslo.languages.tokenization import framed, piece_ids
from training.flores import ParallelSplit


@dataclass(frozen=True)
class Example:
    segment: int
    src: str
    tgt: str
    source_ids: tuple[int, ...]  # [__src__] pieces [eos]
    labels: tuple[int, ...]  # [__tgt__] pieces [eos]

    @property
    def cost(self) -> int:
        return max(len(self.source_ids), len(self.labels))


def directions(languages: Sequence[str]) -> list[tuple[str, str]]:
    return [(s, t) for s in languages for t in languages if s != t]


def tokenize_split(tokenizer: Any, split: ParallelSplit, max_len: int) -> dict[str, list[tuple[int, ...] | None]]:
    """Per language, each segment as ``[__lang__] pieces [eos]`` (None where missing), truncated to max_len."""
    out: dict[str, list[tuple[int, ...] | None]] = {}
    for code in split.languages:
        rows = split.lines[code]
        present = [i for i, r in enumerate(rows) if r is not None]
        ids = piece_ids(tokenizer, [rows[i] for i in present], max_len - 2)
        column: list[tuple[int, ...] | None] = [None] * len(rows)
        for i, pieces in zip(present, ids):
            column[i] = tuple(framed(tokenizer, code, pieces))
        out[code] = column
    return out


def build_examples(
    tokenizer: Any,
    split: ParallelSplit,
    languages: Sequence[str],
    max_len: int = 256,
    chosen: Sequence[tuple[str, str]] | None = None,
) -> list[Example]:
    """One example per segment and direction (every ordered pair of ``languages``, or the ``chosen`` ones)."""
    encoded = tokenize_split(tokenizer, split, max_len)
    examples = []
    for src, tgt in chosen if chosen is not None else directions(languages):
        for seg in range(split.size):
            s, t = encoded[src][seg], encoded[tgt][seg]
            if s is not None and t is not None:
                examples.append(Example(seg, src, tgt, s, t))
    return examples


class DirectionSampler:
    """``per_segment`` directions drawn afresh each epoch for every segment, among its languages' ordered pairs
    (of the ``chosen`` directions): a many-way corpus of n languages has n(n-1) pairs per segment, more than a
    pretraining run can see. Deterministic in (seed, epoch); a segment with fewer pairs gives all of them."""

    def __init__(
        self,
        tokenizer: Any,
        split: ParallelSplit,
        languages: Sequence[str],
        per_segment: int,
        seed: int,
        max_len: int = 256,
        chosen: Sequence[tuple[str, str]] | None = None,
    ) -> None:
        self.encoded = tokenize_split(tokenizer, split, max_len)
        self.per_segment, self.seed, self.size = per_segment, seed, split.size
        self.allowed = set(chosen if chosen is not None else directions(languages))
        self.languages = [c for c in languages if c in self.encoded]

    def __call__(self, epoch: int) -> list[Example]:
        rng = random.Random(self.seed * 1_000_003 + 7919 * epoch)
        examples = []
        for seg in range(self.size):
            present = [c for c in self.languages if self.encoded[c][seg] is not None]
            pairs = [(s, t) for s in present for t in present if s != t and (s, t) in self.allowed]
            picked = pairs if len(pairs) <= self.per_segment else rng.sample(pairs, self.per_segment)
            for src, tgt in picked:
                examples.append(Example(seg, src, tgt, self.encoded[src][seg], self.encoded[tgt][seg]))  # type: ignore[arg-type]
        return examples


def batch_indices(
    costs: Sequence[int], max_tokens: int, seed: int, epoch: int, shuffle: bool = True
) -> list[list[int]]:
    """Token-budget batches: similar lengths together, ``rows x longest <= max_tokens``, order shuffled.

    Deterministic in (seed, epoch). A single example over the budget forms a batch of its own.
    """
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(costs)))
    if shuffle:
        rng.shuffle(order)
    order.sort(key=lambda i: costs[i])  # stable: random order within equal lengths
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        new_longest = max(longest, costs[i])
        if current and new_longest * (len(current) + 1) > max_tokens:
            batches.append(current)
            current, new_longest = [], costs[i]
        current.append(i)
        longest = new_longest
    if current:
        batches.append(current)
    if shuffle:
        rng.shuffle(batches)
    return batches


@dataclass
class Batch:
    input_ids: torch.Tensor  # (rows, src_len)
    attention_mask: torch.Tensor  # (rows, src_len)
    labels: torch.Tensor  # (rows, tgt_len), -100 at padding
    src_langs: list[str]
    tgt_langs: list[str]

    @property
    def target_tokens(self) -> int:
        return int((self.labels != -100).sum())

    def to(self, device: torch.device) -> Batch:
        return Batch(
            self.input_ids.to(device),
            self.attention_mask.to(device),
            self.labels.to(device),
            self.src_langs,
            self.tgt_langs,
        )


def collate(examples: Sequence[Example], pad_id: int) -> Batch:
    rows = len(examples)
    src_len = max(len(e.source_ids) for e in examples)
    tgt_len = max(len(e.labels) for e in examples)
    input_ids = torch.full((rows, src_len), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((rows, src_len), dtype=torch.long)
    labels = torch.full((rows, tgt_len), -100, dtype=torch.long)
    for i, e in enumerate(examples):
        input_ids[i, : len(e.source_ids)] = torch.tensor(e.source_ids)
        attention_mask[i, : len(e.source_ids)] = 1
        labels[i, : len(e.labels)] = torch.tensor(e.labels)
    return Batch(input_ids, attention_mask, labels, [e.src for e in examples], [e.tgt for e in examples])
