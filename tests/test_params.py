"""Trainable-parameter accounting against the paper's #Params column (M2M-124 615M, square fc mode)."""

import json
import subprocess
import sys

import pytest

from lslo import LSLoConfig
from lslo.adapters.params import count_parameters
from lslo.presets import model_config

M2M124 = model_config("m2m124-615m")

# (languages, ranks, modules, paper's #Params in millions, table)
PAPER = [
    ("lang12", "4;4;4", "all", 15.35, "Table 1"),  # same total rank as 2;2;8: 15.335M (the paper prints 15.35M)
    ("lang12", "8;8;8", "all", 30.7, "Table 1"),
    ("lang12", "2;2;8", "all", 15.3, "Table 1"),
    ("lang12", "2;2;16", "all", 25.6, "Table 1"),
    ("lang12", "2;2;64", "all", 86.9, "Table 1"),
    ("lang12", "2;2;32", "fc", 14.1, "Table 4"),
    ("lang12", "2;2;8", "attn", 10.6, "Table 4"),
    ("lang30", "8;8;8;8", "all", 76.7, "Table 2"),
    ("lang30", "2;2;8;8", "all", 46.0, "Table 2"),
]


@pytest.mark.parametrize("languages,ranks,modules,paper,table", PAPER)
def test_square_mode_reproduces_paper(languages, ranks, modules, paper, table):
    config = LSLoConfig.from_strings(languages, ranks, modules=modules, fc_mode="square")
    total = count_parameters(M2M124, config).total
    # d x d LoRA per adapted matrix: 2 * 1024 * rank, summed over languages and matrices
    n_modules = {"all": 12 * 5 + 12 * 8, "fc": 12 * 2 + 12 * 2, "attn": 12 * 3 + 12 * 6}[modules]
    assert total == 2 * 1024 * n_modules * sum(config.ranks.values())
    # The paper prints 3-4 significant digits (rounded or truncated): agree within 0.5 %.
    assert total / 1e6 == pytest.approx(paper, rel=5e-3), table


def test_full_mode_matches_hand_formula():
    config = LSLoConfig.from_strings("lang12", "2;2;8", modules="all", fc_mode="full")
    count = count_parameters(M2M124, config)
    d, f = 1024, 4096
    # per rank unit: attention d+d each (enc q,k,v; dec q,k,v,c-q,c-k,c-v), fc1 d+f, fc2 f+d
    per_rank_layer_enc = 3 * (d + d) + 2 * (d + f)
    per_rank_layer_dec = 6 * (d + d) + 2 * (d + f)
    per_rank = 12 * per_rank_layer_enc + 12 * per_rank_layer_dec
    assert count.per_language["en"] == 2 * per_rank
    assert count.per_language["oc"] == 8 * per_rank
    assert count.total == 48 * per_rank


def test_other_presets_and_config_path(tmp_path):
    config = LSLoConfig.from_strings("en,fr", 4, modules="fc", fc_mode="full")
    big = count_parameters(model_config("m2m100-1.2b"), config)
    assert big.total == 2 * 4 * 24 * 2 * (2 * (1024 + 8192))
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "d_model": 64,
                "encoder_layers": 2,
                "decoder_layers": 1,
                "encoder_ffn_dim": 128,
                "decoder_ffn_dim": 128,
                "vocab_size": 100,
                "encoder_attention_heads": 4,
                "decoder_attention_heads": 4,
            }
        )
    )
    small = count_parameters(model_config(path), config)
    assert small.total == 2 * 4 * 3 * 2 * (64 + 128)
    assert count_parameters(model_config("nllb-600m"), config).total == 2 * 4 * 24 * 2 * (1024 + 4096)


def test_cli_json_output():
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "lslo",
            "params",
            "--model",
            "m2m124-615m",
            "--languages",
            "lang30",
            "--ranks",
            "2;2;8;8",
            "--modules",
            "all",
            "--fc-mode",
            "square",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(out.stdout)
    assert data["total"] == 46_006_272
    assert len(data["per_language"]) == 30
    assert data["per_language"]["en"] == 638_976 and data["per_language"]["kam"] == 4 * 638_976
    assert sum(data["per_language"].values()) == data["total"]


def test_cli_reports_every_problem():
    out = subprocess.run(
        [sys.executable, "-m", "lslo", "params", "--languages", "en,xx", "--ranks", "2;2;8", "--modules", "q,nope"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert "'xx' has no resource tier" in out.stderr and "unknown module 'nope'" in out.stderr
