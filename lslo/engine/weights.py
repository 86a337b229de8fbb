"""The frozen base of an M2M100 model as the engine reads it: fused projections, norms, embeddings.

The weights are the model's own tensors (views, or one concatenation for the fused q/k/v projections), never a
second copy of the whole model. Where LSLo is injected, each projection remembers which ``LSLoLinear`` modules
feed it, in output order, so that ``lslo.engine.adapter_pack`` can pack their adapters next to it: a frozen
projection's weight moves into a taller tensor whose spare rows hold the adapters' A (``reserve_rows``), and the
model's linears are re-pointed at views of it (same values), so that base and A are one GEMM.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import M2M100ForConditionalGeneration
from transformers.activations import ACT2FN

from lslo.adapters.layer import LSLoLinear
from lslo.engine.quantize import Int8Weight, quantize_weight
from lslo.errors import ConfigError
from lslo.hf import hf_config


@dataclass
class Projection:
    """One GEMM of the base (``weight (out, in)``, ``bias (out,)``) built from one or more linears that read the
    same input; ``parts`` are those linears in output order (an ``LSLoLinear`` carries adapters)."""

    weight: torch.Tensor
    bias: torch.Tensor | None
    parts: tuple[nn.Module, ...]
    name: str
    index: int = -1  # its place in ``ModelWeights.projections``: the key of its packed adapters
    int8: Int8Weight | None = None  # set when the engine runs the base in int8 (``weight`` is then unused)
    storage: torch.Tensor | None = None  # (out + spare, in): ``weight`` in its first rows (``reserve_rows``)

    def part_sizes(self) -> list[int]:
        return [int(base_linear(p).out_features) for p in self.parts]


def base_linear(module: nn.Module) -> nn.Linear:
    return module.base if isinstance(module, LSLoLinear) else module  # type: ignore[return-value]


def fuse(name: str, *modules: nn.Module) -> Projection:
    linears = [base_linear(m) for m in modules]
    if len(linears) == 1:
        weight: torch.Tensor = linears[0].weight
        bias: torch.Tensor | None = linears[0].bias
    else:
        weight = torch.cat([lin.weight for lin in linears], 0).contiguous()
        biases = [lin.bias for lin in linears]
        present: list[torch.Tensor] = [b for b in biases if b is not None]
        bias = torch.cat(present, 0).contiguous() if len(present) == len(biases) else None
    return Projection(weight.detach(), None if bias is None else bias.detach(), tuple(modules), name)


def reserve_rows(projection: Projection, rows: int) -> torch.Tensor | None:
    """``(out + rows, in)``: the projection's weight followed by ``rows`` rows for the caller to fill (the adapters'
    A, so that one GEMM gives the base output and the adapters' hidden activations); None where the weight stays
    as it is (int8, or a weight or bias that trains: the optimizer updates it in place).

    The spare rows grow by doubling. Growing copies the model's linears' current weights into a new tensor and
    re-points those linears at views of it (inference mode off: the model stays usable for training and
    ``generate()``), so that the engine and the model share one copy."""
    linears = [base_linear(p) for p in projection.parts]
    if projection.int8 is not None or any(
        t is not None and t.requires_grad for lin in linears for t in (lin.weight, lin.bias)
    ):
        return None
    out, width = projection.weight.shape
    spare = 0 if projection.storage is None else projection.storage.shape[0] - out
    if rows > spare:
        with torch.inference_mode(False), torch.no_grad():
            storage = projection.weight.new_empty(out + max(rows, 2 * spare), width)
            start = 0
            for linear in linears:
                view = storage[start : start + linear.out_features]
                view.copy_(linear.weight)
                linear.weight.data = view
                start += linear.out_features
        projection.weight, projection.storage = storage[:out], storage
    assert projection.storage is not None
    return projection.storage[: out + rows]


@dataclass
class Norm:
    weight: torch.Tensor
    bias: torch.Tensor
    eps: float


def norm(layer_norm: nn.LayerNorm) -> Norm:
    return Norm(layer_norm.weight.detach(), layer_norm.bias.detach(), float(layer_norm.eps))


@dataclass
class EncoderLayerWeights:
    self_norm: Norm
    qkv: Projection
    out: Projection
    ffn_norm: Norm
    fc1: Projection
    fc2: Projection


@dataclass
class DecoderLayerWeights:
    self_norm: Norm
    qkv: Projection
    out: Projection
    cross_norm: Norm
    cross_q: Projection
    cross_kv: Projection
    cross_out: Projection
    ffn_norm: Norm
    fc1: Projection
    fc2: Projection


@dataclass
class ModelWeights:
    d_model: int
    encoder_heads: int
    decoder_heads: int
    embed_scale: float
    pad_id: int
    encoder_embed: torch.Tensor  # (vocab, d)
    embed_tokens: torch.Tensor  # (vocab, d) the decoder's (M2M100 shares one table for both and the output layer)
    lm_head: torch.Tensor  # (vocab, d)
    positions: torch.Tensor  # (max_positions + 2, d) sinusoidal table, rows 0 and 1 unused (pad offset)
    encoder: list[EncoderLayerWeights]
    encoder_norm: Norm
    decoder: list[DecoderLayerWeights]
    decoder_norm: Norm
    activation: Callable[[torch.Tensor], torch.Tensor]
    clamp_fp16: bool
    lm_head_int8: Int8Weight | None = None

    @property
    def projections(self) -> list[Projection]:
        out: list[Projection] = []
        for e in self.encoder:
            out += [e.qkv, e.out, e.fc1, e.fc2]
        for d in self.decoder:
            out += [d.qkv, d.out, d.cross_q, d.cross_kv, d.cross_out, d.fc1, d.fc2]
        return out


def sinusoidal_table(rows: int, dim: int, padding_idx: int) -> torch.Tensor:
    """The M2M100 / fairseq positional table (tensor2tensor layout: sines then cosines), pad row zeroed."""
    half = dim // 2
    scale = math.log(10000) / (half - 1)
    freqs = torch.exp(torch.arange(half, dtype=torch.int64).float() * -scale)
    angles = torch.arange(rows, dtype=torch.int64).float().unsqueeze(1) * freqs.unsqueeze(0)
    table = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1).view(rows, -1)
    if dim % 2 == 1:
        table = torch.cat([table, torch.zeros(rows, 1)], dim=1)
    table[padding_idx, :] = 0
    return table


def _encoder_layer(layer: Any) -> EncoderLayerWeights:
    """An ``M2M100EncoderLayer``'s norms and projections (q, k, v fused into one)."""
    return EncoderLayerWeights(
        norm(layer.self_attn_layer_norm),
        fuse("self_qkv", layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj),
        fuse("self_out", layer.self_attn.out_proj),
        norm(layer.final_layer_norm),
        fuse("fc1", layer.fc1),
        fuse("fc2", layer.fc2),
    )


