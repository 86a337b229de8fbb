"""Translate texts whose rows may all have different language pairs.

``translate`` runs ``lslo.engine`` (continuous batching, an owned decoding loop). ``generate_ids`` /
``translate_reference`` run Hugging Face ``generate()`` on the same rows: the reference the engine is tested
against (and the path for models in Weight Learning mode, which the engine does not decode).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from lslo.adapters.handle import LSLoHandle
from lslo.engine import DecodeRequest, DecodingEngine
from lslo.engine.constraints import Constraint, constrained_beams
from lslo.hf import hf_config, hf_generation_config
from lslo.languages.tokenization import (
    decoder_prefix,
    encode_sources,
    framed,
    lang_token_id,
    phrase_alternatives,
    piece_ids,
)


@dataclass(frozen=True)
class GenerationSettings:
    num_beams: int = 5
    max_new_tokens: int = 128
    max_input_tokens: int = 256
    num_return_sequences: int = 1
    length_penalty: float = 1.0
    # A language without an adapter goes through the base model alone (else RoutingError).
    fallback_to_base: bool = False
    # Marian's --max-length-factor: a row generates at most ratio x its source pieces + offset tokens (and never
    # more than max_new_tokens), so that a model repeating itself stops early. None: max_new_tokens alone, as
    # Hugging Face generate() does (``generate_ids`` has one limit per batch and always ignores the ratio).
    max_length_ratio: float | None = None
    max_length_offset: int = 10

    def new_tokens_for(self, source_pieces: int) -> int:
        """The most tokens a row of ``source_pieces`` pieces (language token and </s> not counted) generates."""
        if self.max_length_ratio is None:
            return self.max_new_tokens
        return max(1, min(self.max_new_tokens, int(self.max_length_ratio * source_pieces) + self.max_length_offset))


@torch.no_grad()
def generate_ids(
    model: nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    src_langs: Sequence[str],
    tgt_langs: Sequence[str],
    settings: GenerationSettings = GenerationSettings(),
    lslo: LSLoHandle | None = None,
) -> torch.Tensor:
    """(batch * num_return_sequences, len) token ids; ``lslo=None`` translates with the base model alone."""
    if settings.num_return_sequences > settings.num_beams:
        raise ValueError("num_return_sequences cannot exceed num_beams")
    device = next(model.parameters()).device
    enc = encode_sources(tokenizer, texts, src_langs, settings.max_input_tokens)
    prefix = decoder_prefix(tokenizer, tgt_langs, decoder_start(model))
    routing = lslo.route(src_langs, tgt_langs, settings.fallback_to_base) if lslo is not None else nullcontext()
    with routing:
        generate: Any = getattr(model, "generate")  # noqa: B009 (a Hugging Face model's)
        return generate(
            input_ids=enc["input_ids"].to(device),
            attention_mask=enc["attention_mask"].to(device),
            decoder_input_ids=prefix.to(device),
            num_beams=settings.num_beams,
            num_return_sequences=settings.num_return_sequences,
            max_new_tokens=settings.max_new_tokens,
            length_penalty=settings.length_penalty,
            do_sample=False,
            early_stopping=settings.num_beams > 1,
        )


def decoder_start(model: nn.Module) -> int:
    start = getattr(hf_generation_config(model), "decoder_start_token_id", None)
    return int(start if start is not None else hf_config(model).decoder_start_token_id)


def requests_for(
    tokenizer: Any,
    texts: Sequence[str],
    src_langs: Sequence[str],
    tgt_langs: Sequence[str],
    settings: GenerationSettings,
    start: int,
    adapters: bool = True,
) -> list[DecodeRequest]:
    """Engine requests of ``texts`` (sources truncated to ``max_input_tokens`` as ``encode_sources`` does)."""
    if not len(texts) == len(src_langs) == len(tgt_langs):
        raise ValueError(f"{len(texts)} texts, {len(src_langs)} source and {len(tgt_langs)} target languages")
    body = piece_ids(tokenizer, texts, settings.max_input_tokens - 2)
    return [
        decode_request(tokenizer, ids, s, t, start, settings, adapters=adapters)
        for ids, s, t in zip(body, src_langs, tgt_langs)
    ]


def decode_request(
    tokenizer: Any,
    ids: Sequence[int],
    src: str,
    tgt: str,
    start: int,
    settings: GenerationSettings,
    *,
    num_beams: int | None = None,
    num_return_sequences: int | None = None,
    constraints: tuple[Constraint, ...] = (),
    adapters: bool = True,
) -> DecodeRequest:
    """The engine request of one source's pieces ``ids`` (no language token, no ``</s>``) from ``src`` into
    ``tgt``: ``[src] ids </s>`` in, ``[start, tgt]`` as the decoder's prefix, at most
    ``settings.new_tokens_for(len(ids))`` new tokens; beams and returned sequences the settings' unless given."""
    return DecodeRequest(
        tuple(framed(tokenizer, src, ids)),
        (start, lang_token_id(tokenizer, tgt)),
        src,
        tgt,
        num_beams=num_beams or settings.num_beams,
        num_return_sequences=num_return_sequences or settings.num_return_sequences,
        max_new_tokens=settings.new_tokens_for(len(ids)),
        length_penalty=settings.length_penalty,
        adapters=adapters,
        constraints=constraints,
    )


