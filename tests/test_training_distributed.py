"""Leaving the process group: the order of barrier, release and teardown, and that release frees DDP's hold."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch
import torch.distributed as dist
from torch import nn

import training.distributed as distributed
from training.distributed import DistInfo, leaving_together

TWO = DistInfo(rank=1, world_size=2, local_rank=1)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    monkeypatch.setattr(distributed, "barrier", lambda info: seen.append("barrier"))
    monkeypatch.setattr(distributed, "shutdown", lambda info: seen.append("shutdown"))
    return seen


def test_success_waits_for_every_rank_then_releases_then_leaves(calls):
    with leaving_together(TWO, lambda: calls.append("release")):
        calls.append("work")
    assert calls == ["work", "barrier", "release", "shutdown"]


def test_a_return_inside_the_block_also_leaves_together(calls):
    def body() -> int:
        with leaving_together(TWO, lambda: calls.append("release")):
            return 7

    assert body() == 7 and calls == ["barrier", "release", "shutdown"]


def test_an_error_leaves_at_once_without_a_barrier(calls):
    with pytest.raises(KeyboardInterrupt):
        with leaving_together(TWO, lambda: calls.append("release")):
            raise KeyboardInterrupt
    assert calls == ["release", "shutdown"]  # a barrier here could wait for ranks that never come


def test_release_lets_the_ddp_wrapper_go_before_the_group(tmp_path):
    # A one-process gloo group is enough to build a real DDP reducer, which holds the group.
    from training.loop import TrainingRun

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        model = nn.Linear(3, 2)
        ddp = nn.parallel.DistributedDataParallel(model)
        ddp(torch.randn(4, 3)).sum().backward()  # the reducer has run once
        run = TrainingRun.__new__(TrainingRun)  # only the two fields release touches
        run.model, run.trained = model, ddp
        alive = weakref.ref(ddp)
        del ddp
        gc.collect()
        assert alive() is not None  # the run still holds it
        run.release()
        gc.collect()
        assert alive() is None and run.trained is model
    finally:
        dist.destroy_process_group()
