"""Trainable-parameter accounting: builds the model on the meta device and injects LSLo, allocating no weights."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import M2M100Config, M2M100ForConditionalGeneration

from lslo.adapters.config import LSLoConfig
from lslo.adapters.inject import inject


@dataclass(frozen=True)
class ParameterCount:
    total: int
    per_language: dict[str, int]
    modules_per_language: int  # adapted linears (x sides) each language has an adapter in
    base_total: int  # parameters of the base model

    def fraction_of_base(self) -> float:
        return self.total / self.base_total if self.base_total else float("nan")


def count_parameters(model_config: M2M100Config, config: LSLoConfig) -> ParameterCount:
    with torch.device("meta"):
        model = M2M100ForConditionalGeneration(model_config)
    base_total = sum(p.numel() for p in model.parameters())
    lslo = inject(model, config)
    per_language = lslo.parameter_counts()
    gates = sum(p.numel() for p in lslo.router.gates.parameters()) if lslo.router.gates is not None else 0
    modules = sum(len(m.module.sides) for m in lslo.modules)
    return ParameterCount(sum(per_language.values()) + gates, per_language, modules, base_total)
