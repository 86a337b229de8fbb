"""Segment-level BLEU statistics and paired bootstrap resampling (Koehn, 2004) over a multi-way test set.

Corpus BLEU is a function of summed per-segment statistics (clipped n-gram matches and n-gram counts for
n = 1..4, hypothesis and reference length), so an evaluation that keeps those ten numbers per segment can
be re-scored on any resample of its segments without the text. In a multi-way test set segment ``i`` is the
same sentence in every direction; resampling draws segment ids once and applies them to every direction and
to both systems, which keeps the dependence between directions that share a sentence.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

ORDER = 4
STATS = 2 * ORDER + 2  # matches[1..4], totals[1..4], hypothesis length, reference length


def bleu_statistics(hypothesis: Sequence[str], reference: Sequence[str]) -> list[int]:
    """The ten sufficient statistics of one tokenised segment against one reference."""
    matches, totals = [], []
    for n in range(1, ORDER + 1):
        hyp = Counter(tuple(hypothesis[i : i + n]) for i in range(len(hypothesis) - n + 1))
        ref = Counter(tuple(reference[i : i + n]) for i in range(len(reference) - n + 1))
        matches.append(sum(min(count, ref[gram]) for gram, count in hyp.items()))
        totals.append(max(len(hypothesis) - n + 1, 0))
    return [*matches, *totals, len(hypothesis), len(reference)]


def bleu_from_statistics(stats: np.ndarray) -> np.ndarray:
    """Corpus BLEU (0-100) from summed statistics ``[..., 10]`` -> ``[...]``.

    Same definition as sacrebleu's corpus BLEU (default ``exp`` smoothing: the k-th n-gram order without a
    match counts as 1 / 2^k matches; an order with no n-grams at all, or no match at any order, gives 0).
    """
    stats = np.asarray(stats, dtype=np.float64)
    matches, totals = stats[..., :ORDER], stats[..., ORDER : 2 * ORDER]  # [..., 4] each
    sys_len, ref_len = stats[..., 2 * ORDER], stats[..., 2 * ORDER + 1]  # [...]
    zero = matches == 0
    halvings = np.cumsum(zero, axis=-1)  # how many zero-match orders up to and including this one
    safe_totals = np.where(totals > 0, totals, 1.0)
    precision = np.where(zero, 100.0 / (2.0**halvings * safe_totals), 100.0 * matches / safe_totals)
    score = np.exp(np.log(precision).mean(axis=-1))
    brevity = np.where(sys_len < ref_len, np.exp(1 - ref_len / np.maximum(sys_len, 1e-9)), 1.0)
    defined = (totals > 0).all(axis=-1) & (~zero).any(axis=-1) & (sys_len > 0)
    return np.where(defined, brevity * score, 0.0)


def resample_counts(segments: int, samples: int, seed: int = 0) -> np.ndarray:
    """``[samples, segments]``: how often each segment is drawn in each bootstrap resample (with replacement)."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, segments, size=(samples, segments))
    counts = np.zeros((samples, segments))
    np.add.at(counts, (np.arange(samples)[:, None], draws), 1)
    return counts


def group_scores(runs: Sequence[np.ndarray], counts: np.ndarray, groups: Sequence[str]) -> dict[str, np.ndarray]:
    """Per group and "AVG": the mean over directions of corpus BLEU, averaged over ``runs`` (seeds), one value
    per resample.

    runs: one ``[directions, segments, 10]`` array per seed; counts: ``[samples, segments]``; groups: the group
    of each direction.
    """
    per_run = [bleu_from_statistics(np.einsum("bn,dnk->bdk", counts, r)) for r in runs]  # [samples, directions]
    bleu = np.mean(per_run, axis=0)
    labels = np.asarray(groups)
    out = {g: bleu[:, labels == g].mean(axis=1) for g in dict.fromkeys(groups)}
    out["AVG"] = bleu.mean(axis=1)
    return out


def paired_bootstrap(
    runs_a: Sequence[np.ndarray],
    runs_b: Sequence[np.ndarray],
    groups: Sequence[str],
    samples: int = 1000,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Per group: the difference A − B on the test set, its 95 % bootstrap interval and a two-sided p (twice
    the share of resamples on the smaller side of zero)."""
    segments = runs_a[0].shape[1]
    if any(r.shape != runs_a[0].shape for r in (*runs_a, *runs_b)):
        raise ValueError("every run must have the same directions and segments")
    counts = resample_counts(segments, samples, seed)
    full = np.ones((1, segments))
    a, b = group_scores(runs_a, counts, groups), group_scores(runs_b, counts, groups)
    a_full, b_full = group_scores(runs_a, full, groups), group_scores(runs_b, full, groups)
    out = {}
    for g in a:
        diff = a[g] - b[g]
        low, high = np.percentile(diff, [2.5, 97.5])
        p = min(1.0, 2 * min(float((diff <= 0).mean()), float((diff >= 0).mean())))
        out[g] = {"delta": float(a_full[g][0] - b_full[g][0]), "low": float(low), "high": float(high), "p": p}
    return out
