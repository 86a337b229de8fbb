"""Ordinary corpora: OPUS/Moses pair files, JSONL, TSV and FLORES read into one shape; directions; the held-out
validation share; every problem of bad data reported together before training starts."""

import json

import pytest
from transformers import AutoTokenizer

from conftest import finetune_args
from lslo.errors import ConfigError
from training.corpora import DataReport, detect_format, read_corpus, read_test_data
from training.data import held_out, training_data
from training.recipes.finetune import FinetuneSettings, run_finetune
from training.settings import TrainSettings, build_settings

EN_FR = [("Open the file", "Ouvrir le fichier"), ("Save", "Enregistrer"), ("Close the window", "Fermer la fenêtre")]
DE_EN = [("Datei öffnen", "Open file"), ("Hilfe", "Help")]


def _write_moses(root, name, pair, rows):
    """OPUS's Moses download: ``<name>.<a>-<b>.<a>`` and ``.<b>``, line-aligned."""
    a, b = pair
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{name}.{a}-{b}.{a}").write_text("".join(f"{x}\n" for x, _ in rows), encoding="utf-8")
    (root / f"{name}.{a}-{b}.{b}").write_text("".join(f"{y}\n" for _, y in rows), encoding="utf-8")


def _segments(split):
    """{frozenset of (lang, text)} of a ParallelSplit: the content, whatever the order."""
    return {
        frozenset((c, split.lines[c][i]) for c in split.languages if split.lines[c][i] is not None)
        for i in range(split.size)
    }


def _expected():
    return {frozenset({("en", e), ("fr", f)}) for e, f in EN_FR} | {frozenset({("de", d), ("en", e)}) for d, e in DE_EN}


def test_moses_jsonl_and_tsv_read_the_same_segments(tmp_path):
    moses = tmp_path / "opus"
    _write_moses(moses, "Tatoeba", ("en", "fr"), EN_FR)
    _write_moses(moses, "KDE4", ("de", "en"), DE_EN)
    jsonl = tmp_path / "train.jsonl"
    jsonl.write_text(
        "".join(json.dumps({"translation": {"en": e, "fr": f}}) + "\n" for e, f in EN_FR)
        + "".join(json.dumps({"translation": {"de": d, "en": e}}) + "\n" for d, e in DE_EN),
        encoding="utf-8",
    )
    tsv = tmp_path / "tsv"
    tsv.mkdir()
    (tsv / "a.tsv").write_text("en\tfr\n" + "".join(f"{e}\t{f}\n" for e, f in EN_FR), encoding="utf-8")
    (tsv / "b.tsv").write_text("de\ten\n" + "".join(f"{d}\t{e}\n" for d, e in DE_EN), encoding="utf-8")
    for path, kind in ((moses, "text"), (jsonl, "jsonl"), (tsv, "tsv")):
        assert detect_format(path) == kind
        report = DataReport()
        corpus = read_corpus(path, "auto", report)
        assert not report.problems, report.problems
        assert sorted(corpus.train.languages) == ["de", "en", "fr"]
        assert _segments(corpus.train) == _expected(), kind


def test_directions_default_to_both_ways_of_each_pair_and_can_be_chosen(tmp_path, base_dir):
    moses = tmp_path / "opus"
    _write_moses(moses, "Tatoeba", ("en", "fr"), EN_FR)
    _write_moses(moses, "KDE4", ("de", "en"), DE_EN)

    def data(**values):
        settings = TrainSettings(base=base_dir, data=moses, out=tmp_path / "o", valid_share=0, **values)
        problems: list[str] = []
        return training_data(settings, AutoTokenizer.from_pretrained(base_dir), problems), problems

    found, problems = data()
    assert not problems
    assert sorted(found.directions) == [("de", "en"), ("en", "de"), ("en", "fr"), ("fr", "en")]  # no fr<>de text
    found, problems = data(directions="en>fr,de-en")
    assert sorted(found.directions) == [("de", "en"), ("en", "fr")] and not problems
    _, problems = data(directions="fr>de,en>en")
    assert any("fr>de: the data has no segment in both languages" in p for p in problems)
    assert any("'en>en' is not two different languages" in p for p in problems)


