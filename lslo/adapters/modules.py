"""Which linear layers of an M2M100 encoder/decoder layer LSLo adapts, and how they are named.

Names follow the paper: q, k, v (self-attention), c-q, c-k, c-v (cross-attention, decoder only), fc1, fc2.
Output projections are not adapted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ENCODER_MODULES: tuple[str, ...] = ("q", "k", "v", "fc1", "fc2")
DECODER_MODULES: tuple[str, ...] = ("q", "k", "v", "c-q", "c-k", "c-v", "fc1", "fc2")
ATTENTION_MODULES = frozenset({"q", "k", "v", "c-q", "c-k", "c-v"})

# Attribute path of each module inside an M2M100EncoderLayer / M2M100DecoderLayer.
MODULE_ATTRIBUTES: dict[str, str] = {
    "q": "self_attn.q_proj",
    "k": "self_attn.k_proj",
    "v": "self_attn.v_proj",
    "c-q": "encoder_attn.q_proj",
    "c-k": "encoder_attn.k_proj",
    "c-v": "encoder_attn.v_proj",
    "fc1": "fc1",
    "fc2": "fc2",
}

MODULE_PRESETS = ("all", "fc", "attn")
_STACK_ALIASES = {"enc": "encoder", "encoder": "encoder", "dec": "decoder", "decoder": "decoder"}


@dataclass(frozen=True)
class TargetModules:
    """Adapted modules per stack, in canonical order."""

    encoder: tuple[str, ...]
    decoder: tuple[str, ...]

    def of(self, stack: str) -> tuple[str, ...]:
        return self.encoder if stack == "encoder" else self.decoder

    def names(self) -> list[str]:
        """Qualified names, e.g. ``["enc.q", ..., "dec.fc2"]`` (the manifest form)."""
        return [f"enc.{m}" for m in self.encoder] + [f"dec.{m}" for m in self.decoder]

    def validate(self) -> list[str]:
        problems = []
        if not self.encoder and not self.decoder:
            problems.append("no target modules selected")
        for m in self.encoder:
            if m not in ENCODER_MODULES:
                problems.append(f"encoder has no module {m!r} (choose from {', '.join(ENCODER_MODULES)})")
        for m in self.decoder:
            if m not in DECODER_MODULES:
                problems.append(f"decoder has no module {m!r} (choose from {', '.join(DECODER_MODULES)})")
        for stack, mods in (("encoder", self.encoder), ("decoder", self.decoder)):
            if len(set(mods)) != len(mods):
                problems.append(f"{stack} modules listed twice: {list(mods)}")
        return problems


def _canonical(mods: set[str], order: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(m for m in order if m in mods) + tuple(sorted(mods - set(order)))


def preset_modules(name: str) -> TargetModules:
    if name == "all":
        return TargetModules(ENCODER_MODULES, DECODER_MODULES)
    if name == "fc":
        return TargetModules(("fc1", "fc2"), ("fc1", "fc2"))
    if name == "attn":
        return TargetModules(
            tuple(m for m in ENCODER_MODULES if m in ATTENTION_MODULES),
            tuple(m for m in DECODER_MODULES if m in ATTENTION_MODULES),
        )
    raise KeyError(name)


def parse_modules(spec: str | Sequence[str] | TargetModules, problems: list[str]) -> TargetModules:
    """``all`` / ``fc`` / ``attn`` / a comma list of names.

    A bare name (``q``, ``fc1``, ``c-v``) selects it in every stack that has it; ``enc.q`` / ``dec.fc1``
    select one stack. Unknown names are appended to ``problems``.
    """
    if isinstance(spec, TargetModules):
        problems.extend(spec.validate())
        return spec
    items = [i.strip() for i in spec.split(",")] if isinstance(spec, str) else [str(i).strip() for i in spec]
    items = [i for i in items if i]
    if len(items) == 1 and items[0] in MODULE_PRESETS:
        return preset_modules(items[0])
    enc: set[str] = set()
    dec: set[str] = set()
    for item in items:
        if item in MODULE_PRESETS:
            preset = preset_modules(item)
            enc.update(preset.encoder)
            dec.update(preset.decoder)
            continue
        stack, dot, name = item.partition(".")
        if dot:
            if stack not in _STACK_ALIASES:
                problems.append(f"module {item!r}: stack must be 'enc' or 'dec'")
                continue
            target = enc if _STACK_ALIASES[stack] == "encoder" else dec
            valid = ENCODER_MODULES if target is enc else DECODER_MODULES
            if name not in valid:
                problems.append(f"module {item!r}: {_STACK_ALIASES[stack]} has no module {name!r}")
                continue
            target.add(name)
        else:
            found = False
            if item in ENCODER_MODULES:
                enc.add(item)
                found = True
            if item in DECODER_MODULES:
                dec.add(item)
                found = True
            if not found:
                problems.append(
                    f"unknown module {item!r}; choose from {', '.join(DECODER_MODULES)}, "
                    f"a preset ({', '.join(MODULE_PRESETS)}) or enc./dec.-qualified names"
                )
    modules = TargetModules(_canonical(enc, ENCODER_MODULES), _canonical(dec, DECODER_MODULES))
    if not items or (not enc and not dec and not problems):
        problems.append("no target modules selected")
    return modules
