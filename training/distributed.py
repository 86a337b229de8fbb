"""Process-group set-up for ``torchrun`` (NCCL on GPUs, gloo on CPU)."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

from lslo.devices import resolve_device


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device_choice: str) -> tuple[DistInfo, torch.device]:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); otherwise a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), resolve_device(device_choice)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_choice, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank, world, local_rank), device


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        gc.collect()  # wrappers released just before may sit in reference cycles, still holding the group
        dist.destroy_process_group()


def collective_device(device: torch.device) -> torch.device:
    """Where a tensor sent between ranks lives: the GPU with NCCL, the CPU with gloo."""
    return device if device.type == "cuda" else torch.device("cpu")


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


@contextmanager
def leaving_together(info: DistInfo, release: Callable[[], None]) -> Iterator[None]:
    """Leave the process group when the block ends: all ranks together after success, at once after an error.

    ``release`` drops what holds the group (the DDP wrapper: its reducer keeps a reference), so that the group
    is torn down now rather than at interpreter exit; a gloo group destroyed that late was seen to abort the
    process ("terminate called without an active exception", about one two-process run in ten) after all
    outputs were written. A run that succeeds waits at a barrier first, as rank 0 writes the outputs while the
    others are done; after an error there is no barrier, since the other ranks may never get there, and
    torchrun stops them.
    """
    try:
        yield
    except BaseException:
        release()
        shutdown(info)
        raise
    barrier(info)
    release()
    shutdown(info)
