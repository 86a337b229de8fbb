"""One step of beam search for a group of requests with the same beam count, with ``generate()``'s semantics.

Hugging Face's beam search (``early_stopping=True``, as ``lslo`` always asks for it) per request:

- candidates: the top ``2k`` of ``running score + log_softmax(logits)`` over all ``k * vocab`` continuations;
- a candidate among the first ``k`` that ends (EOS, or the last allowed token) is offered to the finished list
  with score ``sum log p / generated_length ** length_penalty``; the finished list keeps the best ``k``;
- the best ``k`` candidates that do not end are the running beams of the next step;
- the request is done when its ``k`` finished slots are full, or at ``max_new_tokens``.

``generate()`` runs a whole batch until every request is done; here a request leaves as soon as it is done, which
changes nothing for it (with ``early_stopping=True`` a full finished list never changes again). The tensor
operations are the same ones in the same order, so ties break the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

NEG = -1.0e9


@dataclass
class BeamStep:
    """Results for B requests of k beams (all (B, k) unless said)."""

    parents: torch.Tensor  # logical index (0..k-1) of each new running beam's parent
    tokens: torch.Tensor  # each new running beam's token
    scores: torch.Tensor  # running scores (float32)
    finished_scores: torch.Tensor
    finished_flags: torch.Tensor
    finished_source: torch.Tensor | None  # (B, k) index into [old finished (k) | candidates (2k)]; None: unchanged
    candidate_parents: torch.Tensor  # (B, 2k) logical parent of each candidate
    candidate_tokens: torch.Tensor  # (B, 2k)
    done: torch.Tensor  # (B,) bool


def beam_step(
    log_probs: torch.Tensor,
    running_scores: torch.Tensor,
    finished_scores: torch.Tensor,
    finished_flags: torch.Tensor,
    generated: torch.Tensor,
    max_new_tokens: torch.Tensor,
    length_penalty: torch.Tensor,
    eos_id: int,
) -> BeamStep:
    """log_probs (B, k, V) float32; running/finished scores (B, k); finished_flags (B, k) bool;
    generated, max_new_tokens (B,) long: tokens generated before this step and the limit; length_penalty (B,)."""
    batch, k, vocab = log_probs.shape
    accumulated = (log_probs + running_scores[:, :, None]).reshape(batch, k * vocab)
    top_scores, top_index = torch.topk(accumulated, k=2 * k)  # (B, 2k)
    parents = top_index // vocab
    tokens = top_index % vocab
    at_limit = (generated + 1 >= max_new_tokens)[:, None]  # (B, 1)
    ends = (tokens == eos_id) | at_limit  # (B, 2k)

    # running beams of the next step: the best k candidates that do not end
    running = top_scores + ends.to(torch.float32) * NEG
    keep = torch.topk(running, k=k)[1]
    new_scores = running.gather(1, keep)
    new_parents = parents.gather(1, keep)
    new_tokens = tokens.gather(1, keep)

    # finished list: candidates among the first k that end, length-normalised, merged with the old list
    first_k = torch.zeros(2 * k, dtype=torch.bool, device=log_probs.device)
    first_k[:k] = True
    just_finished = ends & first_k[None, :]
    source = None
    if bool(just_finished.any()):
        lengths = (generated + 1).to(torch.float32)[:, None] ** length_penalty[:, None]  # (B, 1)
        candidates = top_scores / lengths
        full = finished_flags.all(dim=1, keepdim=True)
        candidates = candidates + full.to(torch.float32) * NEG
        candidates = candidates + (~just_finished) * NEG
        merged_scores = torch.cat((finished_scores, candidates), dim=1)  # (B, 3k)
        merged_flags = torch.cat((finished_flags, just_finished), dim=1)
        source = torch.topk(merged_scores, k=k)[1]
        finished_scores = merged_scores.gather(1, source)
        finished_flags = merged_flags.gather(1, source)
    done = finished_flags.all(dim=1) | at_limit[:, 0]
    return BeamStep(new_parents, new_tokens, new_scores, finished_scores, finished_flags, source, parents, tokens, done)
