"""Shared fixtures: a SentencePiece tokenizer trained on a small text fixture, and tiny M2M100 models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, M2M100Config, M2M100ForConditionalGeneration

from training.tokenizer import build_tokenizer, model_vocab_size

FIXTURES = Path(__file__).parent / "fixtures"
LANG12 = ("en", "fr", "de", "it", "zh", "nl", "ja", "ko", "oc", "or", "sd", "wo")


@pytest.fixture(scope="session")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):
    lines = (FIXTURES / "text.txt").read_text(encoding="utf-8").splitlines()
    return build_tokenizer(lines, tmp_path_factory.mktemp("tokenizer"), vocab_size=300)


def tiny_config(vocab_size: int = 200, **overrides) -> M2M100Config:
    values = dict(
        vocab_size=vocab_size,
        d_model=32,
        encoder_layers=4,
        decoder_layers=3,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=128,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        encoder_layerdrop=0.0,
        decoder_layerdrop=0.0,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
    )
    values.update(overrides)
    return M2M100Config(**values)


def tiny_model(seed: int = 0, dtype: torch.dtype = torch.float32, vocab_size: int = 200, **overrides):
    torch.manual_seed(seed)
    model = M2M100ForConditionalGeneration(tiny_config(vocab_size, **overrides)).to(dtype).eval()
    model.generation_config.pad_token_id = 1
    model.generation_config.eos_token_id = 2
    model.generation_config.decoder_start_token_id = 2
    return model


@pytest.fixture
def make_model():
    return tiny_model


@pytest.fixture
def model_for(tokenizer):
    """A tiny model sized for the fixture tokenizer."""

    def build(seed: int = 0, dtype: torch.dtype = torch.float32, **overrides):
        return tiny_model(seed, dtype, vocab_size=model_vocab_size(tokenizer), **overrides)

    return build


def randomize_adapters(lslo, seed: int = 0, std: float = 0.3) -> None:
    """Give every A and B random values so that adapters change outputs."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in lslo.trainable_parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype) * std)


# ------------------------------------------------------------------------------------------- training fixtures

TRAIN_LANGS = "en,fr,de,nl"
TRAIN_TIERS = "H:en,fr;M:de;V:nl"


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small many-way corpus built by ``python -m training corpus`` from Django and CLDR data."""
    from training.corpus import CorpusSettings, run_corpus

    out = tmp_path_factory.mktemp("corpus") / "data"
    run_corpus(
        CorpusSettings(
            out=out, languages=TRAIN_LANGS, tiers=TRAIN_TIERS, dev=60, devtest=30, train_share="H:1,M:0.5,V:0.2", seed=3
        )
    )
    return out


@pytest.fixture(scope="session")
def base_dir(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random ``test``-preset base (dropout 0, so that runs are comparable across process counts)."""
    from training.base import InitBaseSettings, run_init_base

    out = tmp_path_factory.mktemp("base") / "base"
    run_init_base(
        InitBaseSettings(
            data=corpus_dir, languages=TRAIN_LANGS, out=out, preset="test", vocab_size=400, dropout=0.0, seed=0
        )
    )
    return out


def finetune_args(base: Path, data: Path, out: Path, **overrides) -> dict:
    """Flags of a fast LSLo run on the session corpus (dict form of the CLI)."""
    args = dict(
        method="lslo",
        base=base,
        data=data,
        out=out,
        languages=TRAIN_LANGS,
        tiers=TRAIN_TIERS,
        ranks="2;2;8",
        epochs=3,
        max_tokens=600,
        threads=1,
        progress=False,
        seed=0,
        log_every=5,
        split="dev",
        valid_share=0,
        select="last",
    )  # the paper's recipe: all of dev, the last epoch
    args.update(overrides)
    return args


# --------------------------------------------------------------------------------------------- server fixtures

SERVE_LANGS = ("en", "fr", "de", "oc")


