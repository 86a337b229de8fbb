"""Build a tokenizer from local text, in either on-disk format of the M2M100 family.

**M2M-100** (``M2M100Tokenizer``): a SentencePiece model plus ``vocab.json``.

The vocabulary is fairseq's: ``<s>``, ``<pad>``, ``</s>``, ``<unk>``, then the SentencePiece pieces. All of
M2M-100's language tokens are registered as additional special tokens *in M2M-100's order*: the tokenizer
places language ``i`` at id ``len(vocab) + i``, and registering them in that order makes the added-token ids
agree with ``get_lang_id`` (otherwise decoding leaks ``__fr__``). Size the model's embedding as
``model_vocab_size(tokenizer)``: ``len(vocab) + 100 languages + 8 made-up words``.

**NLLB-200** (``NllbTokenizer``, a fast tokenizer saved as ``tokenizer.json``): a byte-pair model trained with
the ``tokenizers`` library on the same text (Metaspace pre-tokenization, as NLLB's SentencePiece model), then
NLLB's 202 language codes (``eng_Latn``...) and ``<mask>`` as added special tokens after the pieces.
"""

from __future__ import annotations

import io
import json
import string
from collections.abc import Iterable
from pathlib import Path
from typing import Any

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
        # Every printable ASCII character is a piece, seen in the corpus or not: format directives, tags, URLs and
        # paths (``{name}``, ``%s``, ``<b>``, ``~/``) must be writable, or no decoding constraint can keep them.
        required_chars=string.ascii_letters + string.digits + string.punctuation,
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


def build_nllb_tokenizer(lines: Iterable[str], out_dir: str | Path, vocab_size: int = 4000) -> Any:
    """An NLLB-format tokenizer trained on ``lines`` and saved in ``out_dir`` (``tokenizer.json``)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import NllbTokenizer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.Metaspace()
    bpe.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIALS), show_progress=False)
    bpe.train_from_iterator([line for line in lines if line.strip()], trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    tokenizer = NllbTokenizer(vocab=bpe.get_vocab(), merges=merges)
    tokenizer.save_pretrained(str(out))
    return tokenizer


def model_vocab_size(tokenizer: Any) -> int:
    """Embedding rows a model needs for this tokenizer. M2M-100: pieces + language tokens + 8 made-up words
    (language ids lie beyond ``len(tokenizer)``); NLLB: every token, language codes and ``<mask>`` included."""
    if isinstance(tokenizer, M2M100Tokenizer):
        return tokenizer.vocab_size + len(tokenizer.lang_code_to_id) + tokenizer.num_madeup_words
    return len(tokenizer)
