"""``DecodingEngine``: continuous batching over an owned incremental decoding loop.

Requests join the running batch between two decoding steps (their encoder pass and cross-attention keys/values
are computed once, at admission, for all newcomers together) and leave the moment they are done. Admission is
bounded by the slot budget (``max_rows`` hypotheses of at most ``max_length`` decoder tokens); what does not fit
waits in the queue. Each row carries its own language pair and its own version of each adapter
(``lslo.engine.adapter_pack``), so any mix of pairs shares every step and a hot swap never changes a running row.

The API is in request ids: ``submit(DecodeRequest) -> id``, ``step() -> [DecodeOutput]``, ``abort(id)``; a step is
``update(plan, execute(plan))`` of ``plan = schedule()`` (``lslo.engine.plan``). Not
thread-safe: one thread calls ``submit`` / ``step`` / ``evict`` (``abort`` may be called from any thread; it takes
effect at the next step). Adapter changes through the ``LSLoHandle`` are picked up at the next step.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import torch
from torch import nn

from lslo.adapters.handle import LSLoHandle
from lslo.engine.adapter_pack import AdapterPack
from lslo.engine.advance import Copy, Write, advance_beams, advance_greedy
from lslo.engine.forward import RowAdapters, cross_keys_values, decode_step, encode, logits
from lslo.engine.plan import StepPlan, plan_step
from lslo.engine.request import DecodeOutput, DecodeRequest, EngineLimits
from lslo.engine.running import RunningRequest
from lslo.engine.slots import SlotState
from lslo.engine.step_inputs import RowGroups, row_groups, source_batch, step_inputs
from lslo.engine.weights import model_weights
from lslo.errors import RoutingError
from lslo.hf import hf_config, hf_generation_config


class DecodingEngine:
    def __init__(
        self,
        model: nn.Module,
        lslo: LSLoHandle | None = None,
        *,
        max_rows: int = 128,
        max_new_tokens: int = 256,
        max_source_tokens: int | None = None,
        max_prefill_tokens: int = 4096,
        min_beams: int = 1,
        fallback_to_base: bool = True,
        int8: bool = False,
        shape_bucket: int | None = None,
    ) -> None:
        """max_rows: hypotheses decoded together (a request with k beams takes k); max_new_tokens: the longest
        output any request may ask for; max_prefill_tokens: source tokens encoded per step at most (newcomers
        beyond wait a step, so running rows are not stalled by a large arrival); min_beams: the fewest beams any
        request will ask for (sizes the per-request cross-attention caches: ``max_rows // min_beams``); int8: run
        the frozen base's GEMMs in int8 (an fp32 model on the CPU; adapters stay fp32; ``lslo.engine.quantize``);
        shape_bucket: cache lengths rounded up to multiples of it in each step, so that shapes repeat (default 16
        on CUDA, 1 on the CPU, where the padding is work for nothing)."""
        config = hf_config(model)
        positions = int(getattr(config, "max_position_embeddings", 1024))
        self.max_source_tokens = int(max_source_tokens or positions)
        self.max_length = max_new_tokens + 2  # decoder tokens per row: [start, language] + generated
        self.int8 = int8
        self.weights = model_weights(model, max(positions, self.max_length, self.max_source_tokens), int8)
        self.lslo = lslo
        self.pack = AdapterPack(self.weights, lslo)
        self.fallback_to_base = fallback_to_base
        eos = getattr(hf_generation_config(model), "eos_token_id", None) or config.eos_token_id
        self.eos_id = int(eos[0] if isinstance(eos, (list, tuple)) else eos)
        param = self.weights.lm_head
        self.device, self.dtype = param.device, param.dtype
        self.shape_bucket = shape_bucket or (16 if self.device.type == "cuda" else 1)
        self.max_prefill_tokens = max_prefill_tokens
        self.min_beams = max(1, min_beams)
        self.slots = SlotState(
            self.weights,
            max_rows,
            self.max_length,
            self.device,
            self.dtype,
            requests=max(1, max_rows // self.min_beams),
        )
        self.rows = 0  # live rows are [0, rows)
        self.reserved = 0  # rows promised to running requests still in their prompt (one row until then)
        self.owner: list[RunningRequest | None] = [None] * max_rows
        self.queue: deque[RunningRequest] = deque()
        self.running: list[RunningRequest] = []
        self.max_requests: int | None = None  # admission cap in requests (None: the slot budget alone)
        self._coef_generation = -1
        self._groups: RowGroups | None = None  # of the live rows; None after admission, expansion, retirement
        self._model = model
        self._next_id = 0
        self._aborts: set[int] = set()  # ids to abort at the next step (``abort`` may be called from any thread)

    # ------------------------------------------------------------------------------------------ public
    @property
    def capacity(self) -> int:
        return self.slots.capacity

    @property
    def idle(self) -> bool:
        return not self.queue and not self.running

    @property
    def queued(self) -> int:
        """Requests waiting for admission."""
        return len(self.queue)

    def submit(self, request: DecodeRequest) -> int:
        """Queue ``request`` (checked now: a request that could never run is refused with ValueError); returns its
        id, which its ``DecodeOutput`` carries."""
        EngineLimits(self.min_beams, self.capacity, self.max_length, self.max_source_tokens).check(request)
        if request.adapters and not self.fallback_to_base and self.lslo is not None:
            missing = [c for c in (request.source_lang, request.target_lang) if c not in self.lslo.layout]
            if missing:
                raise RoutingError(f"no adapter for language(s) {', '.join(map(str, missing))}")
        self._next_id += 1
        self.queue.append(RunningRequest(self._next_id, request))
        return self._next_id

    def abort(self, request_id: int) -> None:
        """Drop the request at the next step (a disconnected client), queued or running: its rows free their slots
        and it is reported as aborted. An id already finished is ignored."""
        self._aborts.add(request_id)

    def discard(self, request_id: int) -> bool:
        """Take a queued request out now, reporting nothing (the caller answers it); False if it is not queued."""
        for r in self.queue:
            if r.request_id == request_id:
                self.queue.remove(r)
                return True
        return False

    @property
    def queued_ids(self) -> list[int]:
        """The waiting requests' ids, in admission order."""
        return [r.request_id for r in self.queue]

    def drop_queue(self) -> list[int]:
        """Take every queued request out, reporting nothing; returns their ids."""
        ids = [r.request_id for r in self.queue]
        self.queue.clear()
        return ids

    def attach(self, lslo: LSLoHandle | None) -> None:
        """Decode with ``lslo`` from now on (LSLo injected into, or removed from, the model after this engine was
        built). Running rows must not use the previous handle's adapters: call it when none do."""
        if any(key is not None for r in self.running for key in r.keys):
            raise RuntimeError("running rows use the current adapters; attach a handle when none do")
        previous = self.weights
        self.weights = model_weights(self._model, previous.positions.shape[0] - 2)
        if self.int8:  # the base is frozen: its int8 weights stay as they were
            for new, old in zip(self.weights.projections, previous.projections, strict=True):
                new.int8 = old.int8
            self.weights.lm_head_int8 = previous.lm_head_int8
        self.lslo = lslo
        self.pack = AdapterPack(self.weights, lslo)
        self._coef_generation = -1

    def evict(self) -> list[int]:
        """Take every running request out (its work is lost) and put it back at the head of the queue, in order;
        returns their ids. For recovering from a failed step (e.g. out of device memory) with fewer rows."""
        evicted = sorted(self.running, key=lambda r: r.slot)
        for r in evicted:
            r.restart()
        self.queue.extendleft(reversed(evicted))
        self.running, self._groups = [], None
        self.owner = [None] * self.capacity
        self.rows = self.reserved = 0
        return [r.request_id for r in evicted]

    def run(self, requests: Iterable[DecodeRequest]) -> list[DecodeOutput]:
        """Submit ``requests`` and step until all are done (offline use: evaluation, benchmarks); their outputs, in
        order."""
        ids = [self.submit(r) for r in requests]
        outputs: dict[int, DecodeOutput] = {}
        while len(outputs) < len(ids):
            outputs.update((o.request_id, o) for o in self.step())
        return [outputs[i] for i in ids]

    @torch.inference_mode()
    def step(self) -> list[DecodeOutput]:
        """Admit what fits, decode one token for every running row, retire what is done; returns the outputs of
        the requests that finished (or were aborted) in this step. The three phases below, in order."""
        plan = self.schedule()
        return self.update(plan, self.execute(plan))

    def schedule(self) -> StepPlan:
        """Take aborted requests out, follow adapter changes (running rows keep their versions), admit what fits
        (slots and adapter versions assigned; no model work yet) and name the rows this step decodes and
        scores."""
        aborted = tuple(self._drop_aborted())
        self.pack.sync({key for r in self.running for key in r.keys if key is not None})
        admitted = tuple(self._admit())
        return plan_step(aborted, admitted, self.running, self.rows)

    @torch.inference_mode()
    def execute(self, plan: StepPlan) -> torch.Tensor | None:
        """The model's work of ``plan``: adapters packed for the running rows, the newcomers encoded, one decoder
        step over rows ``[0, plan.rows)``; returns the logits of ``plan.scored`` (len(scored), V), or None when
        nothing is decoded."""
        generation = self.pack.generation
        self._activate()
        if plan.admitted:
            self._prefill(list(plan.admitted), coefficients_written=self.pack.generation != generation)
        if not plan.decodes:
            return None
        if self._groups is None:
            self._groups = row_groups(self.running, plan.rows, self.device)
        x = step_inputs(self.running, self.slots, self._groups, self.dtype, self.shape_bucket)
        hidden = decode_step(self.weights, x, self._row_adapters(plan.rows))  # (n, d)
        if not plan.scored:
            return hidden.new_zeros((0, self.weights.lm_head.shape[0]))
        return logits(self.weights, hidden[torch.tensor(plan.scored, device=self.device)])  # (scored, V)

    @torch.inference_mode()
    def update(self, plan: StepPlan, scores: torch.Tensor | None) -> list[DecodeOutput]:
        """Apply ``execute``'s logits: the greedy choice or a beam-search step per group, every row one position
        on, the finished requests retired; returns their outputs and the aborted ones'."""
        aborted = [r.output(aborted=True) for r in plan.aborted]
        if scores is None:
            return aborted
        slots = self.slots
        if plan.fresh:
            self._expand(list(plan.fresh))
        done: list[RunningRequest] = []
        if plan.scored:
            start = 0
            copies: list[Copy] = []
            writes: list[Write] = []
            for k, group in plan.groups:
                part = scores[start : start + k * len(group)]
                start += k * len(group)
                if k == 1:
                    done += advance_greedy(list(group), part, self.eos_id, writes, self.device)
                else:
                    done += advance_beams(slots, list(group), part, k, self.eos_id, copies, writes)
            if copies:
                slots.copy_prefix([d for d, _, _ in copies], [s for _, s, _ in copies], max(c[2] for c in copies))
            for where, columns, values in writes:
                slots.history[where, columns] = values
        slots.position[: self.rows] += 1
        for r in self.running:
            r.position += 1
        if done:
            self._retire(done)
        return aborted + [r.output() for r in done]

    # --------------------------------------------------------------------------------------- adapters
    def _activate(self) -> None:
        """Pack the adapters of every running row (newcomers included); recompute all coefficients if needed."""
        self.pack.activate({key for r in self.running for key in r.keys if key is not None})
        if self.pack.generation != self._coef_generation:
            self._coef_generation = self.pack.generation
            self._write_coefficients(list(range(self.rows)))

    def _write_coefficients(self, rows: list[int]) -> None:
        if not self.pack.total_rank or not rows:
            return
        index = torch.tensor(rows, device=self.device)
        for side_index, side in enumerate(("src", "tgt")):
            keys = [self.owner[r].keys[side_index] for r in rows]  # type: ignore[union-attr]
            self.slots.set_coefficients(side, index, self.pack.coefficients(keys, self.device, self.dtype))

    def _row_adapters(self, rows: int) -> RowAdapters:
        coef = {side: c[:rows] for side, c in self.slots.coef.items()} if self.pack.total_rank else None
        return RowAdapters(self.pack, coef)

    # -------------------------------------------------------------------------------------- admission
    def _admit(self) -> list[RunningRequest]:
        """Newcomers that fit (beams, prefill tokens, request slots, the recovery cap), given their slots, rows
        and adapter versions; the tensors are written by ``_prefill``."""
        newcomers: list[RunningRequest] = []
        free, tokens = self.capacity - self.rows - self.reserved, 0
        while self.queue:
            request = self.queue[0]
            size = len(request.request.source_ids)
            if request.num_beams > free or (newcomers and tokens + size > self.max_prefill_tokens):
                break
            if len(self.running) + len(newcomers) >= self.slots.requests:
                break
            if self.max_requests is not None and len(self.running) + len(newcomers) >= self.max_requests:
                break
            self.queue.popleft()
            newcomers.append(request)
            free -= request.num_beams
            tokens += size
        for r in newcomers:
            given = r.request
            use = given.adapters and self.lslo is not None
            r.keys = (
                self.pack.current_key(given.source_lang) if use and given.source_lang else None,
                self.pack.current_key(given.target_lang) if use and given.target_lang else None,
            )
            r.slot = len(self.running)
            # Beam 0 alone until the prompt is read: generate()'s other beams start at -1e9 and only ever copy
            # beam 0's first step, so their rows are added then (``_expand``).
            r.home, r.order, r.position = [self.rows], [self.rows], 0
            self.owner[self.rows] = r
            self.rows += 1
            self.reserved += r.num_beams - 1
            self.running.append(r)
        if newcomers:
            self._groups = None
        return newcomers

    def _prefill(self, newcomers: list[RunningRequest], coefficients_written: bool) -> None:
        """Encode the newcomers (their request slots are consecutive), store their cross-attention keys/values
        and start their rows; ``coefficients_written``: ``_activate`` already wrote every row's adapter
        coefficients."""
        slots, device = self.slots, self.device
        width = max(len(r.request.source_ids) for r in newcomers)
        slots.ensure_source_length(width, self.max_source_tokens)
        ids, mask = source_batch([r.request.source_ids for r in newcomers], width, self.weights.pad_id, device)
        coef = None
        if self.pack.total_rank:
            coef = {
                side: self.pack.coefficients([r.keys[j] for r in newcomers], device, self.dtype)
                for j, side in enumerate(("src", "tgt"))
            }
        adapters = RowAdapters(self.pack, coef)
        states = encode(self.weights, ids, mask, adapters)  # (m, S, d)
        cross = cross_keys_values(self.weights, states, adapters)
        slots.store_sources(newcomers[0].slot, cross, [len(r.request.source_ids) for r in newcomers])
        rows = [s for r in newcomers for s in r.home]
        row_index = torch.tensor(rows, device=device)
        for r in newcomers:
            slots.history[r.home[0], : len(r.prefix)] = torch.tensor(list(r.prefix), device=device)
        slots.start_rows(row_index)
        if not coefficients_written:
            self._write_coefficients(rows)

    # ---------------------------------------------------------------------------------------- decoding
    def _expand(self, requests: list[RunningRequest]) -> None:
        """Give requests at their first generating step their other beams' rows (their logits this step are beam
        0's, as in ``generate()`` where all beams read the same prompt; the beam step then copies beam 0's cache
        into them)."""
        new, source = [], []
        for r in requests:
            extra = list(range(self.rows, self.rows + r.num_beams - 1))
            self.rows += len(extra)
            self.reserved -= len(extra)
            for s in extra:
                self.owner[s] = r
            new += extra
            source += [r.home[0]] * len(extra)
            r.home = r.home + extra
            r.order = list(r.home)
        self._groups = None
        self.slots.add_beams(torch.tensor(new, device=self.device), torch.tensor(source, device=self.device))

    # ---------------------------------------------------------------------------------------- retiring
    def _drop_aborted(self) -> list[RunningRequest]:
        ids: set[int] = set()
        while self._aborts:  # set.pop is atomic: an abort from another thread meanwhile is never lost
            ids.add(self._aborts.pop())
        if not ids:
            return []
        queued = [r for r in self.queue if r.request_id in ids]
        if queued:
            self.queue = deque(r for r in self.queue if r.request_id not in ids)
        gone = [r for r in self.running if r.request_id in ids]
        if gone:
            self._retire(gone)
        return queued + gone

    def _retire(self, requests: list[RunningRequest]) -> None:
        """Free the requests' slots and refill the holes from the end of the live range. The tensors move
        first: if a move fails (out of memory), the bookkeeping is still that of before the call."""
        leaving = {id(r) for r in requests}
        staying = [r for r in self.running if id(r) not in leaving]
        count = len(staying)
        movers_r = [r for r in staying if r.slot >= count]
        holes_r = sorted(set(range(count)) - {r.slot for r in staying if r.slot < count})
        freed = sorted(s for r in requests for s in r.home)
        remaining = self.rows - len(freed)
        freed_set = set(freed)
        holes = [s for s in freed if s < remaining]
        movers = [s for s in range(remaining, self.rows) if s not in freed_set and self.owner[s] is not None]
        if movers_r:
            source = max(len(r.request.source_ids) for r in movers_r)
            self.slots.move_requests(holes_r, [r.slot for r in movers_r], source)
        if movers:
            longest = max(r.position for r in staying) + 1
            self.slots.move(holes, movers, longest)
        # Bookkeeping (no tensor work from here on).
        for r, hole in zip(movers_r, holes_r):
            r.slot = hole
        self.running, self._groups = sorted(staying, key=lambda r: r.slot), None
        self.reserved -= sum(r.num_beams - len(r.home) for r in requests)
        for s in freed:
            self.owner[s] = None
        moved = dict(zip(movers, holes))
        for old, new in moved.items():
            self.owner[new], self.owner[old] = self.owner[old], None
        owners = {id(o): o for h in holes if (o := self.owner[h]) is not None}
        for r in owners.values():
            r.home = [moved.get(s, s) for s in r.home]
            r.order = [moved.get(s, s) for s in r.order]
        self.rows = remaining