def test_valid_and_test_stems(tmp_path):
    moses = tmp_path / "data"
    moses.mkdir()
    for stem, rows in (("train", EN_FR), ("valid", [("Help", "Aide")]), ("test", [("Quit", "Quitter")])):
        (moses / f"{stem}.en").write_text("".join(f"{e}\n" for e, _ in rows), encoding="utf-8")
        (moses / f"{stem}.fr").write_text("".join(f"{f}\n" for _, f in rows), encoding="utf-8")
    report = DataReport()
    corpus = read_corpus(moses, "auto", report)
    assert corpus.valid is not None and corpus.valid.lines["fr"] == ["Aide"]
    texts = {t for v in corpus.train.lines.values() for t in v}
    assert "Quitter" not in texts and "Aide" not in texts and "Enregistrer" in texts
    assert any("test" in n for n in report.notes)


def test_held_out_share_is_seeded_disjoint_and_complete(tmp_path):
    rows = [(f"line {i}", f"ligne {i}") for i in range(100)]
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "c.en").write_text("".join(f"{e}\n" for e, _ in rows), encoding="utf-8")
    (tmp_path / "d" / "c.fr").write_text("".join(f"{f}\n" for _, f in rows), encoding="utf-8")
    split = read_corpus(tmp_path / "d", "auto", DataReport()).train
    train, valid = held_out(split, 0.1, 1000, seed=5)
    assert valid.size == 10 and train.size == 90
    assert set(train.lines["en"]) | set(valid.lines["en"]) == {e for e, _ in rows}
    assert not set(train.lines["en"]) & set(valid.lines["en"])
    again_train, again_valid = held_out(split, 0.1, 1000, seed=5)
    assert again_valid.lines == valid.lines
    assert held_out(split, 0.1, 1000, seed=6)[1].lines != valid.lines
    assert held_out(split, 0.5, 7, seed=5)[1].size == 7  # --valid-max caps the share


def test_every_data_problem_is_reported_together_before_training(tmp_path, base_dir):
    data = tmp_path / "bad"
    data.mkdir()
    (data / "short.en").write_text("a\nb\nc\n", encoding="utf-8")  # 3 lines against 2
    (data / "short.fr").write_text("a\nb\n", encoding="utf-8")
    (data / "latin.en").write_text("caf\n", encoding="utf-8")
    (data / "latin.fr").write_bytes("café\n".encode("latin-1"))  # not UTF-8
    (data / "maori.en").write_text("hello\n", encoding="utf-8")
    (data / "maori.mi").write_text("kia ora\n", encoding="utf-8")  # M2M-100 has no Maori token
    good = [(f"sentence {i}", f"phrase {i}") for i in range(30)]
    good += [("", "vide"), ("x" * 1_000_000, "long"), good[0]]  # an empty side, a 1 MB line, a duplicate
    (data / "good.en").write_text("".join(f"{e}\n" for e, _ in good), encoding="utf-8")
    (data / "good.fr").write_text("".join(f"{f}\n" for _, f in good), encoding="utf-8")
    args = finetune_args(base_dir, data, tmp_path / "out", languages="auto", tiers=None, ranks="2", split="auto")
    with pytest.raises(ConfigError) as err:
        run_finetune(build_settings(FinetuneSettings, args))
    text = str(err.value)
    assert "short.en 3, short.fr 2" in text
    assert "latin.fr is not UTF-8" in text
    assert "no language token for 'mi'" in text
    assert not (tmp_path / "out" / "log.jsonl").exists()
    report = DataReport()
    read_corpus(data, "auto", report)
    notes = " ".join(report.notes)
    assert "1 line(s) over 4096 characters" in notes
    assert "1 segment(s) with fewer than two non-empty sides" in notes
    assert "1 repeated segment(s)" in notes