def translate(
    model: nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    src_langs: Sequence[str],
    tgt_langs: Sequence[str],
    settings: GenerationSettings = GenerationSettings(),
    lslo: LSLoHandle | None = None,
    *,
    max_rows: int = 256,
    engine: DecodingEngine | None = None,
    required: Sequence[Sequence[str]] | None = None,
) -> list[list[str]]:
    """For each row, its ``num_return_sequences`` translations, best first (through ``lslo.engine``; at most
    ``max_rows`` hypotheses decode together, the rest join as rows finish). ``engine``: one to reuse across
    calls (built for this ``model`` and ``lslo``; see ``engine_for``). ``required``: per row, phrases every
    translation must contain (glossary terms, placeholders), enforced by constrained beam search (rows with
    some get at least 4 beams, one more than their phrases up to 8)."""
    if settings.num_return_sequences > settings.num_beams:
        raise ValueError("num_return_sequences cannot exceed num_beams")
    if not texts:
        return []
    if lslo is not None and lslo.config.weight_learning:
        return translate_reference(model, tokenizer, texts, src_langs, tgt_langs, settings, lslo)
    base_alone = lslo is not None and lslo.router.base_only  # inside ``lslo.base_only()``: the base alone
    requests = requests_for(
        tokenizer, texts, src_langs, tgt_langs, settings, decoder_start(model), adapters=not base_alone
    )
    if required is not None:
        if len(required) != len(texts):
            raise ValueError(f"{len(texts)} texts and {len(required)} lists of required phrases")
        requests = [constrained(r, tokenizer, phrases) for r, phrases in zip(requests, required)]
    if engine is None:
        beams = max(r.num_beams for r in requests)
        rows = max(beams, min(max_rows, len(texts) * beams))
        engine = engine_for(model, None if base_alone else lslo, settings, rows)
    with torch.inference_mode():
        outputs = engine.run(requests)
    return [[d.strip() for d in tokenizer.batch_decode(list(o.sequences), skip_special_tokens=True)] for o in outputs]


def constrained(request: DecodeRequest, tokenizer: Any, phrases: Sequence[str]) -> DecodeRequest:
    """``request`` with ``phrases`` as constraints (each written after a space, glued, or capitalised)."""
    constraints = tuple(c for c in (phrase_alternatives(tokenizer, p, capitalised=True) for p in phrases) if c)
    if not constraints:
        return request
    return replace(request, constraints=constraints, num_beams=constrained_beams(request.num_beams, len(constraints)))


def engine_for(
    model: nn.Module, lslo: LSLoHandle | None, settings: GenerationSettings, max_rows: int = 256
) -> DecodingEngine:
    """A decoding engine for repeated ``translate`` calls with ``settings`` (adapters as they are now)."""
    return DecodingEngine(
        model,
        lslo,
        max_rows=max(settings.num_beams, max_rows),
        max_new_tokens=settings.max_new_tokens,
        fallback_to_base=settings.fallback_to_base,
    )


def translate_reference(
    model: nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    src_langs: Sequence[str],
    tgt_langs: Sequence[str],
    settings: GenerationSettings = GenerationSettings(),
    lslo: LSLoHandle | None = None,
) -> list[list[str]]:
    """``translate`` through one Hugging Face ``generate()`` call: the reference for tests."""
    ids = generate_ids(model, tokenizer, texts, src_langs, tgt_langs, settings, lslo)
    decoded = tokenizer.batch_decode(ids, skip_special_tokens=True)
    k = settings.num_return_sequences
    return [[d.strip() for d in decoded[i * k : (i + 1) * k]] for i in range(len(texts))]
