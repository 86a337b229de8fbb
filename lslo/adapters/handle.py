"""``LSLoHandle``: the handle ``lslo.adapters.inject`` returns.

It routes batches, reads and replaces one language's adapters, counts parameters and removes LSLo again.
The Hugging Face model is modified in place; the handle does not wrap it, so ``handle.model`` is still an
``M2M100ForConditionalGeneration`` that ``generate()``, DDP and optimizers use directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import count
from typing import Any

import torch
from torch import nn

from lslo.adapters.bank_layout import BankLayout
from lslo.adapters.config import LSLoConfig
from lslo.adapters.layer import AdapterBank, LSLoLinear
from lslo.adapters.layer_map import LayerMap, Side
from lslo.adapters.router import Router
from lslo.devices import FLOAT_DTYPES
from lslo.errors import LSLoError
from lslo.languages.tables import LanguageSpec


class AdapterMismatchError(LSLoError, ValueError):
    """Tensors offered for one language do not fit this model; ``problems`` lists why."""

    def __init__(self, code: str, problems: Sequence[str]) -> None:
        self.code = code
        self.problems = list(problems)
        more = len(self.problems) - 5
        shown = "; ".join(self.problems[:5]) + (f"; and {more} more" if more > 0 else "")
        super().__init__(f"adapter for {code!r} does not fit the model: {shown}")


@dataclass(frozen=True)
class AdaptedModule:
    """Where an LSLo module sits: stack ("encoder"/"decoder"), layer index, paper name (q, c-k, fc1...)."""

    path: str
    stack: str
    layer: int
    name: str
    module: LSLoLinear


class LSLoHandle:
    def __init__(
        self,
        model: nn.Module,
        config: LSLoConfig,
        layer_map: LayerMap,
        router: Router,
        modules: Sequence[AdaptedModule],
        frozen_flags: Mapping[str, bool],
    ) -> None:
        self.model = model
        self.config = config
        self.layer_map = layer_map
        self.router = router
        self.modules = list(modules)
        self.tiers: dict[str, str | None] = {s.code: s.tier for s in config.languages}
        # The base model's fingerprints by method (``lslo.io.fingerprint``), computed at most once each.
        self.base_fingerprints: dict[tuple[int, int | None], dict[str, Any]] = {}
        self._frozen_flags = dict(frozen_flags)
        self._removed = False
        # A new number each time a language's adapters are written through the handle: a decoding engine that
        # copied them (``lslo.engine``) sees which languages changed and keeps the old copy for running rows.
        self._version_counter = count(1)
        self.language_versions: dict[str, int] = {c: next(self._version_counter) for c in self.layout.codes}

    # ----------------------------------------------------------------------------------------- routing
    @contextmanager
    def route(self, src_langs: Sequence[str], tgt_langs: Sequence[str], fallback: bool = False) -> Iterator[None]:
        """Route every row of the forward passes inside the block: row i is ``src_langs[i] -> tgt_langs[i]``.

        ``fallback``: a language without an adapter passes through the base model alone on its side (its
        rows get zero coefficients) instead of raising ``RoutingError``; the other rows are unaffected."""
        with self.router.route(src_langs, tgt_langs, fallback):
            yield

    @contextmanager
    def base_only(self) -> Iterator[None]:
        """Inside the block the model is its base alone (every adapter off), e.g. to compare with it."""
        previous, self.router.base_only = self.router.base_only, True
        try:
            yield
        finally:
            self.router.base_only = previous

    # ------------------------------------------------------------------------------------ languages
    @property
    def layout(self) -> BankLayout:
        return self.router.layout

    @property
    def languages(self) -> tuple[LanguageSpec, ...]:
        lay = self.layout
        return tuple(LanguageSpec(c, r, self.tiers.get(c)) for c, r in zip(lay.codes, lay.ranks))

    def language_keys(self, rank: int | None = None) -> dict[str, tuple[int, ...] | None]:
        """Tensor key -> expected shape (``None`` where the rank is unknown) for one language's file."""
        keys: dict[str, tuple[int, ...] | None] = {}
        for m in self.modules:
            for side in m.module.sides:
                prefix = self._key_prefix(m.module, side)
                r = rank
                keys[f"{prefix}.lora_A"] = None if r is None else (r, m.module.lora_in)
                keys[f"{prefix}.lora_B"] = None if r is None else (m.module.lora_out, r)
        return keys

    def _key_prefix(self, module: LSLoLinear, side: str) -> str:
        return f"{module.path}.{side}" if self.config.weight_learning else module.path

    def language_state_dict(self, code: str) -> dict[str, torch.Tensor]:
        """Copies of one language's A/B for every adapted module (the ``<lang>.safetensors`` content)."""
        sl = self.layout.slice(code)
        out: dict[str, torch.Tensor] = {}
        for m in self.modules:
            for side, bank in m.module.bank_items():
                prefix = self._key_prefix(m.module, side)
                out[f"{prefix}.lora_A"] = bank.lora_A.detach()[sl].clone().contiguous()
                out[f"{prefix}.lora_B"] = bank.lora_B.detach()[:, sl].clone().contiguous()
        return out

    def check_language_tensors(self, code: str, tensors: Mapping[str, torch.Tensor]) -> int:
        """Validate one language's tensors against this model; return their rank or raise AdapterMismatchError."""
        problems: list[str] = []
        expected = self.language_keys()
        missing = sorted(set(expected) - set(tensors))
        unexpected = sorted(set(tensors) - set(expected))
        if missing:
            problems.append(f"{len(missing)} tensor(s) missing, e.g. {missing[0]!r}")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected tensor(s), e.g. {unexpected[0]!r}")
        ranks = {int(t.shape[0]) for k, t in tensors.items() if k.endswith(".lora_A") and t.dim() == 2}
        if len(ranks) != 1:
            problems.append(f"lora_A tensors disagree on the rank: {sorted(ranks)}" if ranks else "no lora_A tensors")
            raise AdapterMismatchError(code, problems)
        rank = ranks.pop()
        if rank <= 0:
            problems.append("rank is 0")
        shapes = self.language_keys(rank)
        dtypes = set()
        for key, tensor in tensors.items():
            if key not in shapes:
                continue
            if tuple(tensor.shape) != shapes[key]:
                problems.append(f"{key}: shape {tuple(tensor.shape)}, expected {shapes[key]}")
            if tensor.dtype not in FLOAT_DTYPES:
                problems.append(f"{key}: dtype {tensor.dtype} (allowed: float32, float16, bfloat16)")
            elif not bool(torch.isfinite(tensor).all()):
                problems.append(f"{key}: holds NaN or Inf values")
            dtypes.add(tensor.dtype)
        if len(dtypes) > 1:
            problems.append(f"tensors mix dtypes {sorted(str(d) for d in dtypes)}")
        if problems:
            raise AdapterMismatchError(code, problems)
        return rank

    @torch.no_grad()
    def load_language(self, code: str, tensors: Mapping[str, torch.Tensor], tier: str | None = None) -> None:
        """Add ``code``'s adapters, or replace them (any rank). All-or-nothing: on error nothing changes.

        Not safe while a forward pass runs on another thread; callers that serve traffic swap between batches.
        """
        rank = self.check_language_tensors(code, tensors)
        layout = self.layout
        if code in layout and layout.rank(code) == rank:
            sl = layout.slice(code)
            for m in self.modules:
                for side, bank in m.module.bank_items():
                    prefix = self._key_prefix(m.module, side)
                    bank.lora_A[sl] = tensors[f"{prefix}.lora_A"].to(bank.lora_A)
                    bank.lora_B[:, sl] = tensors[f"{prefix}.lora_B"].to(bank.lora_B)
                    if bank.prune_mask is not None:
                        bank.prune_mask[:, sl] = True
        else:
            new_layout = layout.with_language(code, rank)

            def source(m: AdaptedModule, side: str, lang: str) -> tuple[torch.Tensor, torch.Tensor] | None:
                if lang != code:
                    return None
                prefix = self._key_prefix(m.module, side)
                return tensors[f"{prefix}.lora_A"], tensors[f"{prefix}.lora_B"]

            self._relayout(new_layout, source)
        self.tiers[code] = tier if tier is not None else self.tiers.get(code)
        self.language_versions[code] = next(self._version_counter)

    @torch.no_grad()
    def remove_language(self, code: str) -> None:
        if code not in self.layout:
            raise KeyError(f"language {code!r} is not loaded")
        self._relayout(self.layout.without_language(code), lambda m, side, lang: None)
        self.tiers.pop(code, None)
        self.language_versions.pop(code, None)

    def _relayout(
        self, new_layout: BankLayout, source: Callable[[Any, Side, str], tuple[torch.Tensor, torch.Tensor] | None]
    ) -> None:
        """Rebuild every bank for ``new_layout``: languages kept copy their slices, ``source`` gives new ones.

        All new tensors are built before any module changes, so a failure leaves the model as it was.
        """
        old = self.layout
        planned: list[tuple[AdapterBank, torch.Tensor, torch.Tensor, torch.Tensor | None]] = []
        for m in self.modules:
            for side, bank in m.module.bank_items():
                a_parts: list[torch.Tensor] = []
                b_parts: list[torch.Tensor] = []
                mask_parts: list[torch.Tensor] = []
                for lang in new_layout.codes:
                    given = source(m, side, lang)
                    if given is not None:
                        a_parts.append(given[0].to(bank.lora_A))
                        b_parts.append(given[1].to(bank.lora_B))
                        mask_parts.append(torch.ones_like(b_parts[-1], dtype=torch.bool))
                    else:
                        sl = old.slice(lang)
                        a_parts.append(bank.lora_A[sl])
                        b_parts.append(bank.lora_B[:, sl])
                        if bank.prune_mask is not None:
                            mask_parts.append(bank.prune_mask[:, sl])
                        else:
                            mask_parts.append(torch.ones_like(b_parts[-1], dtype=torch.bool))
                in_f, out_f = bank.lora_A.shape[1], bank.lora_B.shape[0]
                new_a = torch.cat(a_parts, 0) if a_parts else bank.lora_A.new_empty(0, in_f)
                new_b = torch.cat(b_parts, 1) if b_parts else bank.lora_B.new_empty(out_f, 0)
                mask = None
                if bank.prune_mask is not None:
                    mask = torch.cat(mask_parts, 1) if mask_parts else bank.prune_mask.new_empty(out_f, 0)
                planned.append((bank, new_a.contiguous(), new_b.contiguous(), mask))
        for bank, new_a, new_b, mask in planned:
            bank.replace(new_a, new_b, mask)
        self.router.set_layout(new_layout)

    # ---------------------------------------------------------------------------------- accounting
    def trainable_parameters(self) -> list[nn.Parameter]:
        params = [p for m in self.modules for p in m.module.banks.parameters()]
        if self.router.gates is not None:
            params += list(self.router.gates.parameters())
        return params

    def parameter_counts(self) -> dict[str, int]:
        """LSLo parameters per language (A and B of every adapted module and side)."""
        counts = dict.fromkeys(self.layout.codes, 0)
        for m in self.modules:
            per_rank = (m.module.lora_in + m.module.lora_out) * len(m.module.sides)
            for code in counts:
                counts[code] += per_rank * self.layout.rank(code)
        return counts

    @torch.no_grad()
    def nonzero_counts(self) -> dict[str, int]:
        """Non-zero LSLo parameters per language (pruning zeroes entries of B)."""
        counts = dict.fromkeys(self.layout.codes, 0)
        for m in self.modules:
            for _, bank in m.module.bank_items():
                for code in counts:
                    sl = self.layout.slice(code)
                    counts[code] += int(torch.count_nonzero(bank.lora_A[sl])) + int(
                        torch.count_nonzero(bank.lora_B[:, sl])
                    )
        return counts

    # ------------------------------------------------------------------------------------- removal
    def remove(self) -> nn.Module:
        """Put every original ``nn.Linear`` back and restore ``requires_grad``; returns the base model."""
        if self._removed:
            return self.model
        for m in self.modules:
            parent_path, _, attr = m.path.rpartition(".")
            parent = self.model.get_submodule(parent_path)
            setattr(parent, attr, m.module.base)
        if self.router.gates is not None and hasattr(self.model, "lslo_gates"):
            del self.model.lslo_gates
        for name, param in self.model.named_parameters():
            if name in self._frozen_flags:
                param.requires_grad_(self._frozen_flags[name])
        if getattr(self.model, "_lslo", None) is self:
            del self.model._lslo
        self._removed = True
        return self.model
