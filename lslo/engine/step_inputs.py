"""What one decoder step reads, gathered from the running requests and the slot state: each row's token and
position, the live parts of the caches, the attention biases and which rows are whose beams."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from lslo.engine.running import RunningRequest
from lslo.engine.slots import SlotState


@dataclass
class StepInputs:
    tokens: torch.Tensor  # (n,) each row's input token
    positions: torch.Tensor  # (n,) its index in the row's decoder sequence (0 = start)
    self_cache: list[tuple[torch.Tensor, torch.Tensor]]  # per layer (keys, values), each (n, H, T, hd)
    cross_cache: list[tuple[torch.Tensor, torch.Tensor]]  # per layer, each (requests, H, S, hd)
    self_bias: torch.Tensor  # (n * H, 1, T): 0 where a row may attend, -inf elsewhere
    cross_bias: torch.Tensor  # (requests * H, 1, S)
    groups: torch.Tensor  # (requests, k): each request's rows, padded with its first
    ungroup: torch.Tensor  # (n,): each row's place in ``groups`` flattened


@dataclass(frozen=True)
class RowGroups:
    """Which rows are whose beams: changes only when requests are admitted, expanded to their beams or retired
    (the engine keeps one until then, so that a step turns no Python lists into tensors)."""

    groups: torch.Tensor  # (requests, k): each request's rows, padded with its first
    ungroup: torch.Tensor  # (n,): each row's place in ``groups`` flattened


def row_groups(running: Sequence[RunningRequest], rows: int, device: torch.device) -> RowGroups:
    """The ``RowGroups`` of live rows ``[0, rows)`` owned by ``running`` (request slots ``[0, len(running))``)."""
    width = max(r.num_beams for r in running)
    groups = [[0] * width for _ in running]
    ungroup = [0] * rows
    for r in running:
        row = groups[r.slot]
        for j, s in enumerate(r.home):
            row[j] = s
            ungroup[s] = r.slot * width + j
        for j in range(len(r.home), width):
            row[j] = r.home[0]
    return RowGroups(torch.tensor(groups, device=device), torch.tensor(ungroup, device=device))


def bucket(length: int, size: int, limit: int) -> int:
    """``length`` rounded up to a multiple of ``size``, at most ``limit`` (size 1: ``length``)."""
    return min(length + (-length) % size, limit)


def step_inputs(
    running: Sequence[RunningRequest], slots: SlotState, index: RowGroups, dtype: torch.dtype, shape_bucket: int = 1
) -> StepInputs:
    """Inputs of a decoder step over the live rows of ``index`` owned by ``running`` (request slots
    ``[0, len(running))``). The cache lengths T and S are rounded up to multiples of ``shape_bucket`` (the
    positions beyond a row's are masked), so that step shapes repeat; no value is read back from the device."""
    n, device, requests = index.ungroup.shape[0], slots.device, len(running)
    position = slots.position[:n]
    longest = bucket(max(r.position for r in running) + 1, shape_bucket, slots.max_length)
    source_length = max(len(r.request.source_ids) for r in running)
    source = bucket(source_length, shape_bucket, slots.source_capacity)
    tokens = slots.history[:n].gather(1, position[:, None]).squeeze(1)
    self_cache = [(kv[0, :n, :, :longest], kv[1, :n, :, :longest]) for kv in slots.self_kv]
    cross_cache = [(k[:requests, :, :source], v[:requests, :, :source]) for k, v in zip(slots.cross_k, slots.cross_v)]
    self_bias = torch.zeros(n, longest, dtype=dtype, device=device)
    self_bias.masked_fill_(torch.arange(longest, device=device)[None, :] > position[:, None], float("-inf"))
    cross_bias = torch.zeros(requests, source, dtype=dtype, device=device)
    cross_bias.masked_fill_(
        torch.arange(source, device=device)[None, :] >= slots.source_length[:requests, None], float("-inf")
    )
    return StepInputs(
        tokens,
        position,
        self_cache,
        cross_cache,
        self_bias.repeat_interleave(slots.heads, dim=0)[:, None, :],
        cross_bias.repeat_interleave(slots.heads, dim=0)[:, None, :],
        index.groups,
        index.ungroup,
    )


def source_batch(
    sources: Sequence[Sequence[int]], width: int, pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Source rows padded to ``width``: ids (m, width) and their mask (m, width), True on real tokens."""
    ids = torch.full((len(sources), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sources), width), dtype=torch.bool)
    for i, row in enumerate(sources):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = True
    return ids.to(device), mask.to(device)