@pytest.fixture(scope="session")
def service_dirs(tokenizer, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(base, bundle): a tiny random base with the fixture tokenizer and random adapters for four languages."""
    from lslo import LSLoConfig, inject
    from lslo.io import save_bundle
    from training.tokenizer import model_vocab_size

    root = tmp_path_factory.mktemp("service")
    model = tiny_model(seed=21, vocab_size=model_vocab_size(tokenizer))
    model.save_pretrained(root / "base")
    tokenizer.save_pretrained(root / "base")
    # What init-base records: the languages the base was trained on, which the service offers by default.
    (root / "base" / "base_info.json").write_text(json.dumps({"languages": list(SERVE_LANGS)}))
    lslo = inject(model, LSLoConfig.from_strings(",".join(SERVE_LANGS), "2;2;8", tiers="H:en,fr;M:de;V:oc"))
    randomize_adapters(lslo, seed=4, std=0.3)
    save_bundle(lslo, root / "bundle", base_name="tiny-random")
    return root / "base", root / "bundle"


# ------------------------------------------------------------------------------ checkpoints in real formats


@pytest.fixture(scope="session")
def nllb_tokenizer(tmp_path_factory: pytest.TempPathFactory):
    """An NLLB-200-format tokenizer (NllbTokenizer, tokenizer.json, eng_Latn... as added special tokens)."""
    from training.tokenizer import build_nllb_tokenizer

    lines = (FIXTURES / "text.txt").read_text(encoding="utf-8").splitlines()
    return build_nllb_tokenizer(lines, tmp_path_factory.mktemp("nllb-tokenizer"), vocab_size=300)


def save_checkpoint(tokenizer, path: Path, seed: int = 0) -> Path:
    """A tiny random M2M100 model sized for ``tokenizer``, saved with it as a Hugging Face directory."""
    model = tiny_model(seed=seed, vocab_size=model_vocab_size(tokenizer))
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def nllb_base(nllb_tokenizer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_checkpoint(nllb_tokenizer, tmp_path_factory.mktemp("nllb") / "base", seed=31)


@pytest.fixture(scope="session")
def m2m_base(tokenizer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_checkpoint(tokenizer, tmp_path_factory.mktemp("m2m") / "base", seed=32)


def _base_translations(base_dir, texts, src, tgt):
    """The base alone's greedy translations by Hugging Face's generate(), one sentence at a time, each at most
    min(128, 3 x its source pieces + 10) tokens long: the length limit evaluation applies, computed here by hand."""
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model = M2M100ForConditionalGeneration.from_pretrained(base_dir).eval()
    tokenizer.src_lang = src
    out = []
    for text in texts:
        ids = tokenizer(text, return_tensors="pt")
        limit = min(128, 3 * len(tokenizer(text, add_special_tokens=False)["input_ids"]) + 10)
        with torch.no_grad():
            generated = model.generate(
                **ids,
                forced_bos_token_id=tokenizer.get_lang_id(tgt),
                num_beams=1,
                do_sample=False,
                max_new_tokens=limit + 1,
            )  # the language token + limit
        out.append(tokenizer.decode(generated[0], skip_special_tokens=True).strip())
    return out


@pytest.fixture(scope="module")
def gate_case(base_dir, corpus_dir, tmp_path_factory):
    """(bundle, valid): random adapters for en, fr, de, and en-fr validation pairs whose French side is the base's
    own translation, so that the base alone scores chrF++ 100 on en→fr."""
    from lslo import LSLoConfig, inject
    from lslo.io import save_bundle
    from lslo.languages.tables import LanguageSpec

    root = tmp_path_factory.mktemp("gate")
    english = (corpus_dir / "devtest" / "eng.devtest").read_text(encoding="utf-8").splitlines()[:5]
    french = _base_translations(base_dir, english, "en", "fr")
    assert all(french)
    (root / "valid").mkdir()
    (root / "valid" / "valid.en-fr.en").write_text("".join(f"{t}\n" for t in english), encoding="utf-8")
    (root / "valid" / "valid.en-fr.fr").write_text("".join(f"{t}\n" for t in french), encoding="utf-8")
    model = M2M100ForConditionalGeneration.from_pretrained(base_dir)
    lslo = inject(model, LSLoConfig(languages=tuple(LanguageSpec(c, 4, "H") for c in ("en", "fr", "de"))))
    randomize_adapters(lslo, seed=1)
    save_bundle(lslo, root / "bundle")
    return root / "bundle", root / "valid"
