"""The layer map: for each encoder and decoder layer, whether its LSLo modules route by source or target.

The paper's Weight Learning result for a 12+12 model is encoder layers 1-9 source-indexed, 10-12
target-indexed, decoder all target-indexed. The ``paper`` preset generalises it to other depths by the same
3/4 split rounded half up: 12 encoder layers -> 9 src + 3 tgt, 6 -> 5 + 1, 3 -> 2 + 1, 2 -> 2 + 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Side = Literal["src", "tgt"]
SIDES: tuple[Side, ...] = ("src", "tgt")
LAYER_MAP_PRESETS = ("paper", "all-src", "all-tgt", "src-encoder")


def paper_encoder_src_layers(n_encoder: int) -> int:
    """Number of source-indexed encoder layers in the ``paper`` preset: round_half_up(3/4 * n)."""
    return (3 * n_encoder + 2) // 4


def _sides(side: Side, n: int) -> tuple[Side, ...]:
    return (side,) * n


@dataclass(frozen=True)
class LayerMap:
    encoder: tuple[Side, ...]
    decoder: tuple[Side, ...]

    @classmethod
    def preset(cls, name: str, n_encoder: int, n_decoder: int) -> LayerMap:
        if name == "paper":
            n_src = paper_encoder_src_layers(n_encoder)
            return cls(_sides("src", n_src) + _sides("tgt", n_encoder - n_src), _sides("tgt", n_decoder))
        if name == "all-src":
            return cls(_sides("src", n_encoder), _sides("src", n_decoder))
        if name == "all-tgt":  # also the paper's Table 3 "TGT" (encoder target-indexed, decoder as learned)
            return cls(_sides("tgt", n_encoder), _sides("tgt", n_decoder))
        if name == "src-encoder":  # the paper's Table 3 "SRC": encoder source-indexed, decoder target-indexed
            return cls(_sides("src", n_encoder), _sides("tgt", n_decoder))
        raise KeyError(f"unknown layer-map preset {name!r}; known: {', '.join(LAYER_MAP_PRESETS)}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[str]]) -> LayerMap:
        """``{"encoder": ["src", ...], "decoder": ["tgt", ...]}`` (the manifest / layer_map.json form)."""
        problems = []
        for key in ("encoder", "decoder"):
            if key not in data:
                problems.append(f"layer map has no {key!r} list")
            elif not all(s in SIDES for s in data[key]):
                problems.append(f"layer map {key!r} entries must be 'src' or 'tgt', got {list(data[key])}")
        if problems:
            from lslo.errors import ConfigError

            raise ConfigError(problems, "layer map")
        return cls(tuple(data["encoder"]), tuple(data["decoder"]))  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, list[str]]:
        return {"encoder": list(self.encoder), "decoder": list(self.decoder)}

    def of(self, stack: str) -> tuple[Side, ...]:
        return self.encoder if stack == "encoder" else self.decoder

    def check_depth(self, n_encoder: int, n_decoder: int) -> list[str]:
        problems = []
        if len(self.encoder) != n_encoder:
            problems.append(f"layer map has {len(self.encoder)} encoder entries, the model {n_encoder} layers")
        if len(self.decoder) != n_decoder:
            problems.append(f"layer map has {len(self.decoder)} decoder entries, the model {n_decoder} layers")
        return problems

    def describe(self) -> str:
        """Compact form, e.g. ``enc 1-9 src, 10-12 tgt; dec 1-12 tgt`` (layers counted from 1)."""

        def runs(sides: tuple[Side, ...]) -> str:
            out, start = [], 0
            for i in range(1, len(sides) + 1):
                if i == len(sides) or sides[i] != sides[start]:
                    span = f"{start + 1}" if i - start == 1 else f"{start + 1}-{i}"
                    out.append(f"{span} {sides[start]}")
                    start = i
            return ", ".join(out) or "-"

        return f"enc {runs(self.encoder)}; dec {runs(self.decoder)}"
