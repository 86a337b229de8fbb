"""Segment-level BLEU statistics against sacrebleu, and the paired bootstrap against a loop over resamples."""

import random

import numpy as np
import pytest
import sacrebleu

from training.bootstrap import bleu_from_statistics, bleu_statistics, group_scores, paired_bootstrap, resample_counts

WORDS = "a b c d e f g h".split()


def _corpus(rng: random.Random, segments: int, noise: float) -> tuple[list[str], list[str]]:
    """References, and hypotheses that copy each reference word with probability 1 - noise."""
    refs, hyps = [], []
    for _ in range(segments):
        ref = [rng.choice(WORDS) for _ in range(rng.randint(1, 9))]
        hyp = [w if rng.random() > noise else rng.choice(WORDS) for w in ref][: rng.randint(1, len(ref) + 2)]
        refs.append(" ".join(ref))
        hyps.append(" ".join(hyp))
    return hyps, refs


def _sacrebleu(hyps: list[str], refs: list[str]) -> float:
    return sacrebleu.corpus_bleu(hyps, [refs], tokenize="none").score


def test_statistics_by_hand():
    # "the the the cat" against "the cat sat": unigrams clipped to 1 "the" + 1 "cat" = 2 of 4; bigrams
    # "the cat" 1 of 3; no trigram or 4-gram matches (2 and 1 of them).
    assert bleu_statistics("the the the cat".split(), "the cat sat".split()) == [2, 1, 0, 0, 4, 3, 2, 1, 4, 3]
    assert bleu_statistics([], "x y".split()) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 2]


@pytest.mark.parametrize("seed,segments,noise", [(0, 30, 0.2), (1, 5, 0.6), (2, 3, 0.9), (3, 50, 0.0), (4, 2, 1.0)])
def test_summed_statistics_give_sacrebleus_corpus_bleu(seed, segments, noise):
    hyps, refs = _corpus(random.Random(seed), segments, noise)
    stats = np.asarray([bleu_statistics(h.split(), r.split()) for h, r in zip(hyps, refs)]).sum(axis=0)
    assert bleu_from_statistics(stats) == pytest.approx(_sacrebleu(hyps, refs), abs=1e-9)


def test_edge_cases_match_sacrebleu():
    for hyps, refs in ((["a b"], ["c d"]), (["a"], ["a b c d e"]), (["a b c"], ["a b c"]), (["x y z"], ["x q z w"])):
        stats = np.asarray([bleu_statistics(h.split(), r.split()) for h, r in zip(hyps, refs)]).sum(axis=0)
        assert bleu_from_statistics(stats) == pytest.approx(_sacrebleu(hyps, refs), abs=1e-9), (hyps, refs)


def test_resample_counts_draw_every_segment_count_times():
    counts = resample_counts(7, 50, seed=3)
    assert counts.shape == (50, 7) and (counts.sum(axis=1) == 7).all()
    assert (counts == resample_counts(7, 50, seed=3)).all() and not (counts == resample_counts(7, 50, seed=4)).all()


def _system(seed: int, noise: float, directions: int, segments: int):
    rng = random.Random(seed)
    texts = [_corpus(rng, segments, noise) for _ in range(directions)]
    stats = np.asarray([[bleu_statistics(h.split(), r.split()) for h, r in zip(*d)] for d in texts])
    return texts, stats  # stats: [directions, segments, 10]


def test_group_scores_equal_a_loop_over_resampled_corpora():
    groups = ["H2H", "H2H", "H2V"]
    (texts_0, stats_0), (texts_1, stats_1) = _system(0, 0.3, 3, 12), _system(1, 0.5, 3, 12)
    counts = resample_counts(12, 4, seed=0)
    got = group_scores([stats_0, stats_1], counts, groups)  # two seeds, averaged
    for b in range(4):
        picked = [i for i in range(12) for _ in range(int(counts[b, i]))]
        per_direction = [
            np.mean(
                [_sacrebleu([t[d][0][i] for i in picked], [t[d][1][i] for i in picked]) for t in (texts_0, texts_1)]
            )
            for d in range(3)
        ]
        assert got["H2H"][b] == pytest.approx((per_direction[0] + per_direction[1]) / 2, abs=1e-9)
        assert got["H2V"][b] == pytest.approx(per_direction[2], abs=1e-9)
        assert got["AVG"][b] == pytest.approx(np.mean(per_direction), abs=1e-9)


def test_paired_bootstrap_separates_a_better_system_and_not_an_equal_one():
    groups = ["H2H"] * 4
    _, good = _system(0, 0.1, 4, 40)
    _, bad = _system(0, 0.6, 4, 40)
    found = paired_bootstrap([good], [bad], groups, samples=300)
    full = [bleu_from_statistics(s.sum(axis=1)).mean() for s in (good, bad)]
    assert found["H2H"]["delta"] == pytest.approx(full[0] - full[1])
    assert 0 < found["H2H"]["low"] < found["H2H"]["delta"] < found["H2H"]["high"] and found["H2H"]["p"] < 0.01
    same = paired_bootstrap([good], [good.copy()], groups, samples=100)["AVG"]
    assert same == {"delta": 0.0, "low": 0.0, "high": 0.0, "p": 1.0}
    with pytest.raises(ValueError, match="same directions"):
        paired_bootstrap([good], [bad[:3]], groups)
