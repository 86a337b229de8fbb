"""The training loop shared by every recipe: token-budget batches of mixed directions, gradient
accumulation, mixed precision, DDP, per-epoch hooks (pruning, evaluation), checkpoints and a JSON-lines log.

Loss normalisation makes data parallelism exact: each rank sums its tokens' losses and divides by the
number of target tokens in the whole optimizer step (known to every rank, since all ranks build the same
global batches), times the world size that DDP's gradient averaging divides by again. Two processes then
compute the same update as one process over the same global batches, up to float summation order.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from transformers.models.m2m_100.modeling_m2m_100 import shift_tokens_right

from lslo.adapters.handle import LSLoHandle
from training.checkpoint import Position, save_checkpoint
from training.distributed import DistInfo, collective_device
from training.pairs import Example, batch_indices, collate
from training.progress import progress
from training.settings import TrainSettings


def read_log(path: Path) -> list[dict[str, Any]]:
    """The records of a ``log.jsonl`` (every process that wrote to it, in order)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class JsonlLog:
    """Append-only JSON-lines log written by rank 0."""

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = path
        self.enabled = enabled
        self.started = time.time()
        # What earlier processes wrote here (a resumed run continues their log).
        self.earlier: list[dict[str, Any]] = []
        if enabled and path.is_file():
            self.earlier = read_log(path)

    def earlier_seconds(self) -> float:
        """Wall time of the earlier processes: each one's last timestamp (times restart at each "start")."""
        total, last = 0.0, 0.0
        for record in self.earlier:
            if record.get("event") == "start":
                total, last = total + last, 0.0
            last = max(last, float(record.get("time", 0.0)))
        return total + last

    def earlier_evaluations(self) -> list[dict[str, Any]]:
        """Per-epoch evaluations logged by earlier processes, one per epoch (the latest), in epoch order."""
        by_epoch = {r["epoch"]: {"epoch": r["epoch"], **r["groups"]} for r in self.earlier if r.get("event") == "eval"}
        return [by_epoch[e] for e in sorted(by_epoch)]

    def write(self, event: str, **fields: Any) -> None:
        if not self.enabled:
            return
        record = {"event": event, "time": round(time.time() - self.started, 3), **fields}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, default=float) + "\n")


def lr_at(step: int, peak: float, warmup: int, total: int, schedule: str) -> float:
    """Learning rate for 1-based optimizer step ``step``: linear warm-up, then the chosen decay."""
    step = max(step, 1)
    if warmup > 0 and step <= warmup:
        return peak * step / warmup
    if schedule == "constant":
        return peak
    if schedule == "inverse_sqrt":
        return peak * math.sqrt(max(warmup, 1) / step)
    return peak * max(0.0, (total - step) / max(total - warmup, 1))  # linear


@dataclass
class TrainingRun:
    settings: TrainSettings
    model: nn.Module  # the Hugging Face model
    trained: nn.Module  # ``model`` or its DDP wrapper
    examples: list[Example]
    optimizer: torch.optim.Optimizer
    pad_id: int
    device: torch.device
    info: DistInfo
    log: JsonlLog
    peak_lr: float
    lslo: LSLoHandle | None = None
    autocast: torch.dtype | None = None
    scaler: torch.amp.GradScaler | None = None
    position: Position = field(default_factory=Position)
    on_epoch_start: Callable[[int], None] | None = None
    on_epoch_end: Callable[[int], None] | None = None
    settings_record: dict[str, Any] = field(default_factory=dict)
    sample: Callable[[int], list[Example]] | None = None  # examples of each epoch, when drawn afresh per epoch
    stop_requested: bool = False  # set by an epoch-end hook (early stopping): the run ends after that epoch

    def batches(self, epoch: int) -> list[list[list[int]]]:
        """Optimizer steps of ``epoch``: each a list of ``accum`` global batches (example indices).

        With ``sample``, ``examples`` become that epoch's first."""
        if self.sample is not None:
            self.examples = self.sample(epoch)
        costs = [e.cost for e in self.examples]
        batches = batch_indices(costs, self.settings.max_tokens, self.settings.seed, epoch)
        k = self.settings.accum
        return [batches[i : i + k] for i in range(0, len(batches), k)]

    def release(self) -> None:
        """Drop the DDP wrapper once training is over (``trained`` becomes ``model``).

        DDP's reducer holds the process group; see ``training.distributed.leaving_together``.
        """
        self.trained = self.model

    @cached_property
    def steps_per_epoch(self) -> int:
        """The same every epoch: batch boundaries depend only on the sorted lengths, not on the shuffle (with
        examples drawn per epoch, epoch 1's count stands for all)."""
        return len(self.batches(1))

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.settings.epochs

    @cached_property
    def warmup(self) -> int:
        if self.settings.warmup_steps is not None:
            return self.settings.warmup_steps
        return max(1, round(0.05 * self.total_steps))


def _routing(run: TrainingRun, src: list[str], tgt: list[str]):
    return run.lslo.route(src, tgt) if run.lslo is not None else nullcontext()


