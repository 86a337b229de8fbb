"""Encoding mixed-language batches for M2M100-style tokenizers, without the tokenizer's global ``src_lang``.

M2M100 format: source ``[__src__] pieces [eos]``; target labels ``[__tgt__] pieces [eos]``; the decoder
starts from ``[decoder_start, __tgt__]``. NLLB-200 has the same layout with ``eng_Latn`` tokens. Each row
carries its own language token, so rows of different pairs share one batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from lslo.errors import RoutingError
from lslo.languages.tokens import language_tokens


def lang_token_id(tokenizer: Any, code: str) -> int:
    """Id of ``code``'s language token (``en`` -> ``__en__``, or ``eng_Latn``), looked up only among the
    tokenizer's language tokens; RoutingError if it has none for ``code``."""
    token_id = language_tokens(tokenizer).get(code)
    if token_id is None:
        raise RoutingError(f"the tokenizer has no language token for {code!r}")
    return token_id


def framed(tokenizer: Any, code: str, pieces: Sequence[int]) -> list[int]:
    """``[language token] pieces [eos]``: a source row, or a target row's labels."""
    return [lang_token_id(tokenizer, code), *pieces, tokenizer.eos_token_id]


def pad_rows(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to (batch, max_len) ids and a 0/1 attention mask."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids, mask


def piece_ids(tokenizer: Any, texts: Sequence[str], max_pieces: int | None = None) -> list[list[int]]:
    """Subword ids without special tokens, truncated to ``max_pieces``."""
    out = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    return [ids[:max_pieces] if max_pieces else ids for ids in out]


def encode_sources(
    tokenizer: Any, texts: Sequence[str], src_langs: Sequence[str], max_length: int | None = None
) -> dict[str, torch.Tensor]:
    """``input_ids`` / ``attention_mask`` (batch, len): ``[__src__] pieces [eos]`` per row."""
    if len(texts) != len(src_langs):
        raise ValueError(f"{len(texts)} texts but {len(src_langs)} source languages")
    body = piece_ids(tokenizer, texts, None if max_length is None else max_length - 2)
    rows = [framed(tokenizer, lang, ids) for lang, ids in zip(src_langs, body)]
    ids, mask = pad_rows(rows, tokenizer.pad_token_id)
    return {"input_ids": ids, "attention_mask": mask}


def decoder_prefix(tokenizer: Any, tgt_langs: Sequence[str], decoder_start_token_id: int) -> torch.Tensor:
    """(batch, 2) ``[decoder_start, __tgt__]``: forces each row's target language."""
    return torch.tensor([[decoder_start_token_id, lang_token_id(tokenizer, t)] for t in tgt_langs], dtype=torch.long)


def encode_labels(
    tokenizer: Any, texts: Sequence[str], tgt_langs: Sequence[str], max_length: int | None = None
) -> torch.Tensor:
    """(batch, len) training labels ``[__tgt__] pieces [eos]`` per row, -100 at padding (ignored by the loss).

    Passed as ``labels=`` to an M2M100 model, whose decoder then reads ``[decoder_start, __tgt__] pieces``."""
    if len(texts) != len(tgt_langs):
        raise ValueError(f"{len(texts)} texts but {len(tgt_langs)} target languages")
    body = piece_ids(tokenizer, texts, None if max_length is None else max_length - 2)
    rows = [framed(tokenizer, lang, ids) for lang, ids in zip(tgt_langs, body)]
    ids, mask = pad_rows(rows, tokenizer.pad_token_id)
    return ids.masked_fill(mask == 0, -100)


def phrase_alternatives(tokenizer: Any, phrase: str, capitalised: bool = False) -> tuple[tuple[int, ...], ...]:
    """The token sequences that write ``phrase`` (a decoding constraint, ``lslo.engine.constraints``): after a
    space, as SentencePiece writes a word, and glued to what precedes it (after an opening bracket, say); with
    ``capitalised``, also with a capital first letter (at the start of a sentence). Only sequences that decode
    back to the phrase are kept: a phrase the tokenizer cannot write (unknown characters) has none."""
    variants = [phrase] + ([phrase[:1].upper() + phrase[1:]] if capitalised else [])
    bracket = tokenizer("(", add_special_tokens=False)["input_ids"]
    out: list[tuple[int, ...]] = []
    for variant in dict.fromkeys(variants):
        spaced = tokenizer(variant, add_special_tokens=False)["input_ids"]
        glued = tokenizer("(" + variant, add_special_tokens=False)["input_ids"]
        candidates = [tuple(spaced)]
        if glued[: len(bracket)] == bracket:
            candidates.append(tuple(glued[len(bracket) :]))
        for ids in candidates:
            if ids and ids not in out and tokenizer.decode(list(ids), skip_special_tokens=True).strip() == variant:
                out.append(ids)
    return tuple(out)
