"""The replication report's tables and figures (``research/report.py``, ``research/sweeps.py``) against hand
computations and a direct paired bootstrap."""

import numpy as np
import pytest
from test_training_bootstrap import _system

from training.bootstrap import paired_bootstrap


def test_subspace_summary_averages_by_tier_and_by_module():
    from research.report import subspace_summary

    def row(lang, stack, module, pruned, size=10, ratio=0.5):
        return {
            "language": lang,
            "stack": stack,
            "module": module,
            "layer": 0,
            "side": "src",
            "pruned": pruned,
            "size": size,
            "score": pruned - ratio * size,
        }

    rows = [
        row("en", "encoder", "q", 8),
        row("fr", "encoder", "fc1", 6),
        row("sw", "encoder", "q", 1),
        row("sw", "decoder", "fc1", 3, size=20),
        row("en", "decoder", "fc1", 9, size=20),
    ]
    ise = subspace_summary({"mode": "ise", "languages": {"en": "H", "fr": "H", "sw": "V"}, "scores": rows})
    # H encoder: scores 3 and 1 -> 2.0; kept 1 - 14/20 = 30 %. V decoder: 3 - 10 = -7; kept 1 - 3/20 = 85 %.
    assert "| H | encoder | 2.0 | 30.0 % |" in ise and "| V | decoder | -7.0 | 85.0 % |" in ise
    assert "| V | encoder | -4.0 | 90.0 % |" in ise and "| M |" not in ise
    lsp = subspace_summary({"mode": "lsp", "languages": {}, "scores": rows})
    # encoder q: scores 3, -4 -> -0.5; kept 1 - 9/20 = 55 %. decoder fc1: -7, -1 -> -4; kept 1 - 12/40 = 70 %.
    assert "| encoder | q | -0.5 | 55.0 % |" in lsp and "| decoder | fc1 | -4.0 | 70.0 % |" in lsp
    assert "| encoder | fc1 | 1.0 | 40.0 % |" in lsp


def test_direction_comparison_against_hand_computation():
    from research.report import compare, comparison_table, direction_scores, sign_test

    tiers = {"en": "H", "fr": "H", "sw": "V"}
    runs = {
        ("lslo_2-2-8_gps9", 0): {"en-fr": 10, "fr-en": 12, "en-sw": 5, "fr-sw": 4, "sw-en": 3, "sw-fr": 2},
        ("lslo_2-2-8_gps9", 1): {"en-fr": 12, "fr-en": 10, "en-sw": 5, "fr-sw": 6, "sw-en": 3, "sw-fr": 2},
        ("ft_all", 1): {"en-fr": 10, "fr-en": 12, "en-sw": 4, "fr-sw": 3, "sw-en": 3, "sw-fr": 1},
    }
    results = [
        {
            "name": name,
            "seed": seed,
            "groups": {},
            "evaluation": {"directions": {d: {"spbleu": v} for d, v in scores.items()}},
        }
        for (name, seed), scores in runs.items()
    ]
    results.append({"name": "weight_learning", "seed": 0})  # trained, not evaluated: no scores
    a = direction_scores(results, "lslo_2-2-8_gps9")
    assert a == {"en-fr": 11, "fr-en": 11, "en-sw": 5, "fr-sw": 5, "sw-en": 3, "sw-fr": 2}  # mean of the seeds
    c = compare(a, direction_scores(results, "ft_all"), tiers)
    # Differences: H2H +1, -1; H2V +1, +2; V2H 0, +1; all six: 4 wins, 1 loss, 1 tie.
    assert c["H2H"] == {"delta": 0, "wins": 1, "losses": 1, "n": 2, "p": 1.0}
    assert c["H2V"] == {"delta": 1.5, "wins": 2, "losses": 0, "n": 2, "p": 0.5}
    assert c["V2H"]["wins"] == 1 and c["V2H"]["losses"] == 0 and c["V2H"]["p"] == 1.0  # the tie is dropped
    assert c["AVG"]["delta"] == pytest.approx(4 / 6) and c["AVG"]["p"] == pytest.approx(2 * 6 / 32)
    assert set(c) == {"H2H", "H2V", "V2H", "AVG"}
    assert sign_test(9, 1) == pytest.approx(2 * 11 / 1024) and sign_test(0, 0) == 1.0
    table = comparison_table(results, tiers)
    # One column per group, "-" where the languages have no such group.
    assert (
        "| 2;2;8+WL+GPS(0.9) − Ft-all (Table 1) | 0,1 / 1 | +0.00 (1/2) | - | +1.50 (2/2) | - | - | - "
        "| +0.50 (1/2) | - | - | +0.67 (4/6) |"
    ) in table
    assert "Pretrain" not in table.split("\n\n", 1)[1]  # no Pretrain runs: no row for its comparisons
    assert comparison_table(results[:2], tiers) == ""  # one side missing: nothing to compare