def train_step(run: TrainingRun, group: list[list[int]]) -> tuple[float, int]:
    """One optimizer step over ``group``; returns (summed token loss on this rank, target tokens in the step)."""
    s, info = run.settings, run.info
    lr = lr_at(run.position.global_step + 1, run.peak_lr, run.warmup, run.total_steps, s.lr_schedule)
    for g in run.optimizer.param_groups:
        g["lr"] = lr
    step_tokens = sum(len(run.examples[i].labels) for batch in group for i in batch)
    local_loss = 0.0
    for micro, batch_ids in enumerate(group):
        rows = batch_ids[info.rank :: info.world_size]
        weight = 1.0
        if not rows:  # fewer rows than ranks: a zero-weighted dummy keeps DDP's collective calls aligned
            rows, weight = batch_ids[:1], 0.0
        batch = collate([run.examples[i] for i in rows], run.pad_id).to(run.device)
        last = micro == len(group) - 1
        sync = (
            nullcontext()
            if last or not isinstance(run.trained, nn.parallel.DistributedDataParallel)
            else run.trained.no_sync()
        )
        amp = torch.autocast(run.device.type, dtype=run.autocast) if run.autocast else nullcontext()
        decoder_input_ids = shift_tokens_right(batch.labels, run.pad_id, run.model.config.decoder_start_token_id)
        with sync, amp, _routing(run, batch.src_langs, batch.tgt_langs):
            logits = run.trained(
                input_ids=batch.input_ids, attention_mask=batch.attention_mask, decoder_input_ids=decoder_input_ids
            ).logits  # (rows, tgt_len, vocab)
            token_loss = F.cross_entropy(
                logits.float().view(-1, logits.size(-1)),
                batch.labels.view(-1),
                ignore_index=-100,
                reduction="sum",
                label_smoothing=s.label_smoothing,
            )
            loss = token_loss * (weight * info.world_size / step_tokens)
            if run.scaler is not None:
                run.scaler.scale(loss).backward()
            else:
                loss.backward()
        local_loss += float(token_loss.detach()) * weight
    params = [p for g in run.optimizer.param_groups for p in g["params"]]
    if run.scaler is not None:
        run.scaler.unscale_(run.optimizer)
    if s.clip_norm > 0:
        torch.nn.utils.clip_grad_norm_(params, s.clip_norm)
    if run.scaler is not None:
        run.scaler.step(run.optimizer)
        run.scaler.update()
    else:
        run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    return local_loss, step_tokens


def _global_mean_loss(run: TrainingRun, loss_sum: float, tokens: int) -> float:
    if run.info.enabled:
        t = torch.tensor([loss_sum], dtype=torch.float64, device=collective_device(run.device))
        dist.all_reduce(t)
        loss_sum = float(t.item())
    return loss_sum / max(tokens, 1)


def checkpoint(run: TrainingRun) -> None:
    save_checkpoint(run.settings.out, run.model, run.optimizer, run.position, run.settings_record, run.info, run.scaler)


def train(run: TrainingRun) -> bool:
    """Run from ``run.position`` to the end; returns False when stopped early by ``stop_after_steps``."""
    s = run.settings
    run.log.write(
        "start",
        steps_per_epoch=run.steps_per_epoch,
        total_steps=run.total_steps,
        warmup=run.warmup,
        examples=len(run.examples),
        world_size=run.info.world_size,
        position=vars(run.position),
    )
    while run.position.epoch <= s.epochs and not run.stop_requested:
        epoch = run.position.epoch
        if run.on_epoch_start:
            run.on_epoch_start(epoch)
        totals = _train_epoch(run, epoch)
        if totals is None:
            return False
        epoch_loss, epoch_tokens = totals
        run.position = Position(epoch + 1, 0, run.position.global_step)
        run.log.write("epoch", epoch=epoch, loss=epoch_loss / max(epoch_tokens, 1), step=run.position.global_step)
        checkpoint(run)
        if run.on_epoch_end:
            run.on_epoch_end(epoch)
    run.log.write("done", step=run.position.global_step)
    return True


def _train_epoch(run: TrainingRun, epoch: int) -> tuple[float, int] | None:
    """The steps of ``epoch`` from ``run.position``: (its loss x tokens, its tokens), or None when stopped by
    ``stop_after_steps``. Logs the loss every ``log_every`` steps and checkpoints every ``save_every``."""
    s = run.settings
    groups = run.batches(epoch)
    bar = progress(
        len(groups),
        f"epoch {epoch}/{s.epochs}",
        initial=run.position.step_in_epoch,
        enabled=s.progress and run.info.is_main,
    )
    window_loss, window_tokens, epoch_loss, epoch_tokens = 0.0, 0, 0.0, 0
    for index in range(run.position.step_in_epoch, len(groups)):
        loss_sum, tokens = train_step(run, groups[index])
        run.position.step_in_epoch = index + 1
        run.position.global_step += 1
        window_loss += loss_sum
        window_tokens += tokens
        bar.update(1)
        if run.position.global_step % s.log_every == 0:
            mean = _global_mean_loss(run, window_loss, window_tokens)
            epoch_loss += mean * window_tokens
            epoch_tokens += window_tokens
            bar.set_postfix(loss=f"{mean:.3f}")
            run.log.write(
                "step",
                epoch=epoch,
                step=run.position.global_step,
                loss=mean,
                lr=run.optimizer.param_groups[0]["lr"],
                tokens=window_tokens,
            )
            window_loss, window_tokens = 0.0, 0
        stop = s.stop_after_steps is not None and run.position.global_step >= s.stop_after_steps
        if stop or run.position.global_step % s.save_every == 0:
            checkpoint(run)
        if stop:
            bar.close()
            run.log.write("stopped", step=run.position.global_step)
            return None
    bar.close()
    if window_tokens:
        mean = _global_mean_loss(run, window_loss, window_tokens)
        epoch_loss += mean * window_tokens
        epoch_tokens += window_tokens
    return epoch_loss, epoch_tokens
