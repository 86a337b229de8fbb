"""LibreOffice's help (HTML pages aligned by paragraph id) and interface catalogs (.mo) as corpus sources, on
small installations built in the packages' real layouts and formats; directions drawn per segment and epoch."""

import json
from collections import Counter

import polib
import pytest
import torch

from conftest import TRAIN_LANGS
from lslo.errors import ConfigError
from training.corpus import CorpusSettings, run_corpus
from training.flores import ParallelSplit
from training.libreoffice import help_paragraphs, help_segments, strip_accelerators, ui_segments
from training.pairs import DirectionSampler, directions

PAGE = """<!DOCTYPE html>
<html lang="{lang}" dir="ltr"><head><meta charset="utf-8"><title>{title}</title>
<script type="text/javascript" src="help.js"></script></head>
<body><header id="TopLeftHeader"><p dir="auto">LibreOffice 7.4 Help</p></header>
<div id="DisplayArea" itemprop="softwareHelp">
<a name="bm_id1"></a><meta itemprop="keywords" content="Find toolbar">
<h1 id="hd_id701" dir="auto">{title}</h1>
<p id="par_id3147762" class="paragraph" dir="auto">{intro}</p>
<div class="notetext"><p id="par_id211" dir="auto">{shortcut_before} <span id="swlnsys_1" class="switchinline"><span
 hidden="true" id="MACtext_1" class="MAC"><span class="keycode">Command</span></span><span hidden="true"
 id="defaulttext_1"><span class="keycode">Ctrl</span></span></span><span class="keycode"> + F</span>{shortcut_after}</p>
</div>
<p id="par_id5" class="code" dir="auto">Dim a As Integer</p>
<div class="bascode"><p id="par_id6" dir="auto">MsgBox "x"</p></div>
<p id="par_id7" class="paragraph">{untranslated}</p>
<p id="par_id8" class="paragraph">Line one<br>line two &amp; more</p>
<p class="paragraph">No id, not a segment.</p>
</div></body></html>
"""

EN = dict(
    title="Find Bar",
    intro='The <span class="menuitem">Find</span> toolbar searches documents.',
    shortcut_before="Use the shortcut",
    shortcut_after=" to open it.",
    untranslated="This paragraph is not translated yet.",
)
FR = dict(
    title="Barre Rechercher",
    intro='La barre <span class="menuitem">Rechercher</span> cherche.',
    shortcut_before="Utilisez le raccourci",
    shortcut_after=" pour l'ouvrir.",
    untranslated="This paragraph is not translated yet.",
)


def _help_root(tmp_path, languages=(("en-US", EN), ("fr", FR))):
    root = tmp_path / "help"
    for locale, texts in languages:
        page = root / locale / "text" / "shared" / "find_toolbar.html"
        page.parent.mkdir(parents=True)
        page.write_text(PAGE.format(lang=locale, **texts), encoding="utf-8")
    return root


def _mo(root, locale, name, entries):
    """A real .mo catalog (written by polib) in the l10n package's layout."""
    catalog = polib.POFile()
    catalog.metadata = {"Content-Type": "text/plain; charset=UTF-8", "Language": locale}
    for entry in entries:
        catalog.append(polib.POEntry(**entry))
    path = root / locale / "LC_MESSAGES" / f"{name}.mo"
    path.parent.mkdir(parents=True, exist_ok=True)
    catalog.save_as_mofile(str(path))


def _ui_root(tmp_path):
    root = tmp_path / "resource"
    _mo(
        root,
        "fr",
        "cui",
        [
            dict(msgid="~Open", msgstr="~Ouvrir"),
            dict(msgid="Save _As", msgstr="Enregistrer _sous"),
            dict(msgid="Restart %PRODUCTNAME now?", msgstr="Redémarrer %PRODUCTNAME maintenant ?"),
            dict(msgid="Cannot open $(ARG1).", msgstr="Impossible d'ouvrir $(ARG1)."),
            dict(msgctxt="menu", msgid="Close", msgstr="Fermer"),
            dict(msgid="%1 file", msgid_plural="%1 files", msgstr_plural={0: "%1 fichier", 1: "%1 fichiers"}),
            dict(msgid="Untranslated", msgstr=""),
        ],
    )
    _mo(root, "ja", "cui", [dict(msgid="~Open", msgstr="開く(~O)"), dict(msgid="Close", msgstr="閉じる")])
    _mo(root, "zh_CN", "sw", [dict(msgid="Close", msgstr="关闭(_C)")])
    return root


