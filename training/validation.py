"""Validation during training: the loss and chrF++ on held-out data after every epoch, the best epoch kept,
early stopping, and the base model's own scores (measured before the first step) for the ship gate.

The validation loss is the mean token cross-entropy (no label smoothing) of the validation pairs, teacher-forced,
each row routed through its language pair's adapters; every rank scores a share and the sums are all-reduced, so
all ranks reach the same decisions. chrF++ is measured by rank 0 on a sample (``--valid-chrf-sents`` rows, greedy
decoding) and sent to the other ranks.

The best epoch is the one with the lowest loss (``--select-by loss``) or the highest chrF++ (``chrf``: what a
reader sees, on a sample) among the eligible ones: with pruning, only epochs at the schedule's final ratio are
(an earlier, denser epoch is not the model that was asked for). Its trainable tensors are kept in
``<out>/best.safetensors`` and the history in ``<out>/validation.json``, both written atomically, so a resumed
run continues the comparison.
"""

from __future__ import annotations

import json
import os
import random
import sys
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers.models.m2m_100.modeling_m2m_100 import shift_tokens_right

from lslo.engine.generation import GenerationSettings, translate
from lslo.errors import ConfigError
from training.checkpoint import restore_trained, trained_state
from training.distributed import barrier, collective_device
from training.flores import ParallelSplit
from training.loop import TrainingRun
from training.metrics import chrf_pp
from training.pairs import Example, batch_indices, build_examples, collate

BEST_FILE = "best.safetensors"
HISTORY_FILE = "validation.json"
CHRF_BATCH = 16  # rows per generation batch of the chrF++ sample


@dataclass
class Score:
    loss: float
    chrf: float | None

    def to_json(self) -> dict[str, Any]:
        return {"loss": round(self.loss, 5), "chrf": None if self.chrf is None else round(self.chrf, 2)}


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value, indent=1), encoding="utf-8")
    os.replace(tmp, path)


