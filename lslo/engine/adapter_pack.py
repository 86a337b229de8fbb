"""Versioned adapter columns: what the engine decodes with, and why a hot swap never changes a running row.

The engine copies each language's adapters out of the ``LSLoHandle`` into *column sets* keyed by
``(language, version)`` (``LSLoHandle.language_versions``). All live column sets are packed side by side, per
projection::

    A_pack (parts * R, in)        rows [i*R:(i+1)*R] are part i's (q, k or v) adapters of every column set
    B_pack (out, parts * R)       block diagonal: part i's output rows read only part i's columns

(for a frozen base, A_pack is the spare rows under the base weight, ``lslo.engine.weights.reserve_rows``: one
GEMM of ``[W; A_pack]`` gives the base output and every adapter's hidden activations)

and a row multiplies its ``(parts * R)`` hidden activations by its coefficients: ``scaling`` on the columns of
*its* column set for the projection's side, 0 elsewhere. When a language is replaced, the new version becomes a
new column set; rows admitted before keep the coefficients of the old one until they finish, and the old set is
dropped once its last row has left. A row is therefore decoded under exactly one version of each adapter.

Only the column sets of the rows being decoded are packed (``activate``): every row pays for all packed
columns (a dense GEMM), so a bundle of 12 languages of which 8 are in use costs 8 languages' ranks, not 12's.
Idle sets stay packed until they would hold more columns than the sets in use (no repack every step).

The packed rank ``R`` is the column sets' ranks summed and rounded up to a multiple of ``RANK_BUCKET`` (the spare
columns are zero, with coefficient 0): the step's shapes then repeat while the languages in use change, which a
captured step (a CUDA graph) needs, and half-precision GEMMs get aligned sizes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from lslo.adapters.handle import LSLoHandle
from lslo.adapters.layer import LSLoLinear
from lslo.adapters.layer_map import Side
from lslo.engine.weights import ModelWeights, Projection, base_linear, reserve_rows
from lslo.errors import ConfigError

ColumnKey = tuple[str, int]  # (language code, version)
RANK_BUCKET = 8


def rank_bucket(total: int) -> int:
    """``total`` packed columns rounded up to a multiple of ``RANK_BUCKET`` (0 stays 0: no adapters)."""
    return total + (-total) % RANK_BUCKET


@dataclass
class PackedProjection:
    """Adapters of one projection: ``A (parts*R, in)``, ``B (out, parts*R)``; ``parts`` sub-projections.
    ``fused (out + parts*R, in)``: the base weight with A under it (None: A apart); ``fused_bias``: the
    bias followed by zeros."""

    A: torch.Tensor
    B: torch.Tensor
    side: Side
    parts: int
    fused: torch.Tensor | None = None
    fused_bias: torch.Tensor | None = None


def projection_side(projection: Projection) -> Side | None:
    sides = set()
    for part in projection.parts:
        if isinstance(part, LSLoLinear):
            if len(part.sides) != 1:
                raise ConfigError(
                    [
                        "the decoding engine serves models with a layer map (one side per layer); this "
                        "one is in Weight Learning mode (both sides per layer)"
                    ]
                )
            sides.add(part.sides[0])
    if len(sides) > 1:
        raise ConfigError([f"{projection.name}: its parts are routed by different sides {sorted(sides)}"])
    return sides.pop() if sides else None


class AdapterPack:
    """The column sets in use and their packed tensors; rebuilt (small copies) whenever the set changes."""

    def __init__(self, weights: ModelWeights, handle: LSLoHandle | None) -> None:
        self.handle = handle
        self.projections = weights.projections
        self.sides = [projection_side(p) if handle is not None else None for p in self.projections]
        self.scaling = float(handle.router.scaling) if handle is not None else 0.0
        # key -> per projection index, per part: (A (r, in), B (out_part, r)) or None for a part without adapters
        self._sets: dict[ColumnKey, dict[int, list[tuple[torch.Tensor, torch.Tensor] | None]]] = {}
        self._ranks: dict[ColumnKey, int] = {}
        self.offsets: dict[ColumnKey, int] = {}
        self.total_rank = 0
        self.packed: dict[int, PackedProjection] = {}
        self.generation = 0  # bumped at each repack: coefficients computed before are stale

    # ----------------------------------------------------------------------------------------- keys
    def current_key(self, code: str) -> ColumnKey | None:
        """The column set that a row admitted now uses for ``code`` (None: no adapter, the base alone)."""
        if self.handle is None or code not in self.handle.layout:
            return None
        return code, self.handle.language_versions[code]

    @property
    def keys(self) -> tuple[ColumnKey, ...]:
        """The packed column sets, in packing order."""
        return tuple(self.offsets)

    @property
    def held(self) -> tuple[ColumnKey, ...]:
        """The column sets copied out of the handle: its current versions and older ones live rows still use."""
        return tuple(self._sets)

    # -------------------------------------------------------------------------------------- syncing
    def sync(self, live: Iterable[ColumnKey]) -> None:
        """Copy in the handle's current versions and forget sets that are neither current nor used by a live row
        (``activate`` then drops them from the packing)."""
        if self.handle is None:
            return
        current = {self.current_key(c) for c in self.handle.layout.codes}
        wanted = current | set(live)
        for key in [k for k in self._sets if k not in wanted]:
            del self._sets[key], self._ranks[key]
        for wanted_key in current:
            if wanted_key is not None and wanted_key not in self._sets:
                self._sets[wanted_key], self._ranks[wanted_key] = self._extract(wanted_key[0])

    def activate(self, needed: Iterable[ColumnKey]) -> bool:
        """Pack (at least) the column sets ``needed`` by the rows about to be decoded; True when the packing
        changed (then every row's coefficients must be recomputed)."""
        needed = set(needed)
        kept = [k for k in self.offsets if k in self._sets]
        missing = sorted(k for k in needed if k not in self.offsets)
        idle = sum(self._ranks[k] for k in kept if k not in needed)
        crowded = idle > max(8, sum(self._ranks[k] for k in needed))
        if not missing and len(kept) == len(self.offsets) and not crowded:
            return False
        if crowded:
            kept = [k for k in kept if k in needed]
        self._repack(kept + missing)
        return True

    @torch.no_grad()
    def _extract(self, code: str) -> tuple[dict[int, list[tuple[torch.Tensor, torch.Tensor] | None]], int]:
        assert self.handle is not None
        sl = self.handle.layout.slice(code)
        rank = sl.stop - sl.start
        out: dict[int, list[tuple[torch.Tensor, torch.Tensor] | None]] = {}
        for index, projection in enumerate(self.projections):
            if self.sides[index] is None:
                continue
            parts: list[tuple[torch.Tensor, torch.Tensor] | None] = []
            for part in projection.parts:
                if not isinstance(part, LSLoLinear):
                    parts.append(None)
                    continue
                bank = part.bank(part.sides[0])
                base = base_linear(part)
                a = bank.lora_A.detach().new_zeros(rank, base.in_features)
                a[:, : part.lora_in] = bank.lora_A.detach()[sl]
                b = bank.lora_B.detach().new_zeros(base.out_features, rank)
                b[: part.lora_out] = bank.lora_B.detach()[:, sl]
                parts.append((a, b))
            out[index] = parts
        return out, rank

    def _repack(self, keys: list[ColumnKey]) -> None:
        self.offsets, total = {}, 0
        for key in keys:
            self.offsets[key] = total
            total += self._ranks[key]
        total = rank_bucket(total)
        self.total_rank = total
        self.packed = {}
        for index, projection in enumerate(self.projections):
            side = self.sides[index]
            if side is None or total == 0:
                continue
            weight = projection.weight
            sizes = projection.part_sizes()
            parts = len(sizes)
            fused = reserve_rows(projection, parts * total)  # a multiple of 8 rows, as total is
            if fused is None:
                a_pack = weight.new_zeros(parts * total, weight.shape[1])
            else:
                fused[weight.shape[0] :].zero_()
                a_pack = fused[weight.shape[0] : weight.shape[0] + parts * total]  # the rows under the base weight
            b_pack = weight.new_zeros(weight.shape[0], parts * total)
            row = 0
            for i, size in enumerate(sizes):
                for key in keys:
                    given = self._sets[key][index][i]
                    if given is not None:
                        off, rank = i * total + self.offsets[key], self._ranks[key]
                        a_pack[off : off + rank] = given[0]
                        b_pack[row : row + size, off : off + rank] = given[1]
                row += size
            bias = projection.bias
            fused_bias = (
                None
                if fused is None or bias is None
                else torch.cat((bias, bias.new_zeros(fused.shape[0] - weight.shape[0])))
            )
            self.packed[index] = PackedProjection(a_pack, b_pack, side, parts, fused, fused_bias)
        self.generation += 1

    # --------------------------------------------------------------------------------- coefficients
    def coefficients(self, keys: Sequence[ColumnKey | None], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """(rows, R): ``scaling`` on the columns of each row's column set, 0 elsewhere (and for None)."""
        coef = torch.zeros(len(keys), self.total_rank, dtype=dtype)
        for i, key in enumerate(keys):
            if key is not None:
                off = self.offsets[key]
                coef[i, off : off + self._ranks[key]] = self.scaling
        return coef.to(device)
