"""The M2M100 forward passes the engine runs: the encoder over newcomers, cross-attention keys/values once per
row, and one incremental decoder step over every running row (one token each, each at its own position).

Same arithmetic as Hugging Face's ``M2M100ForConditionalGeneration`` (pre-norm layers, scaled embeddings,
fairseq's sinusoidal positions with the pad offset, fp16 clamping in the encoder); different kernels: q/k/v in
one GEMM, ``scaled_dot_product_attention``, the KV cache written in place by slot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from lslo.engine.adapter_pack import AdapterPack, PackedProjection
from lslo.engine.quantize import int8_linear
from lslo.engine.weights import ModelWeights, Norm, Projection

if TYPE_CHECKING:
    from lslo.engine.step_inputs import StepInputs


class RowAdapters:
    """Per-row adapter coefficients of one forward pass, by side: ``src``/``tgt`` -> (rows, R)."""

    def __init__(self, pack: AdapterPack, coef: dict[str, torch.Tensor] | None) -> None:
        self.pack = pack
        self.coef = coef if pack.total_rank else None
        self._repeated: dict[tuple[str, int], torch.Tensor] = {}

    def adapter(self, projection: Projection) -> tuple[PackedProjection | None, torch.Tensor | None]:
        if self.coef is None:
            return None, None
        packed = self.pack.packed.get(projection.index)
        if packed is None:
            return None, None
        key = (packed.side, packed.parts)
        coef = self._repeated.get(key)
        if coef is None:
            base = self.coef[packed.side]
            coef = base.repeat(1, packed.parts) if packed.parts > 1 else base  # (rows, parts * R)
            self._repeated[key] = coef
        return packed, coef


def layer_norm(x: torch.Tensor, n: Norm) -> torch.Tensor:
    return F.layer_norm(x, (x.shape[-1],), n.weight, n.bias, n.eps)


def project(x: torch.Tensor, p: Projection, adapters: RowAdapters) -> torch.Tensor:
    """(rows, ..., in) -> (rows, ..., out): the base GEMM plus each row's adapter ``B (coef * (A x))``."""
    packed, coef = adapters.adapter(p)
    if packed is not None and packed.fused is not None:
        both = F.linear(x, packed.fused, packed.fused_bias)  # (rows, ..., out + parts * R + padding)
        out = p.weight.shape[0]
        y, h = both[..., :out], both[..., out : out + packed.A.shape[0]]
    else:
        y = F.linear(x, p.weight, p.bias) if p.int8 is None else int8_linear(x, p.int8, p.bias)
        if packed is None:
            return y
        h = F.linear(x, packed.A)  # (rows, ..., parts * R)
    assert coef is not None  # an adapter's projection always has its coefficients
    rows = x.shape[0]
    h.mul_(coef.view(rows, *([1] * (h.dim() - 2)), -1))
    if y.dim() == 2:
        return y.addmm_(h, packed.B.t())
    return y.add_(F.linear(h, packed.B))


def heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(rows, seq, d) -> (rows, heads, seq, head_dim)"""
    rows, seq, d = x.shape
    return x.view(rows, seq, n_heads, d // n_heads).transpose(1, 2)


def encode(w: ModelWeights, ids: torch.Tensor, mask: torch.Tensor, adapters: RowAdapters) -> torch.Tensor:
    """ids, mask (m, S) -> encoder states (m, S, d)."""
    keep = mask.to(torch.long)
    positions = torch.cumsum(keep, dim=1) * keep + w.pad_id  # fairseq: pad stays at padding_idx
    x = F.embedding(ids, w.encoder_embed) * w.embed_scale + w.positions[positions]
    attend = mask.to(torch.bool)[:, None, None, :]  # (m, 1, 1, S)
    d = w.d_model
    for layer in w.encoder:
        h = layer_norm(x, layer.self_norm)
        qkv = project(h, layer.qkv, adapters)  # (m, S, 3d)
        q, k, v = (heads(t, w.encoder_heads) for t in qkv.split(d, dim=-1))
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=attend)  # (m, H, S, hd)
        attn = attn.transpose(1, 2).reshape(x.shape)
        x = x + project(attn, layer.out, adapters)
        h = layer_norm(x, layer.ffn_norm)
        h = w.activation(project(h, layer.fc1, adapters))
        x = x + project(h, layer.fc2, adapters)
        if w.clamp_fp16:
            limit = torch.finfo(x.dtype).max - 1000
            x = torch.clamp(x, min=-limit, max=limit)
    return layer_norm(x, w.encoder_norm)


def cross_keys_values(
    w: ModelWeights, states: torch.Tensor, adapters: RowAdapters
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per decoder layer, cross-attention (keys, values), each (m, H, S, hd), from encoder states (m, S, d)."""
    out = []
    for layer in w.decoder:
        kv = project(states, layer.cross_kv, adapters)  # (m, S, 2d)
        k, v = (heads(t, w.decoder_heads) for t in kv.split(w.d_model, dim=-1))
        out.append((k, v))
    return out


