"""Build an M2M100 tokenizer from local text: a SentencePiece model plus ``vocab.json``.

The vocabulary is fairseq's: ``<s>``, ``<pad>``, ``</s>``, ``<unk>``, then the SentencePiece pieces. All of
M2M-100's language tokens are registered as additional special tokens *in M2M-100's order*: the tokenizer
places language ``i`` at id ``len(vocab) + i``, and registering them in that order makes the added-token ids
agree with ``get_lang_id`` (otherwise decoding leaks ``__fr__``). Size the model's embedding as
``model_vocab_size(tokenizer)``: ``len(vocab) + 100 languages + 8 made-up words``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from pathlib import Path

import sentencepiece as spm
from transformers import M2M100Tokenizer
from transformers.models.m2m_100.tokenization_m2m_100 import FAIRSEQ_LANGUAGE_CODES

SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
M2M100_CODES: tuple[str, ...] = tuple(FAIRSEQ_LANGUAGE_CODES["m2m100"])


def train_sentencepiece(lines: Iterable[str], out_dir: Path, vocab_size: int) -> Path:
    """Train a BPE SentencePiece model on ``lines`` (deterministic: one thread, no input sampling)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter([line for line in lines if line.strip()]),
        model_writer=model,
        vocab_size=vocab_size,
        model_type="bpe",
        character_coverage=1.0,
        byte_fallback=False,
        unk_id=0,
        bos_id=-1,
        eos_id=-1,
        pad_id=-1,
        shuffle_input_sentence=False,
        num_threads=1,
        minloglevel=2,
        hard_vocab_limit=False,
    )
    path = out_dir / "sentencepiece.bpe.model"
    path.write_bytes(model.getvalue())
    return path


def write_vocab(spm_path: Path, out_dir: Path) -> Path:
    sp = spm.SentencePieceProcessor(model_file=str(spm_path))
    vocab = {tok: i for i, tok in enumerate(SPECIALS)}
    for i in range(sp.get_piece_size()):
        piece = sp.id_to_piece(i)
        if piece not in vocab:
            vocab[piece] = len(vocab)
    path = out_dir / "vocab.json"
    path.write_text(json.dumps(vocab, ensure_ascii=False, indent=0), encoding="utf-8")
    return path


def build_tokenizer(lines: Iterable[str], out_dir: str | Path, vocab_size: int = 4000) -> M2M100Tokenizer:
    """Train on ``lines`` and return a tokenizer whose files live in ``out_dir`` (also ``save_pretrained``-ed)."""
    out = Path(out_dir)
    spm_path = train_sentencepiece(lines, out, vocab_size)
    vocab_path = write_vocab(spm_path, out)
    tokenizer = M2M100Tokenizer(
        str(vocab_path), str(spm_path), additional_special_tokens=[f"__{c}__" for c in M2M100_CODES]
    )
    tokenizer.save_pretrained(str(out))
    return tokenizer


def model_vocab_size(tokenizer: M2M100Tokenizer) -> int:
    """Embedding rows a model needs for this tokenizer: pieces + language tokens + 8 made-up words."""
    return tokenizer.vocab_size + len(tokenizer.lang_code_to_id) + tokenizer.num_madeup_words