def test_help_page_text_is_the_visible_default_text_without_markup_or_code():
    paragraphs = help_paragraphs(PAGE.format(lang="en-US", **EN))
    assert paragraphs == {
        "hd_id701": "Find Bar",
        "par_id3147762": "The Find toolbar searches documents.",
        "par_id211": "Use the shortcut Ctrl + F to open it.",  # the default variant, not the macOS one
        "par_id7": "This paragraph is not translated yet.",
        "par_id8": "Line one line two & more",
    }


def test_help_is_aligned_by_page_and_id_and_untranslated_paragraphs_are_left_out(tmp_path):
    table, description = help_segments(["en", "fr", "cy"], 300, _help_root(tmp_path))
    page = "text/shared/find_toolbar.html"
    assert table[("lo-help", page, "par_id211")] == {
        "en": "Use the shortcut Ctrl + F to open it.",
        "fr": "Utilisez le raccourci Ctrl + F pour l'ouvrir.",
    }
    assert table[("lo-help", page, "hd_id701")] == {"en": "Find Bar", "fr": "Barre Rechercher"}
    assert table[("lo-help", page, "par_id7")] == {"en": "This paragraph is not translated yet."}  # fr's copy dropped
    assert not any("cy" in texts for texts in table.values())  # LibreOffice has no Welsh help: no text, no error
    assert "en, fr" in description
    assert set(help_segments(["en", "fr"], 25, _help_root(tmp_path / "b"))[0]) == {
        ("lo-help", page, "hd_id701"),
        ("lo-help", page, "par_id8"),
    }  # --max-chars


def test_missing_help_and_interface_packages_are_named(tmp_path):
    with pytest.raises(ConfigError) as err:
        help_segments(["en", "fr", "de", "zh"], 300, _help_root(tmp_path))
    assert "apt-get install libreoffice-help-de libreoffice-help-zh-cn" in str(err.value)
    with pytest.raises(ConfigError) as err:
        ui_segments(["en", "fr", "cy"], 300, _ui_root(tmp_path))
    assert "apt-get install libreoffice-l10n-cy" in str(err.value)


def test_interface_strings_lose_accelerators_and_keep_placeholders(tmp_path):
    table, description = ui_segments(["en", "fr", "ja", "zh"], 300, _ui_root(tmp_path))
    assert table == {
        ("lo-ui", "Open"): {"en": "Open", "fr": "Ouvrir", "ja": "開く"},
        ("lo-ui", "Save As"): {"en": "Save As", "fr": "Enregistrer sous"},
        ("lo-ui", "Restart %PRODUCTNAME now?"): {
            "en": "Restart %PRODUCTNAME now?",
            "fr": "Redémarrer %PRODUCTNAME maintenant ?",
        },
        ("lo-ui", "Cannot open $(ARG1)."): {"en": "Cannot open $(ARG1).", "fr": "Impossible d'ouvrir $(ARG1)."},
        ("lo-ui", "Close"): {"en": "Close", "fr": "Fermer", "ja": "閉じる", "zh": "关闭"},
    }  # plural entries and untranslated ones are not segments
    assert "fr, ja, zh" in description


@pytest.mark.parametrize(
    "text, expected",
    [
        ("~File", "File"),
        ("Save ~As...", "Save As..."),
        ("ファイル(~F)", "ファイル"),
        ("打开(_O)", "打开"),
        ("_Yes", "Yes"),
        ("Save _As", "Save As"),
        ("%PRODUCTNAME_Portable", "%PRODUCTNAME_Portable"),
        ("snake_case", "snake_case"),
        ("Tab (A)", "Tab (A)"),
    ],
)
def test_accelerator_marks(text, expected):
    assert strip_accelerators(text) == expected