def test_bad_jsonl_and_tsv_lines_name_file_and_line(tmp_path):
    jsonl = tmp_path / "data.jsonl"
    jsonl.write_text(
        '{"translation": {"en": "a", "fr": "b"}}\nnot json\n{"translation": {"en": "only"}}\n{"text": "x"}\n',
        encoding="utf-8",
    )
    report = DataReport()
    read_corpus(jsonl, "auto", report)
    text = " ".join(report.problems)
    assert "data.jsonl:2: not a JSON object" in text
    assert "data.jsonl:3: 'translation' needs the texts of two languages" in text
    assert "data.jsonl:4: not a JSON object with a 'translation' field" in text
    tsv = tmp_path / "t.tsv"
    tsv.write_text("en\tfr\na\tb\nc\n", encoding="utf-8")
    report = DataReport()
    read_corpus(tsv, "auto", report)
    assert "t.tsv:3: 1 columns, the header has 2" in " ".join(report.problems)
    (tmp_path / "h.tsv").write_text("source\ttarget\na\tb\n", encoding="utf-8")
    report = DataReport()
    read_corpus(tmp_path / "h.tsv", "auto", report)
    assert "must name the languages of its columns" in " ".join(report.problems)


def test_unreadable_data_path(tmp_path, base_dir):
    (tmp_path / "empty").mkdir()
    report = DataReport()
    assert read_corpus(tmp_path / "empty", "auto", report) is None
    assert "holds no data this reads" in report.problems[0]


def test_init_base_builds_an_nllb_base_from_jsonl_and_finetune_trains_on_it(tmp_path, corpus_dir):
    from lslo.io import read_manifest
    from training.base import InitBaseSettings, run_init_base

    english = (corpus_dir / "dev" / "eng.dev").read_text(encoding="utf-8").splitlines()
    french = (corpus_dir / "dev" / "fra.dev").read_text(encoding="utf-8").splitlines()
    data = tmp_path / "pairs.jsonl"
    data.write_text(
        "".join(
            json.dumps({"translation": {"en": e, "fr": f}}, ensure_ascii=False) + "\n" for e, f in zip(english, french)
        ),
        encoding="utf-8",
    )
    base = run_init_base(
        InitBaseSettings(data=data, out=tmp_path / "base", tokenizer="nllb", preset="test", vocab_size=300, dropout=0.0)
    )
    assert (base / "tokenizer.json").is_file()
    info = json.loads((base / "base_info.json").read_text())
    assert info["languages"] == ["eng_Latn", "fra_Latn"] and info["tokenizer"] == "nllb"
    args = finetune_args(
        base,
        data,
        tmp_path / "run",
        languages="auto",
        tiers=None,
        ranks="en=2,fr=4",
        epochs=1,
        split="auto",
        valid_share=0.1,
        select="best",
    )
    bundle = run_finetune(build_settings(FinetuneSettings, args))
    manifest = read_manifest(bundle)
    assert {c: v["rank"] for c, v in manifest.languages.items()} == {"eng_Latn": 2, "fra_Latn": 4}
    with pytest.raises(ConfigError, match="no M2M-100 language token"):
        run_init_base(InitBaseSettings(data=data, out=tmp_path / "m2m", languages="en,fr,mi", preset="test"))


def test_valid_path_is_read_for_every_data_form(tmp_path, corpus_dir):
    general = tmp_path / "general"
    rows = [("Help", "Aide"), ("Quit", "Quitter")]
    _write_moses(general, "valid", ("en", "fr"), rows)
    for data in (corpus_dir, _write_moses_dir(tmp_path / "opus")):
        corpus = read_corpus(data, "dev", DataReport(), valid_path=general)
        assert _segments(corpus.valid) == {frozenset({("en", e), ("fr", f)}) for e, f in rows}
    flores_valid = read_corpus(tmp_path / "opus", "auto", DataReport(), valid_path=corpus_dir).valid  # its dev
    assert flores_valid.size == 60


