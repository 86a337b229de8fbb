"""Group averages against a hand computation and the paper's own tables; spBLEU against sacrebleu."""

import math

import pytest
import sentencepiece as spm

from training.metrics import SpBleu, chrf_pp, group_averages, group_order

LANG12_TIERS = (
    {c: "H" for c in ("en", "fr", "de", "it")}
    | {c: "M" for c in ("zh", "nl", "ja", "ko")}
    | {c: "V" for c in ("oc", "or", "sd", "wo")}
)


def test_group_averages_hand_computation():
    tiers = {"a": "H", "b": "H", "c": "V"}
    scores = {("a", "b"): 10.0, ("b", "a"): 20.0, ("a", "c"): 4.0, ("b", "c"): 6.0, ("c", "a"): 1.0, ("c", "b"): 3.0}
    groups = group_averages(scores, tiers)
    assert list(groups) == ["H2H", "H2V", "V2H", "AVG"]  # V2V has no direction with one V language
    assert groups == {"H2H": 15.0, "H2V": 5.0, "V2H": 2.0, "AVG": 44.0 / 6}
    assert group_order(tiers) == ["H2H", "H2V", "V2H", "V2V"]


@pytest.mark.parametrize(
    "row,paper_avg",
    [
        ([31.76, 20.06, 5.56, 20.71, 17.12, 3.47, 9.24, 5.03, 0.52], 12.26),  # Table 1, Pretrain
        ([29.29, 20.46, 12.53, 19.28, 17.14, 8.95, 15.23, 11.02, 6.66], 15.43),  # Ft-all
        ([33.13, 22.33, 12.93, 21.49, 18.58, 9.23, 16.59, 11.38, 7.04], 16.73),  # 2;2;8+WL+GPS(0.9)
    ],
)
def test_avg_is_the_mean_over_all_directions_as_in_the_paper(row, paper_avg):
    """Give every lang12 direction its group's score: our AVG must reproduce the paper's AVG column."""
    names = ["H2H", "H2M", "H2V", "M2H", "M2M", "M2V", "V2H", "V2M", "V2V"]
    by_group = dict(zip(names, row))
    scores = {
        (s, t): by_group[f"{LANG12_TIERS[s]}2{LANG12_TIERS[t]}"] for s in LANG12_TIERS for t in LANG12_TIERS if s != t
    }
    assert len(scores) == 132
    groups = group_averages(scores, LANG12_TIERS)
    assert [groups[n] for n in names] == pytest.approx(row)
    assert groups["AVG"] == pytest.approx(paper_avg, abs=0.006)
    assert abs(sum(row) / len(row) - paper_avg) > 0.1  # the unweighted mean of groups would not match


def test_spbleu_is_bleu_over_sentencepiece_pieces_by_hand(tokenizer):
    """A hypothesis that is a prefix of its reference, in pieces: every n-gram of it matches, so each of the four
    precisions is 1 and BLEU is the brevity penalty alone, exp(1 - r / c) for c hypothesis and r reference
    pieces. A second segment equal to its reference adds r2 matching pieces to both sides."""
    scorer = SpBleu(tokenizer.spm_file)
    sp = spm.SentencePieceProcessor(model_file=tokenizer.spm_file)
    ref, hyp = "Nous allons au marché demain matin avec le chat.", "Nous allons au marché demain"
    r, c = sp.encode(ref, out_type=str), sp.encode(hyp, out_type=str)
    assert r[: len(c)] == c and len(c) >= 4 and len(r) > len(c)  # the premise: a prefix in pieces
    assert scorer.corpus_score([hyp], [ref]) == pytest.approx(100 * math.exp(1 - len(r) / len(c)))
    same = "Le chat dort."
    r2 = len(sp.encode(same))
    expected = 100 * math.exp(1 - (len(r) + r2) / (len(c) + r2))
    assert scorer.corpus_score([hyp, same], [ref, same]) == pytest.approx(expected)
    assert scorer.corpus_score([ref], [ref]) == pytest.approx(100.0)
    # Counted over words instead of pieces, the same formula gives another score.
    words = 100 * math.exp(1 - len(ref.split()) / len(hyp.split()))
    assert abs(scorer.corpus_score([hyp], [ref]) - words) > 1.0


def test_chrf_pp_is_bounded_and_perfect_on_the_reference():
    refs = ["Le chat dort sur le sol chaud.", "Nous allons au marché demain matin."]
    assert chrf_pp(refs, refs) == pytest.approx(100.0)
    assert 0 < chrf_pp(["Le chat dort.", "Nous allons."], refs) < 100
