"""Applying one step's logits to the requests: greedy choice, or a beam-search step and the reassignment of
beams to slots (``lslo.engine.search`` computes the step; this module moves the results into the slot state)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lslo.engine.constraints import ConstraintState, constrained_step
from lslo.engine.running import RunningRequest
from lslo.engine.search import BeamStep, beam_step
from lslo.engine.slots import SlotState

Copy = tuple[int, int, int]  # (row, from row, positions): a beam takes its parent's prefix
Write = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (rows, columns, tokens) written into the history


def advance_greedy(
    group: list[RunningRequest], logits: torch.Tensor, eos_id: int, writes: list[Write], device: torch.device
) -> list[RunningRequest]:
    """Greedy requests (one row each): the argmax token (as ``generate()``: on the raw logits); queues the
    history writes; returns the requests that are done."""
    tokens = logits.argmax(dim=-1)  # (B,)
    rows = torch.tensor([r.order[0] for r in group], device=device)
    columns = torch.tensor([r.position + 1 for r in group], device=device)
    writes.append((rows, columns, tokens))
    done = []
    for r, token in zip(group, tokens.tolist()):
        generated = r.position - len(r.prefix) + 2  # including this token
        r.tokens.append(token)
        if token == eos_id or generated >= r.max_new_tokens:
            r.sequences, r.scores = [list(r.tokens)], None
            done.append(r)
    return done


def advance_beams(
    slots: SlotState,
    group: list[RunningRequest],
    logits: torch.Tensor,
    k: int,
    eos_id: int,
    copies: list[Copy],
    writes: list[Write],
) -> list[RunningRequest]:
    """Requests of k beams: one ``beam_step`` (a ``constrained_step`` each for requests with constraints);
    updates scores and finished hypotheses, reassigns the running beams to the requests' slots (queuing a prefix
    copy where two beams share a parent, and the history writes); returns the requests that are done, their
    results collected."""
    log_probs = F.log_softmax(logits, dim=-1).view(len(group), k, -1)  # (B, k, V)
    constrained = [i for i, r in enumerate(group) if r.request.constraints]
    if not constrained:
        return _move(slots, group, _plain_step(slots, group, log_probs, eos_id), k, copies, writes)
    plain = [i for i, r in enumerate(group) if not r.request.constraints]
    done = []
    if plain:
        subgroup = [group[i] for i in plain]
        done += _move(slots, subgroup, _plain_step(slots, subgroup, log_probs[plain], eos_id), k, copies, writes)
    for i in constrained:
        r = group[i]
        if not r.constraint_states:
            r.constraint_states = [ConstraintState()] * k
        home = r.home
        step, states = constrained_step(
            log_probs[i],
            slots.running_score[r.order].tolist(),
            slots.finished_score[home].tolist(),
            slots.finished_flag[home].tolist(),
            r.constraint_states,
            r.request.constraints,
            _generated(r),
            r.max_new_tokens,
            r.length_penalty,
            r.num_return_sequences,
            eos_id,
        )
        r.constraint_states = states
        done += _move(slots, [r], step, k, copies, writes)
    return done


def _generated(r: RunningRequest) -> int:
    return r.position - len(r.prefix) + 1  # tokens generated before this step


def _plain_step(slots: SlotState, group: list[RunningRequest], log_probs: torch.Tensor, eos_id: int) -> BeamStep:
    device = slots.device
    order = torch.tensor([r.order for r in group], device=device)  # (B, k) physical, logical order
    home = torch.tensor([r.home for r in group], device=device)
    generated = torch.tensor([_generated(r) for r in group], device=device)
    limits = torch.tensor([r.max_new_tokens for r in group], device=device)
    penalties = torch.tensor([r.length_penalty for r in group], dtype=torch.float32, device=device)
    return beam_step(
        log_probs,
        slots.running_score[order],
        slots.finished_score[home],
        slots.finished_flag[home],
        generated,
        limits,
        penalties,
        eos_id,
    )


def _move(
    slots: SlotState, group: list[RunningRequest], result: BeamStep, k: int, copies: list[Copy], writes: list[Write]
) -> list[RunningRequest]:
    """Write one step's results into the group's slots: finished hypotheses, running beams (a prefix copy
    where two beams share a parent), history; returns the requests that are done, their results collected."""
    device = slots.device
    batch = len(group)
    order = torch.tensor([r.order for r in group], device=device)  # (B, k)
    home = torch.tensor([r.home for r in group], device=device)
    generated = torch.tensor([_generated(r) for r in group], device=device)
    column = torch.tensor([r.position + 1 for r in group], device=device)  # where this step's token goes
    if result.finished_source is not None:
        length = slots.max_length
        candidates = slots.history[order.gather(1, result.candidate_parents)]  # (B, 2k, L)
        candidates.scatter_(2, column[:, None, None].expand(batch, 2 * k, 1), result.candidate_tokens[..., None])
        pool = torch.cat((slots.finished_history[home], candidates), dim=1)  # (B, 3k, L)
        source = result.finished_source
        slots.finished_history[home] = pool.gather(1, source[..., None].expand(batch, k, length))
        lengths = torch.cat((slots.finished_length[home], (generated + 1)[:, None].expand(batch, 2 * k)), dim=1)
        slots.finished_length[home] = lengths.gather(1, source)
        slots.finished_score[home] = result.finished_scores
        slots.finished_flag[home] = result.finished_flags
    parents, done_flags = result.parents.tolist(), result.done.tolist()
    new_orders = []
    for r, parent_row in zip(group, parents):
        parent_slots = [r.order[p] for p in parent_row]
        new_order: list[int | None] = [None] * k
        claimed: set[int] = set()
        for j, p in enumerate(parent_slots):
            if p not in claimed:
                new_order[j] = p
                claimed.add(p)
        spare = [s for s in r.home if s not in claimed]
        for j, p in enumerate(parent_slots):
            if new_order[j] is None:
                s = spare.pop()
                new_order[j] = s
                copies.append((s, p, r.position + 1))
        r.order = new_order  # type: ignore[assignment]
        new_orders.append(new_order)
    targets = torch.tensor(new_orders, device=device)  # (B, k)
    writes.append((targets, column[:, None].expand(batch, k), result.tokens))
    slots.running_score[targets] = result.scores
    done = [r for r, finished in zip(group, done_flags) if finished]
    if done:
        collect_beams(slots, done)
    return done


def collect_beams(slots: SlotState, requests: list[RunningRequest]) -> None:
    """Each request's best ``num_return_sequences`` finished hypotheses (generated ids) and scores."""
    for r in requests:
        home = torch.tensor(r.home, device=slots.device)
        scores = slots.finished_score[home].tolist()
        lengths = slots.finished_length[home].tolist()
        histories = slots.finished_history[home]
        start = len(r.prefix)
        r.sequences = [histories[j, start : start + lengths[j]].tolist() for j in range(r.num_return_sequences)]
        r.scores = scores[: r.num_return_sequences]
