"""Group averages against a hand computation and the paper's own tables; spBLEU against sacrebleu."""

import pytest
import sacrebleu
import sentencepiece as spm

from training.metrics import SpBleu, chrf_pp, group_averages, group_order

LANG12_TIERS = {c: "H" for c in ("en", "fr", "de", "it")} | {c: "M" for c in ("zh", "nl", "ja", "ko")} | {
    c: "V" for c in ("oc", "or", "sd", "wo")}


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
    scores = {(s, t): by_group[f"{LANG12_TIERS[s]}2{LANG12_TIERS[t]}"]
              for s in LANG12_TIERS for t in LANG12_TIERS if s != t}
    assert len(scores) == 132
    groups = group_averages(scores, LANG12_TIERS)
    assert [groups[n] for n in names] == pytest.approx(row)
    assert groups["AVG"] == pytest.approx(paper_avg, abs=0.006)
    assert abs(sum(row) / len(row) - paper_avg) > 0.1  # the unweighted mean of groups would not match


def test_spbleu_is_bleu_over_sentencepiece_pieces(tokenizer):
    scorer = SpBleu(tokenizer.spm_file)
    sp = spm.SentencePieceProcessor(model_file=tokenizer.spm_file)
    hyps = ["Le chat dort sur le sol.", "Nous allons au marché demain."]
    refs = ["Le chat dort sur le sol chaud.", "Nous allons au marché demain matin."]
    pieces = lambda xs: [" ".join(sp.encode(x, out_type=str)) for x in xs]  # noqa: E731
    expected = sacrebleu.corpus_bleu(pieces(hyps), [pieces(refs)], tokenize="none").score
    assert scorer.corpus_score(hyps, refs) == pytest.approx(expected)
    assert scorer.corpus_score(refs, refs) == pytest.approx(100.0)
    assert 0 < chrf_pp(hyps, refs) < 100