class Validator:
    """Scores the model on the validation pairs; keeps the best epoch; says when to stop."""

    def __init__(
        self,
        run: TrainingRun,
        tokenizer: Any,
        valid: ParallelSplit,
        pairs: Sequence[tuple[str, str]],
        eligible_from: int = 1,
    ) -> None:
        s = run.settings
        self.run, self.tokenizer, self.eligible_from = run, tokenizer, eligible_from
        present = [p for p in pairs if p[0] in valid.languages and p[1] in valid.languages]
        self.examples: list[Example] = build_examples(tokenizer, valid, list(valid.languages), s.max_len, present)
        if s.valid_pairs is not None and len(self.examples) > s.valid_pairs:  # many-way data: n(n-1) per segment
            kept = sorted(random.Random(s.seed).sample(range(len(self.examples)), s.valid_pairs))
            self.examples = [self.examples[i] for i in kept]
        rows = [(e.segment, e.src, e.tgt) for e in self.examples]
        self.sample = random.Random(s.seed).sample(rows, min(s.valid_chrf_sents, len(rows)))
        self.valid = valid
        self.history: dict[str, Any] = {
            "baseline": None,
            "epochs": [],
            "best": None,
            "segments": valid.size,
            "pairs": len(self.examples),
        }
        path = s.out / HISTORY_FILE
        if s.resume and path.is_file():
            self.history = json.loads(path.read_text(encoding="utf-8"))

    @property
    def empty(self) -> bool:
        return not self.examples

    @torch.no_grad()
    def loss(self) -> float:
        run, info = self.run, self.run.info
        was_training = run.model.training
        run.model.eval()
        costs = [e.cost for e in self.examples]
        batches = batch_indices(costs, run.settings.max_tokens, seed=0, epoch=0, shuffle=False)
        total, tokens = 0.0, 0
        for batch_ids in batches[info.rank :: info.world_size]:
            batch = collate([self.examples[i] for i in batch_ids], run.pad_id).to(run.device)
            start = run.model.config.decoder_start_token_id
            routing = run.lslo.route(batch.src_langs, batch.tgt_langs) if run.lslo is not None else nullcontext()
            with routing:
                logits = run.model(
                    input_ids=batch.input_ids,
                    attention_mask=batch.attention_mask,
                    decoder_input_ids=shift_tokens_right(batch.labels, run.pad_id, start),
                ).logits
            total += float(
                F.cross_entropy(
                    logits.float().view(-1, logits.size(-1)), batch.labels.view(-1), ignore_index=-100, reduction="sum"
                )
            )
            tokens += batch.target_tokens
        run.model.train(was_training)
        if info.enabled:
            sums = torch.tensor([total, float(tokens)], dtype=torch.float64, device=collective_device(run.device))
            dist.all_reduce(sums)
            total, tokens = float(sums[0]), int(sums[1])
        return total / max(tokens, 1)

    def chrf(self) -> float | None:
        """chrF++ of the sample, computed by rank 0 and sent to every rank."""
        if not self.sample:
            return None
        value = self._chrf() if self.run.info.is_main else 0.0
        if self.run.info.enabled:
            sent = torch.tensor([value], dtype=torch.float64, device=collective_device(self.run.device))
            dist.broadcast(sent, src=0)
            value = float(sent.item())
        return value

    @torch.no_grad()
    def _chrf(self) -> float:
        run = self.run
        was_training = run.model.training
        run.model.eval()
        ordered = sorted(self.sample, key=lambda r: len(self.valid.lines[r[1]][r[0]] or ""))
        hypotheses, references = [], []
        settings = GenerationSettings(num_beams=1, max_new_tokens=min(256, run.settings.max_len))
        for i in range(0, len(ordered), CHRF_BATCH):
            rows = ordered[i : i + CHRF_BATCH]
            texts = [self.valid.lines[src][seg] or "" for seg, src, _ in rows]
            out = translate(
                run.model, self.tokenizer, texts, [r[1] for r in rows], [r[2] for r in rows], settings, run.lslo
            )
            hypotheses += [o[0] for o in out]
            references += [self.valid.lines[tgt][seg] or "" for seg, _, tgt in rows]
        run.model.train(was_training)
        return chrf_pp(hypotheses, references)

    def score(self) -> Score:
        score = Score(self.loss(), self.chrf())
        barrier(self.run.info)  # the other ranks wait while rank 0 translates the chrF++ sample
        return score

    def baseline(self) -> None:
        """Score the model before its first step (the base alone: adapters start at zero)."""
        if self.history["baseline"] is None:
            score = self.score()
            self.history["baseline"] = score.to_json()
            self.run.log.write("valid", epoch=0, **score.to_json())
            self._save_history()

    def _save_history(self) -> None:
        if self.run.info.is_main:
            _write_json(self.run.settings.out / HISTORY_FILE, self.history)

    def after_epoch(self, epoch: int) -> None:
        """Score, keep the epoch if it is the best eligible one so far, and ask the loop to stop when patience is
        spent."""
        run = self.run
        score = self.score()
        self.history["epochs"] = [e for e in self.history["epochs"] if e["epoch"] < epoch]
        entry = {"epoch": epoch, **score.to_json()}
        self.history["epochs"].append(entry)
        best = self.history["best"]
        improved = epoch >= self.eligible_from and (best is None or self._better(entry, best))
        if improved:
            self.history["best"] = entry
            if run.info.is_main:
                tmp = run.settings.out / f".{BEST_FILE}.tmp"
                save_file(trained_state(run.model), str(tmp))
                os.replace(tmp, run.settings.out / BEST_FILE)
        run.log.write("valid", **entry, best=improved)
        self._save_history()
        self.check_patience(epoch)

    def check_patience(self, epoch: int) -> None:
        """Ask the loop to stop when ``--patience`` epochs have passed since the best one."""
        patience, best = self.run.settings.patience, self.history["best"]
        if patience is not None and best is not None and epoch - best["epoch"] >= patience:
            self.run.stop_requested = True
            self.run.log.write("early_stop", epoch=epoch, best_epoch=best["epoch"])

    def catch_up(self) -> None:
        """On resuming at an epoch boundary: validate the finished epoch if the run stopped between its
        checkpoint and its validation, and stop again if the run had already stopped early."""
        position = self.run.position
        finished = position.epoch - 1 if position.step_in_epoch == 0 else 0
        if finished and finished not in [e["epoch"] for e in self.history["epochs"]]:
            self.after_epoch(finished)
        elif finished:
            self.check_patience(finished)

    def _better(self, entry: dict[str, Any], best: dict[str, Any]) -> bool:
        if self.run.settings.select_by == "chrf":
            return entry["chrf"] > best["chrf"]
        return entry["loss"] < best["loss"]

    def restore_best(self) -> dict[str, Any] | None:
        """Load the best epoch's tensors into the model (when ``--select best``); the record for the manifest."""
        run = self.run
        best = self.history["best"]
        chosen = (
            best
            if run.settings.select == "best" and best is not None
            else (self.history["epochs"][-1] if self.history["epochs"] else None)
        )
        if chosen is None:
            return None
        last = self.history["epochs"][-1]["epoch"] if self.history["epochs"] else None
        if chosen["epoch"] != last:  # the model holds the last epoch; the best one is on disk
            path = run.settings.out / BEST_FILE
            restore_trained(run.model, load_file(str(path)), path)
        return {
            "selected_epoch": chosen["epoch"],
            "select": run.settings.select,
            "select_by": run.settings.select_by,
            "loss": chosen["loss"],
            "chrf": chosen["chrf"],
            "base_loss": self.history["baseline"]["loss"],
            "base_chrf": self.history["baseline"]["chrf"],
            "segments": self.history["segments"],
            "pairs": self.history["pairs"],
            "chrf_sample": len(self.sample),
            "epochs": self.history["epochs"],
        }


