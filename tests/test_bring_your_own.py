"""A user's own checkpoint (NLLB-200 or M2M-100 format) and plain bilingual files, end to end: fine-tune on
OPUS/Moses-style files, then serve the bundle with languages that have no adapter in the same batches, and answer
a LibreTranslate client from a real server process."""

import concurrent.futures as cf

import pytest
import torch
from fastapi.testclient import TestClient
from transformers import AutoTokenizer, M2M100ForConditionalGeneration

from conftest import finetune_args
from lslo.engine.generation import GenerationSettings, translate
from lslo.io import load_bundle, read_manifest
from server_helpers import make_app, server_process
from training.recipes.finetune import FinetuneSettings, run_finetune
from training.settings import build_settings

TEXT = "Open the file."
FORMATS = [
    ("nllb_base", {"en": "eng_Latn", "fr": "fra_Latn", "de": "deu_Latn", "ja": "jpn_Jpan"}),
    ("m2m_base", {"en": "en", "fr": "fr", "de": "de", "ja": "ja"}),
]


def write_moses(corpus_dir, out):
    """The corpus's en-fr text as OPUS distributes a pair: ``Tiny.en-fr.en`` + ``Tiny.en-fr.fr``."""
    out.mkdir(parents=True)
    for lang, stem in (("en", "eng"), ("fr", "fra")):
        text = (corpus_dir / "dev" / f"{stem}.dev").read_text(encoding="utf-8")
        (out / f"Tiny.en-fr.{lang}").write_text(text, encoding="utf-8")
    return out


def library(base, bundle, text, source, target):
    """The translation computed with the library alone, one row; languages without adapters fall back."""
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = M2M100ForConditionalGeneration.from_pretrained(base, dtype=torch.float32).eval()
    lslo = load_bundle(model, bundle)
    settings = GenerationSettings(num_beams=2, max_new_tokens=10, fallback_to_base=True)
    return translate(model, tokenizer, [text], [source], [target], settings, lslo)[0][0]


def base_alone(base, text, source, target):
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = M2M100ForConditionalGeneration.from_pretrained(base, dtype=torch.float32).eval()
    return translate(model, tokenizer, [text], [source], [target], GenerationSettings(2, 10))[0][0]


@pytest.fixture(scope="module", params=FORMATS, ids=["nllb", "m2m"])
def trained(request, corpus_dir, tmp_path_factory):
    """(base, bundle, model codes): LSLo adapters fine-tuned on Moses-style en-fr files."""
    fixture, codes = request.param
    base = request.getfixturevalue(fixture)
    root = tmp_path_factory.mktemp(fixture)
    data = write_moses(corpus_dir, root / "opus")
    args = finetune_args(
        base,
        data,
        root / "run",
        languages="auto",
        tiers=None,
        ranks="4",
        epochs=2,
        lr=0.02,
        split="auto",
        valid_share=0.1,
        select="best",
    )
    bundle = run_finetune(build_settings(FinetuneSettings, args))
    return base, bundle, codes


def test_the_bundle_holds_the_pair_in_the_models_codes(trained):
    base, bundle, codes = trained
    manifest = read_manifest(bundle)
    assert sorted(manifest.languages) == sorted([codes["en"], codes["fr"]])
    validation = manifest.extra["validation"]
    assert validation["pairs"] == 2 * 6 and validation["base_loss"] > 0  # 10 % of 60 segments, both directions


def test_adapter_and_fallback_rows_share_batches(trained):
    base, bundle, codes = trained
    pairs = [("en", "fr"), ("fr", "en"), ("en", "de"), ("de", "ja")]
    with TestClient(make_app(base, bundle, max_wait_ms=300, max_batch_size=16)) as c:
        languages = {e["code"]: e["adapter"] for e in c.get("/languages").json()}
        assert languages["fr"] and languages["en"] and not languages["de"] and not languages["ja"]
        with cf.ThreadPoolExecutor(len(pairs)) as pool:
            got = list(
                pool.map(
                    lambda p: c.post("/translate", json={"q": TEXT, "source": p[0], "target": p[1]}).json()[
                        "translatedText"
                    ],
                    pairs,
                )
            )
        metrics = c.get("/metrics").text
    rows = [float(line.split()[-1]) for line in metrics.splitlines() if line.startswith("lslo_batch_rows_")]
    assert rows and max(rows) > 1  # some generate() call held more than one row
    for (source, target), text in zip(pairs, got):
        assert text == library(base, bundle, TEXT, codes[source], codes[target]), (source, target)
    # de->ja has no adapter on either side: exactly the base alone
    assert got[3] == base_alone(base, TEXT, codes["de"], codes["ja"])


@pytest.mark.slow
def test_a_libretranslate_client_gets_en_to_fr_from_a_real_server(trained):
    from libretranslatepy import LibreTranslateAPI

    base, bundle, codes = trained
    with server_process(["--base", str(base), "--bundle", str(bundle), "--beam", "2", "--max-new-tokens", "10"]) as url:
        client = LibreTranslateAPI(url)
        assert client.translate(TEXT, "en", "fr") == library(base, bundle, TEXT, codes["en"], codes["fr"])
        assert client.translate(TEXT, "de", "ja") == base_alone(base, TEXT, codes["de"], codes["ja"])
        assert {"en", "fr", "de", "ja", "zh"} <= {lang["code"] for lang in client.languages()}
