"""Translate a batch whose rows may all have different language pairs, in one ``generate()`` call."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lslo.handle import LSLoHandle
from lslo.tokenization import decoder_prefix, encode_sources


@dataclass(frozen=True)
class GenerationSettings:
    num_beams: int = 5
    max_new_tokens: int = 128
    max_input_tokens: int = 256
    num_return_sequences: int = 1
    length_penalty: float = 1.0
    # A language without an adapter goes through the base model alone (else RoutingError).
    fallback_to_base: bool = False


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
    start = model.generation_config.decoder_start_token_id
    if start is None:
        start = model.config.decoder_start_token_id
    prefix = decoder_prefix(tokenizer, tgt_langs, int(start))
    routing = lslo.route(src_langs, tgt_langs, settings.fallback_to_base) if lslo is not None else nullcontext()
    with routing:
        return model.generate(
            input_ids=enc["input_ids"].to(device),
            attention_mask=enc["attention_mask"].to(device),
            decoder_input_ids=prefix.to(device),
            num_beams=settings.num_beams,
            num_return_sequences=settings.num_return_sequences,
            max_new_tokens=settings.max_new_tokens,
            length_penalty=settings.length_penalty,
            do_sample=False,
            early_stopping=True if settings.num_beams > 1 else False,
        )


def translate(
    model: nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    src_langs: Sequence[str],
    tgt_langs: Sequence[str],
    settings: GenerationSettings = GenerationSettings(),
    lslo: LSLoHandle | None = None,
) -> list[list[str]]:
    """For each row, its ``num_return_sequences`` translations, best first."""
    ids = generate_ids(model, tokenizer, texts, src_langs, tgt_langs, settings, lslo)
    decoded = tokenizer.batch_decode(ids, skip_special_tokens=True)
    k = settings.num_return_sequences
    return [[d.strip() for d in decoded[i * k : (i + 1) * k]] for i in range(len(texts))]