def test_table1_sweeps_pick_the_rows_and_the_papers_figures(tmp_path):
    from research.report import GROUPS, PAPER
    from research.sweeps import figure_sweeps, sweep_points, sweep_series

    names = [
        "lslo_2-2-8_gps9",
        "lslo_8-8-8",
        "ft_all",
        "lslo_2-2-8",
        "lslo_4-4-4",
        "lslo_2-2-16_gps9",
        "lslo_4-4-8",
        "t4_fc_2-2-16_gps9",
        "lslo_2-2-8_gps5",
    ]
    assert sweep_points(names) == {
        "rank": [(4.0, "lslo_4-4-4"), (8.0, "lslo_8-8-8")],
        "pruning": [(0.0, "lslo_2-2-8"), (0.5, "lslo_2-2-8_gps5"), (0.9, "lslo_2-2-8_gps9")],
    }

    def row(h2h, v2v, avg, sd=None):
        return {"stats": {"H2H": (h2h, sd), "V2V": (v2v, sd), "AVG": (avg, sd)}}

    stats = {"lslo_4-4-4": row(13.0, 4.0, 7.0, 0.2), "lslo_2-2-8_gps9": row(12.0, 5.0, 7.2), "ft_all": row(1, 1, 1)}
    series = sweep_series(stats, PAPER, GROUPS, ["lslo_4-4-4", "lslo_16-16-16", "lslo_2-2-8_gps9", "lslo_2-2-8"])
    assert series["rank"][("ours", "H2H")] == [(4.0, 13.0, 0.2)]
    assert series["pruning"][("ours", "AVG")] == [(0.9, 7.2, 0.0)]  # one seed: no error bar
    # The paper's Table 1 for the planned x values: 4;4;4 and 16;16;16 H2H; 2;2;8 and GPS(0.9) V2V.
    assert series["rank"][("paper", "H2H")] == [(4.0, 30.15, 0.0), (16.0, 25.90, 0.0)]
    assert series["pruning"][("paper", "V2V")] == [(0.0, 7.01, 0.0), (0.9, 7.04, 0.0)]
    assert not figure_sweeps(series, tmp_path / "none.png") and not (tmp_path / "none.png").exists()
    stats["lslo_16-16-16"] = row(11.0, 6.0, 7.1)
    assert figure_sweeps(sweep_series(stats, PAPER, GROUPS), tmp_path / "sweeps.png")
    assert (tmp_path / "sweeps.png").stat().st_size > 10_000


def test_report_bootstrap_table_from_archived_evaluations():
    from research.report import bootstrap_table

    tiers = {"en": "H", "fr": "H"}
    results = []
    for name, noise in (("lslo_2-2-8_gps9", 0.1), ("ft_all", 0.6)):
        _, stats = _system(5, noise, 2, 30)
        segments = {
            d: {"ids": list(range(30)), "hypotheses": [""] * 30, "bleu_stats": stats[i].tolist()}
            for i, d in enumerate(("en-fr", "fr-en"))
        }
        results.append({"name": name, "seed": 0, "groups": {}, "evaluation": {"segments": segments}})
    text = bootstrap_table(results, tiers, samples=200)
    row = next(line for line in text.splitlines() if line.startswith("| 2;2;8+WL+GPS(0.9) − Ft-all"))
    direct = paired_bootstrap(
        *[
            [np.stack([np.asarray(r["evaluation"]["segments"][d]["bleu_stats"]) for d in ("en-fr", "fr-en")])]
            for r in results
        ],
        ["H2H", "H2H"],
        samples=200,
    )
    cell = f"{direct['H2H']['delta']:+.2f} [{direct['H2H']['low']:+.2f}, {direct['H2H']['high']:+.2f}]‡"
    assert row.count(cell) == 2  # H2H and AVG (the only group), the interval above 0
    assert "of the 30 segment ids" in text
    results[1]["evaluation"] = {"directions": {}}  # an old evaluation, without per-segment statistics
    assert bootstrap_table(results, tiers) == ""
    del results[1]["evaluation"]  # or none kept at all
    assert bootstrap_table(results, tiers) == ""