def attach_validation(
    run: TrainingRun,
    tokenizer: Any,
    valid: ParallelSplit | None,
    pairs: Sequence[tuple[str, str]],
    eligible_from: int = 1,
) -> Validator | None:
    """A Validator whose epoch hook runs after ``run``'s other epoch-end hook; None without validation data."""
    if valid is None:
        return None
    validator = Validator(run, tokenizer, valid, pairs, eligible_from)
    if validator.empty:
        if run.settings.valid is not None:
            raise ConfigError(
                [
                    f"--valid {run.settings.valid} has no segment in a trained direction "
                    f"({', '.join(f'{s}>{t}' for s, t in pairs)})"
                ],
                "inputs",
            )
        run.log.write("note", message="the validation data has no pair in a trained direction: no validation")
        print("note: the validation data has no pair in a trained direction: no validation", file=sys.stderr)
        return None
    earlier: Callable[[int], None] | None = run.on_epoch_end

    def hook(epoch: int) -> None:
        if earlier is not None:
            earlier(epoch)
        validator.after_epoch(epoch)

    run.on_epoch_end = hook
    if run.position.global_step == 0:
        validator.baseline()
    validator.catch_up()
    return validator


def validation_line(record: dict[str, Any]) -> str:
    """One line for the log and the terminal: the shipped epoch against the base alone."""

    def chrf(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    return (
        f"validation ({record['pairs']} pairs): epoch {record['selected_epoch']} ({record['select']} by "
        f"{record.get('select_by', 'loss')}) "
        f"loss {record['loss']:.4f} (base alone {record['base_loss']:.4f}), chrF++ {chrf(record['chrf'])} "
        f"(base alone {chrf(record['base_chrf'])}, {record['chrf_sample']} rows)"
    )
