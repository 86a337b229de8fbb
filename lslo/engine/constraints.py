"""Lexically constrained beam search: every returned hypothesis contains each of a request's constraints.

A constraint is a phrase the output must contain, given as one or more alternative token sequences (any one
satisfies it: a term may tokenize differently at the start of a sentence, after a space, or capitalised).
Glossary terms, do-not-translate terms and protected placeholders all become constraints.

The search is Dynamic Beam Allocation (Post & Vilar 2018, "Fast Lexically Constrained Decoding with Dynamic
Beam Allocation for Neural Machine Translation"): at each step every beam proposes, besides the best
continuations of the whole beam, the next token of the constraint it is inside (or the first token of each
constraint not yet met) and its own best token; candidates are grouped into *banks* by the number of constraint
tokens they have met, the ``k`` beam slots are shared out evenly over the banks (slots a bank cannot fill go to
the best remaining candidates), and a hypothesis may only end (EOS) once all its constraints are met. A
hypothesis that leaves a constraint half-way loses that progress, as in the paper. Requests without constraints
never come here: they keep ``lslo.engine.search``'s vectorised step, token for token ``generate()``'s.

Per request this is a small Python loop over ``O(k * (C + 2))`` candidates (C: constraint tokens), so its cost
is per constrained request, not per vocabulary entry (not benchmarked yet).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lslo.engine.search import NEG, BeamStep

Constraint = tuple[tuple[int, ...], ...]  # alternatives, each a non-empty token sequence


def validate_constraints(constraints: tuple[Constraint, ...]) -> None:
    """ValueError unless every constraint has at least one alternative and every alternative is a non-empty
    sequence of non-negative ids."""
    for c, alternatives in enumerate(constraints):
        if not alternatives:
            raise ValueError(f"constraint {c} has no alternative")
        for alternative in alternatives:
            if not alternative or any(t < 0 for t in alternative):
                raise ValueError(f"constraint {c} has an empty alternative or a negative id")


def constrained_beams(num_beams: int, constraints: int, most: int = 8) -> int:
    """Beams for a request with ``constraints`` constraints: at least 4, one more than its constraints (a bank
    for each), at most ``most`` (unless it asked for more)."""
    return min(max(num_beams, 4, constraints + 1), max(num_beams, most))


@dataclass(frozen=True)
class ConstraintState:
    """One hypothesis's progress: the constraints it has met (and with how many tokens) and the one it is inside
    (constraint, alternative, tokens matched so far)."""

    met: tuple[tuple[int, int], ...] = ()  # (constraint, tokens of the alternative that met it)
    inside: tuple[int, int, int] | None = None

    def met_tokens(self) -> int:
        return sum(n for _, n in self.met) + (self.inside[2] if self.inside else 0)

    def complete(self, constraints: tuple[Constraint, ...]) -> bool:
        return len(self.met) == len(constraints)

    def wanted(self, constraints: tuple[Constraint, ...]) -> list[int]:
        """The tokens that make progress: the next one of the constraint it is inside, else the first token of
        every alternative of every constraint not met yet."""
        if self.inside is not None:
            c, a, j = self.inside
            return [constraints[c][a][j]]
        done = {c for c, _ in self.met}
        return sorted({alt[0] for c, alts in enumerate(constraints) if c not in done for alt in alts})

    def after(self, token: int, constraints: tuple[Constraint, ...]) -> ConstraintState:
        """The state once ``token`` is appended."""
        if self.inside is not None:
            c, a, j = self.inside
            alt = constraints[c][a]
            if alt[j] == token:
                if j + 1 == len(alt):
                    return ConstraintState(self.met + ((c, len(alt)),), None)
                return ConstraintState(self.met, (c, a, j + 1))
            # left half-way: the progress is lost; the token may start another constraint (below)
        done = {c for c, _ in self.met}
        for c, alts in enumerate(constraints):
            if c in done:
                continue
            for a, alt in enumerate(alts):
                if alt[0] == token:
                    if len(alt) == 1:
                        return ConstraintState(self.met + ((c, 1),), None)
                    return ConstraintState(self.met, (c, a, 1))
        return ConstraintState(self.met, None)


@dataclass
class _Candidate:
    score: float
    parent: int  # logical beam index
    token: int
    state: ConstraintState


def allocate(banks: dict[int, list[_Candidate]], k: int) -> list[_Candidate]:
    """``k`` candidates (fewer if there are fewer): each bank's best, the slots shared out evenly over the banks
    with the remainder to the banks with the most constraint tokens met, then slots left unfilled given to the
    best remaining candidates (higher banks first on equal score); best score first."""
    for bank in banks.values():
        bank.sort(key=lambda c: -c.score)
    order = sorted(banks, reverse=True)
    quota = {b: k // len(order) for b in order}
    for b in order[: k % len(order)]:
        quota[b] += 1
    chosen = [c for b in order for c in banks[b][: quota[b]]]
    rest = sorted((c for b in order for c in banks[b][quota[b] :]), key=lambda c: (-c.score, -c.state.met_tokens()))
    chosen += rest[: k - len(chosen)]
    return sorted(chosen, key=lambda c: -c.score)


def _candidates(
    log_probs: torch.Tensor,
    running_scores: list[float],
    states: list[ConstraintState],
    constraints: tuple[Constraint, ...],
    at_limit: bool,
    eos_id: int,
) -> tuple[dict[int, list[_Candidate]], list[_Candidate]]:
    """(banks: the continuing candidates by the number of constraint tokens they have met, ending: those that
    finish here). The candidates are the best 2k continuations overall, each beam's own best, and each token
    that advances a beam's constraints (k beams, log_probs (k, V))."""
    k, vocab = log_probs.shape
    scores = log_probs + torch.tensor(running_scores, dtype=log_probs.dtype, device=log_probs.device)[:, None]
    _, top_index = torch.topk(scores.reshape(-1), k=min(2 * k, k * vocab))
    best_own = scores.argmax(dim=1)  # (k,)
    proposals: set[tuple[int, int]] = {(int(i) // vocab, int(i) % vocab) for i in top_index.tolist()}
    for beam in range(k):
        if running_scores[beam] <= NEG / 2:  # a beam not yet started (first step) proposes nothing
            continue
        proposals.add((beam, int(best_own[beam])))
        proposals.update((beam, t) for t in states[beam].wanted(constraints))
    pairs = sorted(proposals)
    values = scores[[p for p, _ in pairs], [t for _, t in pairs]].tolist()
    banks: dict[int, list[_Candidate]] = {}
    ending: list[_Candidate] = []
    for (parent, token), value in zip(pairs, values):
        if value <= NEG / 2:
            continue
        state = states[parent].after(token, constraints)
        candidate = _Candidate(value, parent, token, state)
        if at_limit:  # every hypothesis ends here, whatever it met; one that met everything outranks it
            penalty = 0.0 if state.complete(constraints) else NEG / 4
            ending.append(_Candidate(value + penalty, parent, token, state))
        elif token == eos_id:
            if state.complete(constraints):
                ending.append(candidate)
        else:
            banks.setdefault(state.met_tokens(), []).append(candidate)
    return banks, ending


def _merge_finished(
    finished_scores: list[float], finished_flags: list[bool], ending: list[_Candidate], normaliser: float, k: int
) -> tuple[list[int], list[float], list[bool], bool]:
    """The best k of the old finished list and the ending candidates (scores divided by ``normaliser``):
    (their places in old list + ending, their scores, their flags, whether any ending candidate got in)."""
    pool: list[tuple[float, bool]] = list(zip(finished_scores, finished_flags))
    full = all(finished_flags)
    pool += [(c.score / normaliser if not full else NEG, not full) for c in ending]
    ranked = sorted(range(len(pool)), key=lambda i: -pool[i][0])[:k]
    changed = any(i >= k for i in ranked if pool[i][1])
    return ranked, [pool[i][0] for i in ranked], [pool[i][1] for i in ranked], changed


def constrained_step(
    log_probs: torch.Tensor,
    running_scores: list[float],
    finished_scores: list[float],
    finished_flags: list[bool],
    states: list[ConstraintState],
    constraints: tuple[Constraint, ...],
    generated: int,
    max_new_tokens: int,
    length_penalty: float,
    num_return_sequences: int,
    eos_id: int,
) -> tuple[BeamStep, list[ConstraintState]]:
    """One DBA step of one request of ``k`` beams. log_probs (k, V) float32 (the beams in logical order); the
    other arguments are the request's beams' (length k) and its finished list's. Returns the step in
    ``BeamStep``'s layout with a batch of one (so that ``lslo.engine.advance`` moves it into the slots like an
    unconstrained one) and the constraint states of the new running beams, in their logical order."""
    k = log_probs.shape[0]
    at_limit = generated + 1 >= max_new_tokens
    banks, ending = _candidates(log_probs, running_scores, states, constraints, at_limit, eos_id)
    running = allocate(banks, k) if banks else []
    while len(running) < k:  # too few candidates (a short vocabulary, or at the limit): dead beams
        running.append(_Candidate(NEG, 0, eos_id, ConstraintState()))

    # finished list: the ending candidates, length-normalised, merged with the old list (best k kept)
    ending.sort(key=lambda c: -c.score)
    ending = ending[: 2 * k]
    normaliser = float(generated + 1) ** length_penalty
    ranked, new_finished_scores, new_finished_flags, changed = _merge_finished(
        finished_scores, finished_flags, ending, normaliser, k
    )
    finished_source = None
    candidate_parents = [c.parent for c in ending] + [0] * (2 * k - len(ending))
    candidate_tokens = [c.token for c in ending] + [eos_id] * (2 * k - len(ending))
    if changed:
        finished_source = torch.tensor([ranked], dtype=torch.long, device=log_probs.device)

    # Done when the finished list is full (``generate()``'s rule), at the limit, or once the best
    # ``num_return_sequences`` finished hypotheses beat the best running one as it stands (``generate()``'s
    # ``early_stopping=False`` test): beams that have not met their constraints may otherwise run to the limit.
    finished = sorted((s for s, f in zip(new_finished_scores, new_finished_flags) if f), reverse=True)
    best_running = max(c.score for c in running)
    enough = len(finished) >= num_return_sequences and finished[num_return_sequences - 1] >= best_running / normaliser
    done = all(new_finished_flags) or at_limit or enough

    device = log_probs.device
    step = BeamStep(
        parents=torch.tensor([[c.parent for c in running]], device=device),
        tokens=torch.tensor([[c.token for c in running]], device=device),
        scores=torch.tensor([[c.score for c in running]], dtype=torch.float32, device=device),
        finished_scores=torch.tensor([new_finished_scores], dtype=torch.float32, device=device),
        finished_flags=torch.tensor([new_finished_flags], dtype=torch.bool, device=device),
        finished_source=finished_source,
        candidate_parents=torch.tensor([candidate_parents], device=device),
        candidate_tokens=torch.tensor([candidate_tokens], device=device),
        done=torch.tensor([done], device=device),
    )
    return step, [c.state for c in running]
