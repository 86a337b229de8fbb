"""Bad input: each problem gives a clear error before any training starts, and all of them at once."""

import subprocess
import sys

import pytest

from conftest import finetune_args
from lslo.errors import ConfigError
from training.recipes.finetune import FinetuneSettings, run_finetune
from training.settings import build_settings


def _problems(**kwargs) -> str:
    with pytest.raises(ConfigError) as err:
        run_finetune(build_settings(FinetuneSettings, kwargs))
    return str(err.value)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (dict(languages="en,fr,xx"), "no language token for 'xx'"),  # unknown to the base
        (dict(languages="en,fr,Not-A-Code"), "no language token for 'Not-A-Code'"),
        (dict(languages="en,fr,oc", tiers="H:en,fr;V:oc"), "the data has no text in oc"),
        (dict(ranks="en=2,fr=0,de=2,nl=2"), "rank of 'fr' is 0"),
        (dict(ranks="en=2,fr=-3,de=2,nl=2"), "rank of 'fr' is -3"),
        (dict(prune=1.0), "must be in [0, 1)"),
        (dict(prune=-0.1), "must be in [0, 1)"),
        (dict(prune=0.5, prune_start=2, prune_epochs=8, epochs=9), "E + k = 10 exceeds T = 9"),
        (dict(prune=0.5, prune_tiers="X"), "unknown tier"),
        (dict(layer_map="diagonal"), "neither a preset"),
    ],
)
def test_each_bad_input_is_named(base_dir, corpus_dir, tmp_path, overrides, message):
    assert message in _problems(**finetune_args(base_dir, corpus_dir, tmp_path / "out", **overrides))
    assert not (tmp_path / "out" / "log.jsonl").exists()  # nothing started


def test_language_missing_from_tokenizer(base_dir, corpus_dir, tmp_path):
    (corpus_dir.parent / "extra" / "dev").mkdir(parents=True, exist_ok=True)
    data = corpus_dir.parent / "extra"
    for stem in ("eng", "fra"):
        (data / "dev" / f"{stem}.dev").write_text("a\nb\n", encoding="utf-8")
    (data / "dev" / "zh_Hant.dev").write_text("c\nd\n", encoding="utf-8")
    text = _problems(
        **finetune_args(
            base_dir, data, tmp_path / "o", languages="en,fr,zh_Hant", tiers="H:en,fr;V:zh_Hant", ranks="2;2;8"
        )
    )
    assert "no language token for 'zh_Hant'" in text


def test_unreadable_base_directory(corpus_dir, tmp_path):
    text = _problems(**finetune_args(tmp_path / "nowhere", corpus_dir, tmp_path / "o"))
    assert "nowhere does not exist" in text
    (tmp_path / "empty").mkdir()
    assert "has no config.json" in _problems(**finetune_args(tmp_path / "empty", corpus_dir, tmp_path / "o"))


def test_every_problem_at_once(corpus_dir, tmp_path):
    text = _problems(
        **finetune_args(
            tmp_path / "nowhere",
            corpus_dir,
            tmp_path / "o",
            languages="en,fr,qq",
            ranks="en=2,fr=0,qq=2",
            prune=0.5,
            prune_start=3,
            prune_epochs=3,
            epochs=4,
        )
    )
    for part in (
        "nowhere does not exist",
        "'qq' is not a known language code",
        "rank of 'fr' is 0",
        "E + k = 6 exceeds T = 4",
    ):
        assert part in text, part


def test_checkpoint_needs_resume_and_resume_needs_checkpoint(base_dir, corpus_dir, tmp_path):
    out = tmp_path / "o"
    assert "holds no checkpoint" in _problems(**finetune_args(base_dir, corpus_dir, out, resume=True))
    run_finetune(
        build_settings(FinetuneSettings, finetune_args(base_dir, corpus_dir, out, epochs=1, stop_after_steps=1))
    )
    assert "already holds a checkpoint" in _problems(**finetune_args(base_dir, corpus_dir, out, epochs=1))


def test_cli_reports_type_errors_and_exits_2(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "finetune",
            "--base",
            str(tmp_path),
            "--data",
            str(tmp_path),
            "--epochs",
            "0",
            "--prune",
            "2",
            "--max-tokens",
            "3",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    for part in ("--out is required", "--epochs", "--max-tokens"):
        assert part in out.stderr, part
    config = tmp_path / "bad.yaml"
    config.write_text("epochs: 3\nbogus_option: 1\n")
    out = subprocess.run(
        [sys.executable, "-m", "training", "finetune", "--config", str(config)], capture_output=True, text=True
    )
    assert out.returncode == 2 and "unknown option 'bogus_option'" in out.stderr


def test_pickled_weights_are_never_loaded(base_dir, corpus_dir, tmp_path):
    """A base directory with only pytorch_model.bin (a pickle) is refused, not unpickled."""
    import shutil

    import torch

    from training.prepare import load_base_model

    pickled = tmp_path / "pickled"
    shutil.copytree(base_dir, pickled)
    (pickled / "model.safetensors").unlink()
    torch.save({"model.shared.weight": torch.zeros(1)}, pickled / "pytorch_model.bin")
    with pytest.raises(OSError):
        load_base_model(pickled, torch.device("cpu"))
    assert "has no model.safetensors" in _problems(**finetune_args(pickled, corpus_dir, tmp_path / "o"))
