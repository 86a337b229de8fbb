"""spBLEU and chrF++ per direction, and the paper's group averages (H2H, H2M, ..., AVG).

spBLEU is BLEU over SentencePiece pieces: both sides are encoded with a given SentencePiece model and
scored with sacrebleu's ``tokenize="none"`` (sacrebleu's own ``flores101`` tokenizer would download its
model). Which SPM model was used is reported with the scores. AVG is the mean over all directions, as in the
paper (its AVG column equals the direction-count-weighted mean of its group columns).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import sacrebleu
import sentencepiece as spm

from lslo.languages.tables import TIERS
from training.bootstrap import bleu_statistics


class SpBleu:
    def __init__(self, spm_model: str | Path) -> None:
        self.model_path = str(spm_model)
        self._sp = spm.SentencePieceProcessor(model_file=self.model_path)

    def pieces(self, text: str) -> str:
        return " ".join(self._sp.encode(text, out_type=str))

    def corpus_score(self, hypotheses: Sequence[str], references: Sequence[str]) -> float:
        return self.score_and_statistics(hypotheses, references)[0]

    def score_and_statistics(
        self, hypotheses: Sequence[str], references: Sequence[str]
    ) -> tuple[float, list[list[int]]]:
        """Corpus spBLEU (sacrebleu) and, per segment, the ten BLEU statistics over the same SentencePiece
        pieces (see ``training.bootstrap``), encoding each side once."""
        hyp = [self.pieces(h) for h in hypotheses]
        ref = [self.pieces(r) for r in references]
        stats = [bleu_statistics(h.split(), r.split()) for h, r in zip(hyp, ref, strict=True)]
        return float(sacrebleu.corpus_bleu(hyp, [ref], tokenize="none").score), stats


def chrf_pp(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    return float(sacrebleu.corpus_chrf(list(hypotheses), [list(references)], word_order=2).score)


def group_name(src_tier: str, tgt_tier: str) -> str:
    return f"{src_tier}2{tgt_tier}"


def group_order(tiers: Mapping[str, str | None]) -> list[str]:
    present = [t for t in TIERS if t in set(tiers.values())]
    return [group_name(a, b) for a in present for b in present]


def group_averages(scores: Mapping[tuple[str, str], float], tiers: Mapping[str, str | None]) -> dict[str, float]:
    """{"H2H": mean over H->H directions, ..., "AVG": mean over all directions}, in the paper's order."""
    buckets: dict[str, list[float]] = {}
    for (src, tgt), value in scores.items():
        if tiers.get(src) is None or tiers.get(tgt) is None:
            continue
        buckets.setdefault(group_name(tiers[src], tiers[tgt]), []).append(value)
    out = {g: sum(buckets[g]) / len(buckets[g]) for g in group_order(tiers) if g in buckets}
    if scores:
        out["AVG"] = sum(scores.values()) / len(scores)
    return out


def markdown_table(rows: Mapping[str, Mapping[str, float]], columns: Sequence[str]) -> str:
    """Rows of group scores as a Markdown table in the paper's layout."""
    head = "| Method | " + " | ".join(columns) + " |"
    rule = "|---|" + "---:|" * len(columns)
    body = [
        f"| {name} | " + " | ".join(f"{values[c]:.2f}" if c in values else "-" for c in columns) + " |"
        for name, values in rows.items()
    ]
    return "\n".join([head, rule, *body])