def test_corpus_command_combines_libreoffice_with_other_sources_and_counts_by_source(tmp_path):
    help_root, ui_root = _help_root(tmp_path), _ui_root(tmp_path)
    out = tmp_path / "data"
    run_corpus(
        CorpusSettings(
            out=out,
            languages="en,fr",
            sources="libreoffice-help,libreoffice-ui,cldr",
            dev=3,
            devtest=2,
            max_chars=300,
            libreoffice_help=help_root,
            libreoffice_ui=ui_root,
        )
    )
    english = {
        line
        for split in ("dev", "devtest", "train")
        for line in (out / split / f"eng.{split}").read_text(encoding="utf-8").splitlines()
    }
    assert {"Find Bar", "Use the shortcut Ctrl + F to open it.", "Save As", "Cannot open $(ARG1)."} <= english
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert set(stats["by_source"]) == {"libreoffice-help", "libreoffice-ui", "cldr"}
    for split, size in stats["splits"].items():  # every line of every file is counted under one source
        lines = (out / split / f"fra.{split}").read_text(encoding="utf-8").splitlines()
        assert (
            sum(stats["by_source"][s].get(split, {}).get("fr", 0) for s in stats["by_source"])
            == sum(1 for line in lines if line)
            and len(lines) == size
        )
    assert (
        stats["by_source"]["libreoffice-ui"]["train"]["fr"]
        + sum(stats["by_source"]["libreoffice-ui"].get(s, {}).get("fr", 0) for s in ("dev", "devtest"))
        == 5
    )


def _split(rows):
    languages = ("en", "fr", "de")
    lines = {c: [row.get(c) for row in rows] for c in languages}
    return ParallelSplit("train", languages, lines, {})


def test_direction_sampler_draws_per_segment_deterministically_within_the_chosen_directions(tokenizer):
    rows = [{"en": "a", "fr": "b", "de": "c"}, {"en": "d", "fr": "e"}, {"de": "f"}] * 30
    split = _split(rows)
    sampler = DirectionSampler(tokenizer, split, ["en", "fr", "de"], 2, seed=4)
    first = sampler(1)
    assert [(e.segment, e.src, e.tgt) for e in first] == [
        (e.segment, e.src, e.tgt) for e in DirectionSampler(tokenizer, split, ["en", "fr", "de"], 2, seed=4)(1)
    ]
    per_segment = Counter(e.segment for e in first)
    for seg, row in enumerate(rows):
        present = len(row)
        assert per_segment.get(seg, 0) == min(2, present * (present - 1)), seg
    pairs = {(e.segment, e.src, e.tgt) for e in first}
    assert len(pairs) == len(first)  # without replacement
    assert {(s, t) for _, s, t in pairs} <= set(directions(["en", "fr", "de"]))
    two_way = [(e.src, e.tgt) for e in first if e.segment == 1]
    assert sorted(two_way) == [("en", "fr"), ("fr", "en")]
    later = sampler(2)
    assert [(e.segment, e.src, e.tgt) for e in later] != [(e.segment, e.src, e.tgt) for e in first]
    drawn = Counter((e.src, e.tgt) for epoch in range(1, 6) for e in sampler(epoch) if e.segment % 3 == 0)
    assert set(drawn) == set(directions(["en", "fr", "de"]))  # all six directions of a three-way segment come up
    chosen = DirectionSampler(tokenizer, split, ["en", "fr", "de"], 5, seed=4, chosen=[("en", "fr")])(1)
    assert {(e.src, e.tgt) for e in chosen} == {("en", "fr")} and len(chosen) == 60
    for e in first:  # each example holds its own segment's texts
        assert e.source_ids == tuple(sampler.encoded[e.src][e.segment])
        assert e.labels == tuple(sampler.encoded[e.tgt][e.segment])


def _pretrain(base, data, out, **overrides):
    from training.recipes.finetune import PretrainSettings, run_finetune
    from training.settings import build_settings

    args = dict(
        base=base,
        data=data,
        out=out,
        languages=TRAIN_LANGS,
        epochs=2,
        max_tokens=600,
        threads=1,
        progress=False,
        seed=0,
        log_every=2,
        pairs_per_segment=1,
        valid_pairs=40,
        valid_chrf_sents=4,
        warmup_steps=5,
        save_every=4,
    )
    args.update(overrides)
    return run_finetune(build_settings(PretrainSettings, args), "pretrain")


