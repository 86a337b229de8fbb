"""``init-base``: a SentencePiece tokenizer trained on the data and a randomly initialised M2M100 of a preset
size, saved as a Hugging Face model directory (the starting point of ``pretrain``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field
from transformers import M2M100Config, M2M100ForConditionalGeneration

from lslo.errors import raise_if_problems
from lslo.languages import parse_language_list
from training.flores import missing_languages, read_split
from training.settings import Settings
from training.tokenizer import M2M100_CODES, build_tokenizer, model_vocab_size

SIZE_PRESETS = {
    "test": dict(d_model=32, layers=2, ffn=64, heads=4),  # for tests: seconds
    "tiny": dict(d_model=256, layers=3, ffn=1024, heads=4),  # the demo base: ~6M parameters + embeddings
    "small": dict(d_model=512, layers=6, ffn=2048, heads=8),
}


class InitBaseSettings(Settings):
    data: Path = Field(description="data directory (FLORES layout) whose text trains the SentencePiece model")
    languages: str = Field(description="lang12, lang30 or a comma list of codes")
    out: Path = Field(description="where to write the model and tokenizer")
    preset: Literal["test", "tiny", "small"] = Field("tiny", description="model size")
    vocab_size: int = Field(8000, ge=32, description="SentencePiece pieces (a soft limit on small data)")
    spm_splits: str = Field("train,dev", description="splits whose text trains the SentencePiece model "
                                                     "(missing splits are skipped; never the test split)")
    dropout: float = Field(0.1, ge=0, lt=1)
    max_positions: int = Field(256, ge=16)
    seed: int = 0


def run_init_base(settings: InitBaseSettings) -> Path:
    problems: list[str] = settings.problems()
    codes = parse_language_list(settings.languages, problems)
    unsupported = [c for c in codes if c not in M2M100_CODES]
    if unsupported:
        problems.append(f"languages {unsupported} have no M2M-100 language token; the tokenizer built here "
                        "supports M2M-100's 100 codes")
    splits = [s.strip() for s in settings.spm_splits.split(",") if (settings.data / s.strip()).is_dir()]
    if not splits:
        problems.append(f"none of the splits {settings.spm_splits!r} exists in {settings.data}")
    for split in splits:
        problems.extend(missing_languages(settings.data, split, codes))
    if settings.out.exists() and any(settings.out.iterdir()):
        problems.append(f"{settings.out} exists and is not empty")
    raise_if_problems(problems, "inputs")

    lines: list[str] = []
    for split in splits:
        data = read_split(settings.data, split, codes)
        for code in codes:
            lines += [line for line in data.lines[code] if line]
    settings.out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(lines, settings.out, settings.vocab_size)
    size = SIZE_PRESETS[settings.preset]
    config = M2M100Config(
        vocab_size=model_vocab_size(tokenizer), d_model=size["d_model"], encoder_layers=size["layers"],
        decoder_layers=size["layers"], encoder_attention_heads=size["heads"], decoder_attention_heads=size["heads"],
        encoder_ffn_dim=size["ffn"], decoder_ffn_dim=size["ffn"], max_position_embeddings=settings.max_positions,
        dropout=settings.dropout, attention_dropout=0.0, activation_dropout=0.0, encoder_layerdrop=0.0,
        decoder_layerdrop=0.0, pad_token_id=tokenizer.pad_token_id, bos_token_id=0,
        eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.eos_token_id,
        scale_embedding=True, tie_word_embeddings=True,
    )
    torch.manual_seed(settings.seed)
    model = M2M100ForConditionalGeneration(config)
    generation = model.generation_config
    generation.decoder_start_token_id = tokenizer.eos_token_id
    generation.eos_token_id = tokenizer.eos_token_id
    generation.pad_token_id = tokenizer.pad_token_id
    generation.bos_token_id = 0
    model.save_pretrained(settings.out)
    info = {"preset": settings.preset, "languages": codes, "vocab_size": config.vocab_size,
            "sentencepiece_pieces": tokenizer.vocab_size, "spm_splits": splits, "seed": settings.seed,
            "parameters": sum(p.numel() for p in model.parameters()), "data": str(settings.data)}
    (settings.out / "base_info.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    print(f"base model: {settings.preset}, {info['parameters'] / 1e6:.2f}M parameters, "
          f"{tokenizer.vocab_size} pieces -> {settings.out}")
    return settings.out
