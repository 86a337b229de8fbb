"""Build LSLo into a Hugging Face ``M2M100ForConditionalGeneration`` (M2M-100, M2M-124, NLLB-200)."""

from __future__ import annotations

from typing import Any

from torch import nn

from lslo.adapters.bank_layout import BankLayout
from lslo.adapters.config import LSLoConfig
from lslo.adapters.handle import AdaptedModule, LSLoHandle
from lslo.adapters.layer import LSLoLinear
from lslo.adapters.layer_map import Side
from lslo.adapters.modules import MODULE_ATTRIBUTES
from lslo.adapters.router import Router
from lslo.adapters.weight_learning import build_gates, gate_key
from lslo.errors import ConfigError, raise_if_problems
from lslo.hf import hf_config


def layer_stacks(model: nn.Module) -> tuple[nn.ModuleList, nn.ModuleList]:
    """(encoder layers, decoder layers) of an M2M100 model or its conditional-generation wrapper."""
    core: Any = getattr(model, "model", model)
    try:
        return core.encoder.layers, core.decoder.layers
    except AttributeError:
        raise ConfigError(
            [f"expected an M2M100ForConditionalGeneration or M2M100Model, got {type(model).__name__}"]
        ) from None


def square_fc_problems(encoder_layers: nn.ModuleList, decoder_layers: nn.ModuleList, d_model: int) -> list[str]:
    """The ``square`` fc mode adapts a d x d slice of fc1/fc2: their ffn dimension must be at least d_model."""
    problems = []
    for stack, layers in (("encoder", encoder_layers), ("decoder", decoder_layers)):
        first: Any = layers[0] if len(layers) else None
        if first is not None and first.fc1.out_features < d_model:
            ffn = first.fc1.out_features
            problems.append(f"square fc mode needs {stack} ffn dim >= d_model ({ffn} < {d_model})")
    return problems


def adapted_span(config: LSLoConfig, name: str, d_model: int) -> tuple[int | None, int | None]:
    """(lora_in, lora_out) of module ``name``: the full width (None), or the released code's d x d slice."""
    if config.fc_mode == "square" and name == "fc1":
        return None, d_model
    if config.fc_mode == "square" and name == "fc2":
        return d_model, None
    return None, None


def inject(model: nn.Module, config: LSLoConfig, *, initialize: bool = True) -> LSLoHandle:
    """Freeze ``model`` and wrap its targeted linears with LSLo. A Kaiming, B zeros: outputs are unchanged.

    ``initialize=False`` skips A's Kaiming init (zeros instead), for callers that load weights right after.
    """
    if getattr(model, "_lslo", None) is not None:
        raise ConfigError(["this model already has LSLo injected; call .remove() on its handle first"])
    encoder_layers, decoder_layers = layer_stacks(model)
    layer_map = config.resolve_layer_map(len(encoder_layers), len(decoder_layers))
    d_model = int(hf_config(model).d_model)
    if config.fc_mode == "square":
        raise_if_problems(square_fc_problems(encoder_layers, decoder_layers, d_model))

    names = {id(m): n for n, m in model.named_modules()}
    frozen_flags = {n: p.requires_grad for n, p in model.named_parameters()}
    for p in model.parameters():
        p.requires_grad_(False)

    gates = None
    if config.weight_learning:
        gates = build_gates(len(encoder_layers), len(decoder_layers), next(model.parameters()).device)
        model.add_module("lslo_gates", gates)
    router = Router(BankLayout.from_ranks((s.code, s.rank) for s in config.languages), config.scaling, gates)

    adapted: list[AdaptedModule] = []
    for stack, layers in (("encoder", encoder_layers), ("decoder", decoder_layers)):
        for index, layer in enumerate(layers):
            sides: tuple[Side, ...] = ("src", "tgt") if config.weight_learning else (layer_map.of(stack)[index],)
            for name in config.modules.of(stack):
                parent_attr, _, attr = MODULE_ATTRIBUTES[name].rpartition(".")
                parent = layer.get_submodule(parent_attr) if parent_attr else layer
                base = getattr(parent, attr)
                if not isinstance(base, nn.Linear):
                    raise ConfigError([f"{names[id(layer)]}.{MODULE_ATTRIBUTES[name]} is not an nn.Linear"])
                lora_in, lora_out = adapted_span(config, name, d_model)
                module = LSLoLinear(
                    base,
                    path=names[id(base)],
                    layer_key=gate_key(stack, index),
                    sides=sides,
                    router=router,
                    lora_in=lora_in,
                    lora_out=lora_out,
                    dropout=config.dropout,
                    weight_learning=config.weight_learning,
                    init_seed=config.init_seed,
                    initialize=initialize,
                )
                setattr(parent, attr, module)
                adapted.append(AdaptedModule(names[id(base)], stack, index, name, module))

    handle = LSLoHandle(model, config, layer_map, router, adapted, frozen_flags)
    # A plain attribute (not a submodule): lets ``find_lslo`` recover the handle and blocks double injection.
    object.__setattr__(model, "_lslo", handle)
    return handle


def find_lslo(model: nn.Module) -> LSLoHandle | None:
    return getattr(model, "_lslo", None)