def _write_moses_dir(root):
    _write_moses(root, "Tatoeba", ("en", "fr"), EN_FR)
    return root


def test_one_language_under_two_codes_is_one_language(tmp_path):
    data = tmp_path / "d"
    _write_moses(data, "a", ("en", "fr"), EN_FR)
    _write_moses(data, "b", ("deu", "eng"), DE_EN)  # ISO 639-3 names of the same languages
    corpus = read_corpus(data, "auto", DataReport())
    assert sorted(corpus.train.languages) == ["de", "en", "fr"]
    assert _segments(corpus.train) == _expected()


def test_test_and_dev_names_anywhere_and_no_overlap_with_training(tmp_path):
    data = tmp_path / "d"
    _write_moses(data, "Tatoeba", ("en", "fr"), EN_FR + [("Help", "Aide")])
    _write_moses(data, "newstest2019", ("en", "fr"), [("Quit", "Quitter")])
    _write_moses(data, "IWSLT17.TED.dev2010", ("en", "fr"), [("Help", "Aide !")])  # shares "Help" with training
    report = DataReport()
    corpus = read_corpus(data, "auto", report)
    texts = {t for v in corpus.train.lines.values() for t in v}
    assert "Quitter" not in texts and "Help" not in texts and "Aide" not in texts
    assert corpus.valid.lines["fr"] == ["Aide !"]
    notes = " ".join(report.notes)
    assert "1 training segment(s) sharing a text with the validation or test data" in notes
    assert "valid: IWSLT17.TED.dev2010.en-fr" in notes and "test: newstest2019.en-fr" in notes
    test = read_test_data(data, "auto", DataReport())
    assert test.lines["fr"] == ["Quitter"]
    report = DataReport()
    assert (
        read_test_data(data, "devtest", report) is None and "give auto, test, valid, train or all" in report.problems[0]
    )


def test_empty_sides_and_blank_lines_are_skipped_not_fatal(tmp_path):
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text(
        '{"translation": {"en": "Hi", "fr": ""}}\n{"translation": {"en": "a", "fr": "b"}}\n', encoding="utf-8"
    )
    report = DataReport()
    assert read_corpus(jsonl, "auto", report).train.size == 1 and not report.problems
    tsv = tmp_path / "t.tsv"
    tsv.write_text("en\tfr\na\tb\n\n", encoding="utf-8")
    report = DataReport()
    assert read_corpus(tsv, "auto", report).train.size == 1 and not report.problems


def test_valid_share_zero_means_no_validation_unless_valid_is_given(tmp_path, base_dir, corpus_dir):
    def valid_of(**values):
        settings = TrainSettings(
            base=base_dir, data=corpus_dir, out=tmp_path / "o", languages="en,fr", split="train", **values
        )
        problems: list[str] = []
        found = training_data(settings, AutoTokenizer.from_pretrained(base_dir), problems)
        assert not problems
        return found.valid

    assert valid_of().size == 60  # training on train: FLORES dev validates
    assert valid_of(valid_share=0) is None  # the paper's way, and the demo's pretraining: no validation
    assert valid_of(valid_share=0, valid=corpus_dir).size == 60  # --valid is always honoured


def test_a_valid_path_with_a_test_part_but_no_valid_part_is_refused(tmp_path):
    _write_moses(tmp_path / "d", "test", ("en", "fr"), EN_FR)
    _write_moses(tmp_path / "d", "train", ("en", "fr"), [("Help", "Aide")])
    report = DataReport()
    assert read_test_data(tmp_path / "d", "valid", report) is None
    assert any("has no valid part" in p and "test part is not validation data" in p for p in report.problems)
    _write_moses(tmp_path / "p", "general", ("en", "fr"), EN_FR)
    report = DataReport()
    assert read_test_data(tmp_path / "p", "valid", report).size == len(EN_FR)
    assert any("all of it validates" in n for n in report.notes)
