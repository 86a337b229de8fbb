"""Per-row language routing shared by every LSLo module of one model.

Before a forward pass (or a whole ``generate()``), the caller sets each row's source and target language.
Each LSLo module asks the router for the coefficients of its side: a ``(rows, R)`` matrix that is
``scaling`` on the columns of the row's language and 0 elsewhere. It is computed once per batch and
shape and shared by all modules.

Generation expands the decoder batch (beam search: ``batch x beams``, sampling: ``batch x
num_return_sequences``) with ``repeat_interleave``; the encoder runs on the original batch. A module that
sees ``n`` rows for a batch of ``b`` languages therefore expands each language ``n / b`` times in place.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from lslo.adapters.bank_layout import BankLayout
from lslo.adapters.layer_map import SIDES, Side
from lslo.adapters.weight_learning import layer_gate
from lslo.errors import RoutingError


class Router:
    """Holds the batch's languages; not thread-safe: one forward pass at a time per model."""

    def __init__(self, layout: BankLayout, scaling: float = 1.0, gates: nn.ModuleDict | None = None) -> None:
        self._layout = layout
        self.scaling = float(scaling)
        self.gates = gates
        self._rows: dict[Side, torch.Tensor] | None = None  # side -> (batch,) language indices
        self._cache: dict[tuple[Side, int, torch.device, torch.dtype], torch.Tensor] = {}
        self.base_only = False  # set by LSLoHandle.base_only(): every LSLo module is its base layer

    @property
    def layout(self) -> BankLayout:
        return self._layout

    def set_layout(self, layout: BankLayout) -> None:
        """Called when languages are added, removed or re-ranked; the next batch must be routed anew."""
        self._layout = layout
        self.clear()

    def set_rows(self, src_langs: Sequence[str], tgt_langs: Sequence[str], fallback: bool = False) -> None:
        """Route row i as ``src_langs[i] -> tgt_langs[i]``. A language without an adapter is an error, or with
        ``fallback`` the base model alone on that side (its coefficients are zero), in the same batch."""
        if len(src_langs) != len(tgt_langs):
            raise RoutingError(f"{len(src_langs)} source languages but {len(tgt_langs)} target languages")
        if not src_langs:
            raise RoutingError("cannot route an empty batch")
        unknown = sorted({c for c in (*src_langs, *tgt_langs) if c not in self._layout})
        if unknown and not fallback:
            raise RoutingError(
                f"no adapter for language(s) {', '.join(unknown)}; loaded: {', '.join(self._layout.codes) or 'none'}"
            )
        layout = self._layout

        def index(code: str) -> int:
            return layout.index(code) if code in layout else -1  # -1 matches no column: zero coefficients

        self._rows = {
            "src": torch.tensor([index(c) for c in src_langs], dtype=torch.long),
            "tgt": torch.tensor([index(c) for c in tgt_langs], dtype=torch.long),
        }
        self._cache.clear()

    def clear(self) -> None:
        self._rows = None
        self._cache.clear()

    @contextmanager
    def route(self, src_langs: Sequence[str], tgt_langs: Sequence[str], fallback: bool = False) -> Iterator[None]:
        previous, previous_cache = self._rows, dict(self._cache)
        self.set_rows(src_langs, tgt_langs, fallback)
        try:
            yield
        finally:
            self._rows, self._cache = previous, previous_cache

    def row_languages(self, side: Side, n_rows: int) -> torch.Tensor:
        """(n_rows,) language indices for a module that sees ``n_rows`` rows."""
        if self._rows is None:
            raise RoutingError(
                "LSLo modules were called without routing: wrap the forward / generate call in "
                "`handle.route(src_langs, tgt_langs)` (handle: what lslo.inject returned)"
            )
        rows = self._rows[side]
        batch = rows.numel()
        if n_rows == batch:
            return rows
        if n_rows % batch != 0:
            raise RoutingError(
                f"a module received {n_rows} rows for a routed batch of {batch}; generation may expand the batch"
                " (beams, return sequences) only by a whole factor"
            )
        return rows.repeat_interleave(n_rows // batch)

    def coefficients(self, side: Side, n_rows: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """(n_rows, R): ``scaling`` where column j belongs to row i's language on ``side``, else 0."""
        key = (side, n_rows, device, dtype)
        coef = self._cache.get(key)
        if coef is None:
            rows = self.row_languages(side, n_rows)
            columns = torch.tensor(self._layout.column_languages, dtype=torch.long)
            coef = (rows[:, None] == columns[None, :]).to(dtype) * self.scaling  # (n_rows, R)
            coef = coef.to(device)
            self._cache[key] = coef
        return coef

    def gate_weights(self, layer_key: str) -> torch.Tensor:
        """(2,) softmax weights (w_src, w_tgt) of one layer in Weight Learning mode."""
        if self.gates is None:
            raise RoutingError("gate weights asked for outside Weight Learning mode")
        return layer_gate(self.gates, layer_key).weights()


__all__ = ["Router", "SIDES"]
