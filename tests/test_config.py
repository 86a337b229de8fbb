import pytest

from lslo import ConfigError, LayerMap, LSLoConfig, load_table
from lslo.adapters.layer_map import paper_encoder_src_layers
from lslo.adapters.modules import TargetModules, parse_modules
from lslo.languages.tables import LanguageSpec


def test_lang12_table_matches_appendix_a():
    table = load_table("lang12")
    assert list(table) == ["en", "fr", "de", "it", "zh", "nl", "ja", "ko", "oc", "or", "sd", "wo"]
    tiers = [info.tier for info in table.values()]
    assert tiers == ["H"] * 4 + ["M"] * 4 + ["V"] * 4
    assert table["nl"].bitext_pairs == pytest.approx(82.4e6)
    assert table["oc"].bitext_pairs == pytest.approx(5110)
    assert table["oc"].family == "Romance"
    assert table["en"].bitext_pairs is None


def test_lang30_table_tier_sizes():
    table = load_table("lang30")
    assert len(table) == 30
    counts = {t: sum(1 for i in table.values() if i.tier == t) for t in "HMLV"}
    assert counts == {"H": 7, "M": 9, "L": 8, "V": 6}
    assert table["kam"].bitext_pairs == pytest.approx(50e3)


def test_tier_pattern_resolves_ranks():
    config = LSLoConfig.from_strings("lang12", "2;2;8")
    assert config.ranks["en"] == 2 and config.ranks["ko"] == 2 and config.ranks["wo"] == 8
    config30 = LSLoConfig.from_strings("lang30", "2;3;8;9")
    assert (config30.ranks["es"], config30.ranks["no"], config30.ranks["zu"], config30.ranks["kam"]) == (2, 3, 8, 9)


def test_explicit_ranks_and_tier_assignment():
    config = LSLoConfig.from_strings("en,oc", "en=2,oc=8")
    assert config.ranks == {"en": 2, "oc": 8}
    config = LSLoConfig.from_strings("en,fr,xh", "2;4;16", tiers="H:en,fr;M:;V:xh")
    assert config.ranks == {"en": 2, "fr": 2, "xh": 16}
    assert [s.tier for s in config.languages] == ["H", "H", "V"]


def test_every_problem_is_listed_at_once():
    with pytest.raises(ConfigError) as err:
        LSLoConfig.from_strings(
            "en,fr,fr,Bad!", "en=0,fr=2", modules="q,zz", fc_mode="diagonal", layer_map="sideways", dropout=1.5
        )
    problems = err.value.problems
    text = "\n".join(problems)
    for expected in (
        "listed twice",
        "not a valid code",
        "no rank given for language 'Bad!'",
        "rank of 'en' is 0",
        "unknown module 'zz'",
        "fc_mode 'diagonal'",
        "layer map 'sideways'",
        "dropout 1.5",
    ):
        assert expected in text, expected
    assert len(problems) >= 8


def test_pattern_without_tier_for_language():
    with pytest.raises(ConfigError, match="tier L, which pattern '2;2;8'"):
        LSLoConfig.from_strings("en,af", "2;2;8")
    with pytest.raises(ConfigError, match="3 values"):
        LSLoConfig.from_strings("en", "2;2")


def test_direct_construction_validates():
    with pytest.raises(ConfigError) as err:
        LSLoConfig(languages=(LanguageSpec("en", -1), LanguageSpec("en", 2)), scaling=0.0)
    assert len(err.value.problems) == 3


@pytest.mark.parametrize(
    "spec,encoder,decoder",
    [
        ("all", ("q", "k", "v", "fc1", "fc2"), ("q", "k", "v", "c-q", "c-k", "c-v", "fc1", "fc2")),
        ("fc", ("fc1", "fc2"), ("fc1", "fc2")),
        ("attn", ("q", "k", "v"), ("q", "k", "v", "c-q", "c-k", "c-v")),
        ("fc2,q", ("q", "fc2"), ("q", "fc2")),
        ("c-k", (), ("c-k",)),
        ("enc.v,dec.fc1", ("v",), ("fc1",)),
    ],
)
def test_module_specs(spec, encoder, decoder):
    problems: list[str] = []
    assert parse_modules(spec, problems) == TargetModules(encoder, decoder)
    assert problems == []


def test_module_errors():
    problems: list[str] = []
    parse_modules("enc.c-q,x.q,o_proj", problems)
    assert len(problems) == 3


def test_paper_layer_map_for_12_layers():
    lm = LayerMap.preset("paper", 12, 12)
    assert lm.encoder == ("src",) * 9 + ("tgt",) * 3
    assert lm.decoder == ("tgt",) * 12
    assert lm.describe() == "enc 1-9 src, 10-12 tgt; dec 1-12 tgt"


@pytest.mark.parametrize("n,src", [(1, 1), (2, 2), (3, 2), (4, 3), (6, 5), (8, 6), (12, 9), (24, 18)])
def test_paper_layer_map_generalises_by_three_quarters(n, src):
    assert paper_encoder_src_layers(n) == src
    assert LayerMap.preset("paper", n, 2).encoder.count("src") == src


def test_all_src_all_tgt_and_round_trip():
    assert LayerMap.preset("all-src", 3, 2) == LayerMap(("src",) * 3, ("src",) * 2)
    assert LayerMap.preset("all-tgt", 3, 2) == LayerMap(("tgt",) * 3, ("tgt",) * 2)
    lm = LayerMap(("src", "tgt"), ("tgt",))
    assert LayerMap.from_dict(lm.to_dict()) == lm
    with pytest.raises(ConfigError):
        LayerMap.from_dict({"encoder": ["src", "up"]})


def test_explicit_layer_map_must_fit_depth():
    config = LSLoConfig.from_strings("en,fr", 2, layer_map=LayerMap(("src",), ("tgt",)))
    with pytest.raises(ConfigError, match="2 encoder entries|1 encoder entries"):
        config.resolve_layer_map(2, 1)


def test_table3_presets():
    assert LayerMap.preset("src-encoder", 12, 12) == LayerMap(("src",) * 12, ("tgt",) * 12)
    assert LayerMap.preset("all-tgt", 12, 12) == LayerMap(("tgt",) * 12, ("tgt",) * 12)
