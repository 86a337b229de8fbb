"""Data: the offline corpus builder, the FLORES readers, many-to-many examples and token-budget batches."""

import json

import pytest

from lslo.errors import ConfigError
from training.corpus import CorpusSettings, run_corpus
from training.flores import read_split
from training.pairs import batch_indices, build_examples, collate, directions

LANGS = ["en", "fr", "de", "nl"]


def test_corpus_layout_and_alignment(corpus_dir):
    for split, n in (("dev", 60), ("devtest", 30)):
        for stem in ("eng", "fra", "deu", "nld"):  # FLORES-101 file names
            lines = (corpus_dir / split / f"{stem}.{split}").read_text(encoding="utf-8").splitlines()
            assert len(lines) == n and all(line.strip() for line in lines)  # fully aligned
    stats = json.loads((corpus_dir / "stats.json").read_text())
    assert stats["splits"]["dev"] == 60 and stats["languages"]["de"]["tier"] == "M"
    assert any("Django" in s for s in stats["sources"]) and any("CLDR" in s for s in stats["sources"])
    train = read_split(corpus_dir, "train", LANGS)
    assert stats["languages"]["nl"]["train"] == train.present("nl")
    # the share keeps about 20 % of the V language's lines, all of the H ones
    assert train.present("en") > 0.9 * train.size
    assert 0.1 * train.present("en") < train.present("nl") < 0.3 * train.present("en")


def test_corpus_splits_are_disjoint_and_seeded(corpus_dir, tmp_path):
    texts = {s: set(read_split(corpus_dir, s, ["en"]).lines["en"]) - {None} for s in ("dev", "devtest", "train")}
    assert not texts["dev"] & texts["devtest"] and not texts["dev"] & texts["train"]
    assert not texts["devtest"] & texts["train"]
    again = tmp_path / "again"
    run_corpus(
        CorpusSettings(
            out=again,
            languages="en,fr,de,nl",
            tiers="H:en,fr;M:de;V:nl",
            dev=60,
            devtest=30,
            train_share="H:1,M:0.5,V:0.2",
            seed=3,
        )
    )
    for split in ("dev", "devtest", "train"):
        for stem in ("eng", "nld"):
            name = f"{stem}.{split}"
            assert (again / split / name).read_bytes() == (corpus_dir / split / name).read_bytes()
    other = tmp_path / "other"
    run_corpus(CorpusSettings(out=other, languages="en,fr", dev=60, devtest=30, seed=4))
    assert (other / "dev" / "eng.dev").read_bytes() != (corpus_dir / "dev" / "eng.dev").read_bytes()


def test_corpus_errors(tmp_path):
    with pytest.raises(ConfigError) as err:
        run_corpus(
            CorpusSettings(
                out=tmp_path / "x",
                languages="en,xx_Bad,fr",
                sources="django,wiki",
                train_share="Q:0.5",
                dev=10,
                devtest=10,
            )
        )
    text = str(err.value)
    assert "xx_Bad" in text and "wiki" in text and "Q:0.5" in text
    with pytest.raises(ConfigError, match="dev \\+ devtest need"):
        run_corpus(CorpusSettings(out=tmp_path / "y", languages="en,fr", dev=100000, devtest=10))


def test_flores200_layout_and_missing_files(tmp_path):
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "eng_Latn.dev").write_text("Hello\nThank you\n", encoding="utf-8")
    (tmp_path / "dev" / "fra_Latn.dev").write_text("Bonjour\nMerci\n", encoding="utf-8")
    split = read_split(tmp_path, "dev", ["en", "fr"])  # model codes found through FLORES-200 names
    assert split.lines["fr"] == ["Bonjour", "Merci"]
    nllb = read_split(tmp_path, "dev", ["eng_Latn"])  # NLLB models use FLORES-200 codes directly
    assert nllb.lines["eng_Latn"] == ["Hello", "Thank you"]
    with pytest.raises(ConfigError) as err:
        read_split(tmp_path, "dev", ["en", "de", "oc"])
    assert len(err.value.problems) == 2 and "'de'" in str(err.value) and "oci.dev" in str(err.value)
    (tmp_path / "dev" / "deu_Latn.dev").write_text("Hallo\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="line-aligned"):
        read_split(tmp_path, "dev", ["en", "de"])


def test_many_to_many_examples(corpus_dir, tokenizer):
    split = read_split(corpus_dir, "train", LANGS)
    examples = build_examples(tokenizer, split, LANGS, max_len=32)
    expected = sum(
        1
        for s, t in directions(LANGS)
        for i in range(split.size)
        if split.lines[s][i] is not None and split.lines[t][i] is not None
    )
    assert len(directions(LANGS)) == 12
    assert len(examples) == expected
    e = examples[0]
    assert e.source_ids[0] == tokenizer.get_lang_id(e.src) and e.source_ids[-1] == tokenizer.eos_token_id
    assert e.labels[0] == tokenizer.get_lang_id(e.tgt) and e.labels[-1] == tokenizer.eos_token_id
    assert max(max(len(x.source_ids), len(x.labels)) for x in examples) <= 32
    batch = collate(examples[:5], tokenizer.pad_token_id)
    assert batch.src_langs == [x.src for x in examples[:5]]
    assert batch.target_tokens == sum(len(x.labels) for x in examples[:5])


def test_token_budget_batches_are_deterministic():
    costs = [(i * 7919) % 23 + 2 for i in range(500)]
    a = batch_indices(costs, 200, seed=1, epoch=3)
    assert a == batch_indices(costs, 200, seed=1, epoch=3)
    assert a != batch_indices(costs, 200, seed=1, epoch=4)
    assert sorted(i for b in a for i in b) == list(range(500))
    assert all(len(b) * max(costs[i] for i in b) <= 200 for b in a)


def test_paper_configs_validate(tmp_path):
    """Every shipped config of the paper's experiments parses into its command's settings."""
    from pathlib import Path

    import yaml

    from training.recipes.finetune import FinetuneSettings
    from training.recipes.subspace import SubspaceSettings
    from training.recipes.weight_learning import WeightLearningSettings
    from training.settings import build_settings

    folder = Path(__file__).parents[1] / "training" / "configs" / "paper"
    files = sorted(folder.glob("*.yaml"))
    assert len(files) >= 25
    for path in files:
        command = path.read_text().splitlines()[1].split("python -m training ")[1].split()[0]
        model = {"finetune": FinetuneSettings, "subspace": SubspaceSettings, "weight-learning": WeightLearningSettings}[
            command
        ]
        settings = build_settings(model, {"config": path, "base": tmp_path, "data": tmp_path, "out": tmp_path})
        assert settings.problems() == [], path.name
        assert settings.epochs == 15 and settings.fc_mode == "square"
        raw = yaml.safe_load(path.read_text())
        assert all(getattr(settings, k) == v for k, v in raw.items()), path.name