def test_pretrain_draws_directions_per_epoch_resumes_exactly_and_snapshots(base_dir, corpus_dir, tmp_path):
    from safetensors.torch import load_file
    from transformers import M2M100ForConditionalGeneration

    from training.snapshot import SnapshotSettings, run_snapshot

    full = _pretrain(base_dir, corpus_dir, tmp_path / "full")
    log = [json.loads(line) for line in (tmp_path / "full" / "log.jsonl").read_text().splitlines()]
    start = next(e for e in log if e["event"] == "start")
    columns = [
        (corpus_dir / "train" / f"{stem}.train").read_text(encoding="utf-8").splitlines()
        for stem in ("eng", "fra", "deu", "nld")
    ]
    with_pairs = sum(1 for row in zip(*columns) if sum(bool(x) for x in row) >= 2)
    assert start["examples"] == with_pairs  # one direction drawn for each segment that has one
    history = json.loads((tmp_path / "full" / "validation.json").read_text())
    assert history["pairs"] == 40  # a seeded sample of the dev split's pairs
    steps = json.loads((tmp_path / "full" / "summary.json").read_text())["steps"]

    part = tmp_path / "part"
    assert _pretrain(base_dir, corpus_dir, part, stop_after_steps=steps - 3) == part
    snapshot = run_snapshot(SnapshotSettings(run=part, out=tmp_path / "snap", dtype="fp32"))
    state = load_file(str(part / "checkpoint" / "state.safetensors"))
    model = M2M100ForConditionalGeneration.from_pretrained(snapshot)
    for name, param in model.named_parameters():
        assert torch.equal(param.detach(), state[f"param.{name}"]), name
    info = json.loads((snapshot / "snapshot.json").read_text())
    assert (snapshot / "training.png").stat().st_size > 10_000
    assert info["global_step"] == steps - 3 and info["lr"] == pytest.approx(1e-3 * (5 / (steps - 3)) ** 0.5)
    half = run_snapshot(SnapshotSettings(run=part, out=tmp_path / "half"))
    assert M2M100ForConditionalGeneration.from_pretrained(half).model.shared.weight.dtype == torch.float16

    resumed = _pretrain(base_dir, corpus_dir, part, resume=True)
    a = M2M100ForConditionalGeneration.from_pretrained(full).state_dict()
    b = M2M100ForConditionalGeneration.from_pretrained(resumed).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_snapshot_refuses_what_it_cannot_read(base_dir, corpus_dir, tmp_path):
    from conftest import finetune_args
    from training.recipes.finetune import FinetuneSettings, run_finetune
    from training.settings import build_settings
    from training.snapshot import SnapshotSettings, run_snapshot

    with pytest.raises(ConfigError, match="holds no checkpoint"):
        run_snapshot(SnapshotSettings(run=tmp_path / "none", out=tmp_path / "out"))
    lslo = tmp_path / "lslo"
    run_finetune(build_settings(FinetuneSettings, finetune_args(base_dir, corpus_dir, lslo, epochs=1)))
    with pytest.raises(ConfigError, match="only full-training runs"):
        run_snapshot(SnapshotSettings(run=lslo, out=tmp_path / "out"))


def test_training_curve_places_each_validation_at_its_epochs_last_step():
    from training.plots import training_curve

    records = [
        {"event": "valid", "epoch": 0, "loss": 9.0, "chrf": 0.5},
        {"event": "start"},
        {"event": "step", "step": 10, "loss": 8.0},
        {"event": "step", "step": 20, "loss": 7.0},
        {"event": "start"},
        {"event": "step", "step": 20, "loss": 7.5},  # resumed: step 20 logged again
        {"event": "epoch", "epoch": 1, "step": 25},
        {"event": "valid", "epoch": 1, "loss": 6.5, "chrf": 12.0},
        {"event": "step", "step": 30, "loss": 6.0},
        {"event": "epoch", "epoch": 2, "step": 50},
        {"event": "valid", "epoch": 2, "loss": 6.0, "chrf": None},
    ]
    assert training_curve(records) == {
        "train_loss": [(10, 8.0), (20, 7.5), (30, 6.0)],
        "valid_loss": [(0, 9.0), (25, 6.5), (50, 6.0)],
        "valid_chrf": [(0, 0.5), (25, 12.0)],
    }
