"""Per-row state of the running batch, preallocated and addressed by slot.

A row is one hypothesis (a beam) of one request. Rows ``[0, n)`` are live; a request owns ``k`` slots for its
whole life (its *home* slots, which also hold its finished hypotheses) and keeps its running beams in them in
some order. Beam search moves a hypothesis only when two beams share a parent (one copy of that slot's prefix),
and finished requests' slots are refilled from the end of the live range, so the batch stays dense without ever
copying the whole cache. Cross-attention keys/values belong to the request (one *request slot*, shared by its
beams), dense in ``[0, requests)`` the same way.
"""

from __future__ import annotations

import torch

from lslo.engine.search import NEG
from lslo.engine.weights import ModelWeights


def copy_rows(view: torch.Tensor, dst: torch.Tensor, src: torch.Tensor, dim: int = 0) -> None:
    """view[dst] = view[src] along ``dim`` (dst and src disjoint), through a gather then a scatter: about twice as
    fast as advanced-index assignment on a strided view."""
    view.index_copy_(dim, dst, view.index_select(dim, src))


class SlotState:
    def __init__(
        self,
        w: ModelWeights,
        capacity: int,
        max_length: int,
        device: torch.device,
        dtype: torch.dtype,
        requests: int | None = None,
    ) -> None:
        """capacity: rows; max_length: decoder tokens per row (prefix + generated); requests: request slots
        (cross-attention caches; default one per row)."""
        self.capacity, self.max_length = capacity, max_length
        self.requests = requests or capacity
        self.device, self.dtype = device, dtype
        h, hd = w.decoder_heads, w.d_model // w.decoder_heads
        layers = len(w.decoder)
        self.heads, self.head_dim, self.layers = h, hd, layers
        # Self-attention keys and values of every layer in one tensor (layer, k/v, row, head, position, head_dim):
        # a beam copy or a compaction moves a row's prefix in all layers with one gather and one scatter, and
        # each layer's (rows, heads) still flatten into one batch dimension for the attention GEMMs.
        self.self_kv = torch.zeros(layers, 2, capacity, h, max_length, hd, device=device, dtype=dtype)
        self.source_capacity = 0
        self.cross_k: list[torch.Tensor] = []
        self.cross_v: list[torch.Tensor] = []
        self.ensure_source_length(16)
        self.source_length = torch.zeros(self.requests, dtype=torch.long, device=device)  # by request slot
        self.history = torch.zeros(capacity, max_length, dtype=torch.long, device=device)  # decoder tokens
        self.position = torch.zeros(capacity, dtype=torch.long, device=device)  # next input is history[position]
        self.running_score = torch.zeros(capacity, dtype=torch.float32, device=device)
        self.finished_score = torch.zeros(capacity, dtype=torch.float32, device=device)
        self.finished_flag = torch.zeros(capacity, dtype=torch.bool, device=device)
        self.finished_history = torch.zeros(capacity, max_length, dtype=torch.long, device=device)
        self.finished_length = torch.zeros(capacity, dtype=torch.long, device=device)  # generated tokens
        self.coef: dict[str, torch.Tensor] = {}

    def ensure_source_length(self, length: int, limit: int | None = None) -> None:
        """Grow the cross-attention cache (by request slot) to hold sources of ``length`` tokens (doubling, at
        most to ``limit``). All new tensors are allocated before any replaces the old: out of memory changes
        nothing."""
        if length <= self.source_capacity:
            return
        new = max(length, min(2 * self.source_capacity, limit or 2 * self.source_capacity))
        shape = (self.requests, self.heads, new, self.head_dim)
        grown = [
            [torch.zeros(shape, device=self.device, dtype=self.dtype) for _ in range(self.layers)]
            for _ in (self.cross_k, self.cross_v)
        ]
        for store, fresh in zip((self.cross_k, self.cross_v), grown):
            for old, tensor in zip(store, fresh):
                tensor[:, :, : self.source_capacity] = old
            store[:] = fresh
        self.source_capacity = new

    def start_rows(self, rows: torch.Tensor) -> None:
        """Rows at the start of a request: at position 0, a running score of 0, nothing finished yet."""
        self.position[rows] = 0
        self.running_score[rows] = 0.0
        self.finished_score[rows] = NEG
        self.finished_flag[rows] = False
        self.finished_length[rows] = 0

    def add_beams(self, rows: torch.Tensor, beam0: torch.Tensor) -> None:
        """A request's other beams join at its first generating step: ``rows`` start at ``beam0``'s position and
        coefficients, with nothing scored or finished yet (the beam step then copies beam 0's cache into them)."""
        self.position[rows] = self.position[beam0]
        self.running_score[rows] = NEG
        self.finished_score[rows] = NEG
        self.finished_flag[rows] = False
        self.finished_length[rows] = 0
        for coef in self.coef.values():
            coef[rows] = coef[beam0]

    def store_sources(self, first: int, cross: list[tuple[torch.Tensor, torch.Tensor]], lengths: list[int]) -> None:
        """Request slots ``[first, first + m)`` take the cross-attention keys/values of m newcomers (per layer,
        each (m, H, S, hd)) and their source lengths."""
        m = len(lengths)
        for layer, (k, v) in enumerate(cross):
            self.cross_k[layer][first : first + m, :, : k.shape[2]] = k
            self.cross_v[layer][first : first + m, :, : v.shape[2]] = v
        self.source_length[first : first + m] = torch.tensor(lengths, device=self.device)

    def set_coefficients(self, side: str, rows: torch.Tensor, values: torch.Tensor) -> None:
        """Write (len(rows), R) coefficients for ``side`` (reallocated when R changed)."""
        current = self.coef.get(side)
        if current is None or current.shape[1] != values.shape[1]:
            current = torch.zeros(self.capacity, values.shape[1], dtype=self.dtype, device=self.device)
            self.coef[side] = current
        current[rows] = values.to(current)

    @torch.no_grad()
    def copy_prefix(self, dst: list[int], src: list[int], length: int) -> None:
        """Beam reordering: rows ``dst`` take the decoder history and self-attention cache of rows ``src``
        (the first ``length`` positions; later positions are rewritten before they are read)."""
        d = torch.tensor(dst, device=self.device)
        s = torch.tensor(src, device=self.device)
        copy_rows(self.self_kv[:, :, :, :, :length], d, s, dim=2)
        copy_rows(self.history[:, :length], d, s)

    @torch.no_grad()
    def move(self, dst: list[int], src: list[int], length: int) -> None:
        """Compaction: rows ``src`` move to free rows ``dst`` with everything they own."""
        d = torch.tensor(dst, device=self.device)
        s = torch.tensor(src, device=self.device)
        copy_rows(self.self_kv[:, :, :, :, :length], d, s, dim=2)
        for t in (
            self.history,
            self.position,
            self.running_score,
            self.finished_score,
            self.finished_flag,
            self.finished_history,
            self.finished_length,
            *self.coef.values(),
        ):
            t[d] = t[s]

    @torch.no_grad()
    def move_requests(self, dst: list[int], src: list[int], source_length: int) -> None:
        """Compaction of request slots: cross-attention keys/values and source lengths."""
        d = torch.tensor(dst, device=self.device)
        s = torch.tensor(src, device=self.device)
        for cache in (*self.cross_k, *self.cross_v):
            copy_rows(cache[:, :, :source_length], d, s)
        self.source_length[d] = self.source_length[s]
