"""LSLo configuration as validated data. Builders (``lslo.adapters.inject``) turn it into modules."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from lslo.adapters.layer_map import LAYER_MAP_PRESETS, LayerMap
from lslo.adapters.modules import TargetModules, parse_modules, preset_modules
from lslo.errors import ConfigError, raise_if_problems
from lslo.languages.tables import TIERS, LanguageSpec, is_valid_code, parse_language_list, parse_ranks, tier_assignment

FcMode = Literal["full", "square"]
FC_MODES: tuple[str, ...] = ("full", "square")


@dataclass(frozen=True)
class LSLoConfig:
    """Everything that decides the shape and routing of the adapters.

    - ``languages``: code, rank and tier of each language.
    - ``modules``: adapted linears per stack (presets ``all``, ``fc``, ``attn``).
    - ``fc_mode``: ``full`` applies the paper's equation to the whole fc1/fc2 matrices; ``square`` is the
      released code's d x d slice (fc1: first d of its outputs, fc2: first d of its inputs), which is what
      the paper's #Params column counts.
    - ``layer_map``: a preset name (``paper``, ``all-src``, ``all-tgt``, ``src-encoder``; resolved against the
      model's depth at injection) or an explicit ``LayerMap``. Ignored in Weight Learning mode, where every layer
      has both sides.
    - ``scaling``: multiplies every B A x (the released code uses 1.0, no alpha/r).
    - ``dropout``: dropout on the LoRA input during training.
    - ``weight_learning``: Eq. 5 -- a source- and a target-indexed adapter per module, mixed by softmax weights
      shared by the modules of one layer.
    - ``init_seed``: seeds A's Kaiming init per (module, side, language), so a language's initial weights do
      not depend on which other languages are present.
    """

    languages: tuple[LanguageSpec, ...]
    modules: TargetModules = field(default_factory=lambda: preset_modules("all"))
    fc_mode: FcMode = "full"
    layer_map: LayerMap | str = "paper"
    scaling: float = 1.0
    dropout: float = 0.0
    weight_learning: bool = False
    init_seed: int = 0

    def __post_init__(self) -> None:
        raise_if_problems(self.problems())

    def problems(self) -> list[str]:
        problems = self._language_problems()
        problems.extend(self.modules.validate())
        if self.fc_mode not in FC_MODES:
            problems.append(f"fc_mode {self.fc_mode!r} must be one of {', '.join(FC_MODES)}")
        if isinstance(self.layer_map, str):
            if self.layer_map not in LAYER_MAP_PRESETS:
                problems.append(
                    f"layer map {self.layer_map!r} is not a preset ({', '.join(LAYER_MAP_PRESETS)}) or a LayerMap"
                )
        elif not isinstance(self.layer_map, LayerMap):
            problems.append(f"layer map must be a preset name or a LayerMap, not {type(self.layer_map).__name__}")
        if not (isinstance(self.scaling, (int, float)) and math.isfinite(self.scaling) and self.scaling > 0):
            problems.append(f"scaling {self.scaling!r} must be a positive finite number")
        if not (isinstance(self.dropout, (int, float)) and 0.0 <= self.dropout < 1.0):
            problems.append(f"dropout {self.dropout!r} must be in [0, 1)")
        return problems

    def _language_problems(self) -> list[str]:
        problems: list[str] = []
        if not self.languages:
            problems.append("no languages given")
        seen: set[str] = set()
        for spec in self.languages:
            if not is_valid_code(spec.code):
                problems.append(f"language code {spec.code!r} is not a valid code (like 'en', 'kam' or 'eng_Latn')")
            if spec.code in seen:
                problems.append(f"language {spec.code!r} is listed twice")
            seen.add(spec.code)
            if not isinstance(spec.rank, int) or spec.rank <= 0:
                problems.append(f"rank of {spec.code!r} is {spec.rank!r}; ranks must be positive integers")
            if spec.tier is not None and spec.tier not in TIERS:
                problems.append(f"tier of {spec.code!r} is {spec.tier!r}; tiers are {', '.join(TIERS)}")
        return problems

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(s.code for s in self.languages)

    @property
    def ranks(self) -> dict[str, int]:
        return {s.code: s.rank for s in self.languages}

    def resolve_layer_map(self, n_encoder: int, n_decoder: int) -> LayerMap:
        """The explicit layer map for a model of this depth; ConfigError if an explicit map does not fit."""
        if isinstance(self.layer_map, str):
            return LayerMap.preset(self.layer_map, n_encoder, n_decoder)
        raise_if_problems(self.layer_map.check_depth(n_encoder, n_decoder))
        return self.layer_map

    @classmethod
    def from_strings(
        cls,
        languages: str | Sequence[str],
        ranks: str | int | Mapping[str, int],
        *,
        tiers: str | Mapping[str, str] | None = None,
        modules: str | Sequence[str] | TargetModules = "all",
        fc_mode: str = "full",
        layer_map: str | LayerMap = "paper",
        scaling: float = 1.0,
        dropout: float = 0.0,
        weight_learning: bool = False,
        init_seed: int = 0,
        tier_order: Sequence[str] | None = None,
    ) -> LSLoConfig:
        """Build from the CLI / YAML string forms, reporting every problem of every field in one ConfigError.

        A tier pattern has one rank per tier of ``tier_order`` when given (the default: the order of a
        ``tiers`` string), else the paper's 3 (H;M;V) or 4 (H;M;L;V) values."""
        problems: list[str] = []
        codes = parse_language_list(languages, problems)
        tier_map = tier_assignment(tiers, problems)
        if tier_order is None and isinstance(tiers, str):  # the tiers named, in order (an empty one included)
            named = (part.partition(":")[0].strip().upper() for part in tiers.split(";") if part.strip())
            tier_order = [t for t in dict.fromkeys(named) if t in TIERS]
        rank_map = parse_ranks(ranks, codes, tier_map, problems, tier_order)
        target = parse_modules(modules, problems)
        specs = tuple(LanguageSpec(c, rank_map.get(c, 0), tier_map.get(c)) for c in dict.fromkeys(codes))
        try:
            config = cls(
                languages=specs,
                modules=target,
                fc_mode=fc_mode,  # type: ignore[arg-type]
                layer_map=layer_map,
                scaling=scaling,
                dropout=dropout,
                weight_learning=weight_learning,
                init_seed=init_seed,
            )
        except ConfigError as err:
            # Ranks that failed to parse show up as rank 0 here; keep the parse message, not a second one.
            missing = {c for c in codes if c not in rank_map}
            extra = [p for p in err.problems if not any(p.startswith(f"rank of {c!r}") for c in missing)]
            raise ConfigError(dict.fromkeys(problems + [p for p in extra if p not in problems])) from None
        raise_if_problems(problems)
        return config