def _decoder_layer(layer: Any) -> DecoderLayerWeights:
    """An ``M2M100DecoderLayer``'s norms and projections (self-attention q, k, v fused; cross-attention k, v)."""
    return DecoderLayerWeights(
        norm(layer.self_attn_layer_norm),
        fuse("self_qkv", layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj),
        fuse("self_out", layer.self_attn.out_proj),
        norm(layer.encoder_attn_layer_norm),
        fuse("cross_q", layer.encoder_attn.q_proj),
        fuse("cross_kv", layer.encoder_attn.k_proj, layer.encoder_attn.v_proj),
        fuse("cross_out", layer.encoder_attn.out_proj),
        norm(layer.final_layer_norm),
        fuse("fc1", layer.fc1),
        fuse("fc2", layer.fc2),
    )


def model_weights(model: nn.Module, max_positions: int, int8: bool = False) -> ModelWeights:
    """Read an ``M2M100ForConditionalGeneration`` (with or without LSLo) for ``lslo.engine``; ``int8``: also
    quantize every projection and the output layer (fp32 models on the CPU; ``lslo.engine.quantize``)."""
    if not isinstance(model, M2M100ForConditionalGeneration):  # Bart, Marian... differ in ways that matter here
        raise ConfigError([f"the decoding engine needs an M2M100ForConditionalGeneration, got {type(model).__name__}"])
    if int8 and model.lm_head.weight.dtype != torch.float32:
        raise ConfigError([f"int8 weights are made from an fp32 model, got {model.lm_head.weight.dtype}"])
    core = model.model
    config = hf_config(model)
    encoder, decoder = core.encoder, core.decoder
    dtype, device = model.lm_head.weight.dtype, model.lm_head.weight.device
    table = sinusoidal_table(max_positions + 2, int(config.d_model), int(config.pad_token_id))
    enc_layers = [_encoder_layer(layer) for layer in encoder.layers]
    dec_layers = [_decoder_layer(layer) for layer in decoder.layers]
    weights = ModelWeights(
        d_model=int(config.d_model),
        encoder_heads=int(config.encoder_attention_heads),
        decoder_heads=int(config.decoder_attention_heads),
        embed_scale=math.sqrt(config.d_model) if config.scale_embedding else 1.0,
        pad_id=int(config.pad_token_id),
        encoder_embed=encoder.embed_tokens.weight.detach(),
        embed_tokens=decoder.embed_tokens.weight.detach(),
        lm_head=model.lm_head.weight.detach(),
        positions=table.to(device=device, dtype=dtype),
        encoder=enc_layers,
        encoder_norm=norm(encoder.layer_norm),
        decoder=dec_layers,
        decoder_norm=norm(decoder.layer_norm),
        activation=ACT2FN[config.activation_function],
        clamp_fp16=dtype == torch.float16,
    )
    for index, projection in enumerate(weights.projections):
        projection.index = index
    if int8:
        for projection in weights.projections:
            projection.int8 = quantize_weight(projection.weight)
        weights.lm_head_int8 = quantize_weight(weights.lm_head)
    return weights