def attend(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Batched attention of a few queries per batch entry: q (b, m, hd), keys/values (b, T, hd), bias (b, 1, T)
    additive (0 or -inf) -> (b, m, hd). Two GEMMs and a softmax: for one or a few queries this beats
    ``scaled_dot_product_attention``'s CPU kernels, which are tuned for long queries."""
    scores = torch.baddbmm(bias, q, keys.transpose(1, 2), alpha=q.shape[-1] ** -0.5)  # (b, m, T)
    return torch.bmm(torch.softmax(scores, dim=-1), values)


def decode_step(w: ModelWeights, inputs: StepInputs, adapters: RowAdapters) -> torch.Tensor:
    """One token per row -> decoder states (n, d) after the final norm. ``inputs`` (``StepInputs``):

    tokens, positions (n,): each row's input token and its index in the row's decoder sequence (0 = start).
    self_cache: per layer (keys, values), each (n, H, T, hd) views of the slot cache; this step's keys/values are
    written at ``positions``. self_bias (n * H, 1, T): 0 where a row may attend, -inf elsewhere.
    cross_cache: per layer (keys, values) of each *request* (b, H, S, hd), shared by its beams; groups (b, k)
    lists each request's rows (padded with any of its rows), ungroup (n,) each row's place in ``groups``
    flattened; cross_bias (b * H, 1, S).
    """
    tokens, positions, groups, ungroup = inputs.tokens, inputs.positions, inputs.groups, inputs.ungroup
    self_cache, cross_cache = inputs.self_cache, inputs.cross_cache
    self_bias, cross_bias = inputs.self_bias, inputs.cross_bias
    n, d, n_heads = tokens.shape[0], w.d_model, w.decoder_heads
    hd = d // n_heads
    b, k = groups.shape
    rows = torch.arange(n, device=tokens.device)
    x = F.embedding(tokens, w.embed_tokens) * w.embed_scale + w.positions[positions + (w.pad_id + 1)]  # (n, d)
    for i, layer in enumerate(w.decoder):
        h = layer_norm(x, layer.self_norm)
        qkv = project(h, layer.qkv, adapters)  # (n, 3d)
        q, key, value = qkv.view(n, 3, n_heads, hd).unbind(1)  # each (n, H, hd)
        keys, values = self_cache[i]
        keys[rows, :, positions] = key
        values[rows, :, positions] = value
        t = keys.shape[2]
        attn = attend(
            q.reshape(n * n_heads, 1, hd),
            keys.reshape(n * n_heads, t, hd),
            values.reshape(n * n_heads, t, hd),
            self_bias,
        )  # (n * H, 1, hd)
        x = x + project(attn.view(n, d), layer.out, adapters)
        h = layer_norm(x, layer.cross_norm)
        q = project(h, layer.cross_q, adapters)  # (n, d)
        q = q[groups].view(b, k, n_heads, hd).transpose(1, 2).reshape(b * n_heads, k, hd)
        ck, cv = cross_cache[i]
        s = ck.shape[2]
        attn = attend(q, ck.reshape(b * n_heads, s, hd), cv.reshape(b * n_heads, s, hd), cross_bias)
        attn = attn.view(b, n_heads, k, hd).transpose(1, 2).reshape(b * k, d)[ungroup]  # (n, d)
        x = x + project(attn, layer.cross_out, adapters)
        h = layer_norm(x, layer.ffn_norm)
        h = w.activation(project(h, layer.fc1, adapters))
        x = x + project(h, layer.fc2, adapters)
    return layer_norm(x, w.decoder_norm)


def logits(w: ModelWeights, hidden: torch.Tensor) -> torch.Tensor:
    """Decoder states (n, d) -> float32 logits (n, V)."""
    if w.lm_head_int8 is not None:
        return int8_linear(hidden, w.lm_head_int8, None)
    return F.linear(hidden, w.lm_head).float()
