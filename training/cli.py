"""``python -m training <command>`` (or ``torchrun --nproc_per_node N -m training <command>``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from lslo.cli.flags import add_arguments
from lslo.errors import AdapterFileError, ConfigError
from training.settings import Settings, build_settings


def _commands() -> dict[str, tuple[type[Settings], Callable[[Any], Any], str]]:
    from training.base import InitBaseSettings, run_init_base
    from training.corpus import CorpusSettings, run_corpus
    from training.export import ExportSettings, run_export
    from training.recipes.evaluate import EvaluateSettings, run_evaluate
    from training.recipes.finetune import FinetuneSettings, PretrainSettings, run_finetune
    from training.recipes.subspace import SubspaceSettings, run_subspace
    from training.recipes.weight_learning import WeightLearningSettings, run_weight_learning
    from training.snapshot import SnapshotSettings, run_snapshot

    return {
        "corpus": (CorpusSettings, run_corpus, "build a many-way parallel corpus (FLORES layout) from offline data"),
        "init-base": (InitBaseSettings, run_init_base, "train a tokenizer and create a random base model"),
        "pretrain": (
            PretrainSettings,
            lambda s: run_finetune(s, "pretrain"),
            "train a base model on the train split (full fine-tuning with from-scratch defaults)",
        ),
        "finetune": (FinetuneSettings, run_finetune, "Ft-all baseline (--method full) or LSLo with gradual pruning"),
        "weight-learning": (
            WeightLearningSettings,
            run_weight_learning,
            "learn source/target indexing per layer; writes layer_map.json",
        ),
        "subspace": (
            SubspaceSettings,
            run_subspace,
            "Intrinsic Subspace Estimation (--mode ise) or language-specific pruning (--mode lsp)",
        ),
        "evaluate": (EvaluateSettings, run_evaluate, "spBLEU / chrF++ by direction and resource group"),
        "export": (ExportSettings, run_export, "pack a base model and a bundle for serving (fp16 / bf16)"),
        "snapshot": (
            SnapshotSettings,
            run_snapshot,
            "the model of a full-training run's latest checkpoint, as a model directory",
        ),
    }


def main(argv: Sequence[str] | None = None) -> int:
    commands = _commands()
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="The paper's recipes: data, base model, Ft-all, LSLo with gradual pruning, Weight Learning, "
        "Intrinsic Subspace Estimation, evaluation. Every command also reads a YAML --config.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, (model, _, help_text) in commands.items():
        add_arguments(sub.add_parser(name, help=help_text, description=help_text), model)
    args = parser.parse_args(argv)
    model, run, _ = commands[args.command]
    try:
        settings = build_settings(model, args)
        run(settings)
    except (ConfigError, AdapterFileError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; continue with --resume (the last checkpoint is kept)", file=sys.stderr)
        return 130
    return 0
