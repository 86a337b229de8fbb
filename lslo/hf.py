"""The configuration of a Hugging Face model held as an ``nn.Module``.

torch types a module's attributes as tensors or modules; these read ``config`` and ``generation_config`` as the
untyped objects they are, in one place.
"""

from __future__ import annotations

from typing import Any

from torch import nn


def hf_config(model: nn.Module) -> Any:
    """``model.config`` (a ``PretrainedConfig``; its fields depend on the architecture)."""
    return getattr(model, "config")  # noqa: B009


def hf_generation_config(model: nn.Module) -> Any:
    """``model.generation_config``, or None for a model without one."""
    return getattr(model, "generation_config", None)
