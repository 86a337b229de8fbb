"""``init-base``: a tokenizer trained on the data and a randomly initialised M2M100 of a preset size, saved as a
Hugging Face model directory (the starting point of ``pretrain``). The tokenizer is M2M-100's (SentencePiece,
``__en__`` tokens) or NLLB-200's (``tokenizer.json``, ``eng_Latn`` tokens); the data is any form ``--data``
takes (see ``training.corpora``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field
from transformers import M2M100Config, M2M100ForConditionalGeneration

from lslo.errors import raise_if_problems
from lslo.languages.codes import lookup
from lslo.languages.tables import parse_language_list
from lslo.languages.tokens import LanguageVocabulary
from training.corpora import DataReport, detect_format, read_corpus
from training.settings import Settings
from training.tokenizer import M2M100_CODES, build_nllb_tokenizer, build_tokenizer, model_vocab_size

SIZE_PRESETS = {
    "test": dict(d_model=32, layers=2, ffn=64, heads=4),  # for tests: seconds
    "tiny": dict(d_model=256, layers=3, ffn=1024, heads=4),  # the demo base: ~6M parameters + embeddings
    "small": dict(d_model=512, layers=6, ffn=2048, heads=8),
    # The demo base: a deeper encoder than decoder (Kasai et al. 2021) buys quality at little decoding cost;
    # ~16M parameters with a 12k vocabulary, what 2 CPU cores pretrain in hours.
    "demo": dict(d_model=384, layers=4, decoder_layers=2, ffn=1536, heads=6),
}


class InitBaseSettings(Settings):
    data: Path = Field(description="data whose text trains the tokenizer (any form finetune's --data takes)")
    languages: str = Field("auto", description="auto (every language of the data), lang12, lang30 or a comma list")
    tokenizer: Literal["m2m", "nllb"] = Field(
        "m2m", description="M2M-100's format (__en__ tokens) or NLLB-200's (eng_Latn tokens)"
    )
    out: Path = Field(description="where to write the model and tokenizer")
    preset: Literal["test", "tiny", "demo", "small"] = Field("tiny", description="model size")
    vocab_size: int = Field(8000, ge=32, description="SentencePiece pieces (a soft limit on small data)")
    spm_splits: str = Field(
        "train,dev",
        description="FLORES data: splits whose text trains the tokenizer "
        "(missing splits are skipped; never the test split)",
    )
    dropout: float = Field(0.1, ge=0, lt=1)
    max_positions: int = Field(256, ge=16)
    seed: int = 0


def tokenizer_text(settings: InitBaseSettings, problems: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(lines, language codes, splits read): the text of the chosen languages that trains the tokenizer."""
    flores = detect_format(settings.data) == "flores"
    splits = (
        [s.strip() for s in settings.spm_splits.split(",") if (settings.data / s.strip()).is_dir()]
        if flores
        else ["all"]
    )
    if flores and not splits:
        problems.append(f"none of the splits {settings.spm_splits!r} exists in {settings.data}")
    report = DataReport()
    corpora = [read_corpus(settings.data, split, report) for split in splits]
    problems.extend(report.problems)
    found = sorted({c for corpus in corpora if corpus for c in corpus.train.languages})
    if settings.languages == "auto":
        codes = [c for c in found if lookup(c) is not None]
    else:
        codes = parse_language_list(settings.languages, problems)
        missing = [c for c in codes if not any(lookup(f) and lookup(f) == lookup(c) for f in found)]
        if missing and not report.problems:
            problems.append(f"the data has no text in {', '.join(missing)} (it has {', '.join(found)})")
    wanted = {lookup(c) for c in codes}
    lines = [
        line
        for corpus in corpora
        if corpus
        for code, column in corpus.train.lines.items()
        if lookup(code) in wanted
        for line in column
        if line
    ]
    return lines, codes, splits


def model_config_for(settings: InitBaseSettings, tokenizer: Any) -> M2M100Config:
    """The M2M100 configuration of ``settings.preset`` around ``tokenizer``'s vocabulary and special tokens."""
    size = SIZE_PRESETS[settings.preset]
    return M2M100Config(
        vocab_size=model_vocab_size(tokenizer),
        d_model=size["d_model"],
        encoder_layers=size["layers"],
        decoder_layers=size.get("decoder_layers", size["layers"]),
        encoder_attention_heads=size["heads"],
        decoder_attention_heads=size["heads"],
        encoder_ffn_dim=size["ffn"],
        decoder_ffn_dim=size["ffn"],
        max_position_embeddings=settings.max_positions,
        dropout=settings.dropout,
        attention_dropout=0.0,
        activation_dropout=0.0,
        encoder_layerdrop=0.0,
        decoder_layerdrop=0.0,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=0,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.eos_token_id,
        scale_embedding=True,
        tie_word_embeddings=True,
    )


def run_init_base(settings: InitBaseSettings) -> Path:
    problems: list[str] = settings.problems()
    lines, codes, splits = tokenizer_text(settings, problems)
    if settings.tokenizer == "m2m":
        vocabulary = LanguageVocabulary(None, {c: -1 for c in M2M100_CODES})
        unsupported = [c for c in codes if vocabulary.model_code(c) is None]
        if unsupported:
            problems.append(
                f"languages {unsupported} have no M2M-100 language token: use --tokenizer nllb (202 languages)"
            )
    if settings.out.exists() and any(settings.out.iterdir()):
        problems.append(f"{settings.out} exists and is not empty")
    raise_if_problems(problems, "inputs")

    settings.out.mkdir(parents=True, exist_ok=True)
    build = build_tokenizer if settings.tokenizer == "m2m" else build_nllb_tokenizer
    tokenizer = build(lines, settings.out, settings.vocab_size)
    model_codes = LanguageVocabulary(tokenizer)
    codes = [model_codes.model_code(c) or c for c in codes]
    config = model_config_for(settings, tokenizer)
    torch.manual_seed(settings.seed)
    model = M2M100ForConditionalGeneration(config)
    generation = model.generation_config
    generation.decoder_start_token_id = tokenizer.eos_token_id
    generation.eos_token_id = tokenizer.eos_token_id
    generation.pad_token_id = tokenizer.pad_token_id
    generation.bos_token_id = 0
    model.save_pretrained(settings.out)
    info = {
        "preset": settings.preset,
        "tokenizer": settings.tokenizer,
        "languages": codes,
        "vocab_size": config.vocab_size,
        "sentencepiece_pieces": tokenizer.vocab_size,
        "spm_splits": splits,
        "seed": settings.seed,
        "parameters": sum(p.numel() for p in model.parameters()),
        "data": str(settings.data),
    }
    (settings.out / "base_info.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    print(
        f"base model: {settings.preset}, {info['parameters'] / 1e6:.2f}M parameters, "
        f"{tokenizer.vocab_size} pieces -> {settings.out}"
    )
    return settings.out
