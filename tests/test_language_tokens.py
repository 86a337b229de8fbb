"""Language tokens of real tokenizer formats, and the codes users send for them."""

import pytest
import torch
from transformers import AutoTokenizer

from lslo.errors import RoutingError
from lslo.languages.codes import language_name, lookup
from lslo.languages.tokenization import encode_sources, lang_token_id
from lslo.languages.tokens import LanguageVocabulary, language_tokens


def test_nllb_codes_resolve_only_to_language_tokens(nllb_base):
    tokenizer = AutoTokenizer.from_pretrained(nllb_base)
    assert type(tokenizer).__name__.startswith("Nllb")
    # "en" is an ordinary subword piece of this vocabulary; it must never be taken for English.
    assert tokenizer.convert_tokens_to_ids("en") != tokenizer.unk_token_id
    with pytest.raises(RoutingError, match="no language token for 'en'"):
        lang_token_id(tokenizer, "en")
    assert lang_token_id(tokenizer, "eng_Latn") == tokenizer.convert_tokens_to_ids("eng_Latn")
    assert len(language_tokens(tokenizer)) == 202 and "eng_Latn" in language_tokens(tokenizer)


def test_m2m_codes_resolve_to_their_bracketed_tokens(m2m_base):
    tokenizer = AutoTokenizer.from_pretrained(m2m_base)
    assert lang_token_id(tokenizer, "en") == tokenizer.get_lang_id("en")
    assert lang_token_id(tokenizer, "zh") == tokenizer.get_lang_id("zh")
    with pytest.raises(RoutingError):
        lang_token_id(tokenizer, "eng_Latn")  # not a code of this model
    assert len(language_tokens(tokenizer)) == 100


@pytest.mark.parametrize("src_lang,code", [("fra_Latn", "fra_Latn"), ("zho_Hans", "zho_Hans")])
def test_source_encoding_matches_nllbs_own(nllb_base, src_lang, code):
    """Our per-row encoding is what NllbTokenizer writes with its global src_lang: [code] pieces </s>."""
    tokenizer = AutoTokenizer.from_pretrained(nllb_base)
    tokenizer.src_lang = src_lang
    reference = tokenizer("The cat sleeps.")["input_ids"]
    ours = encode_sources(tokenizer, ["The cat sleeps."], [code])["input_ids"][0]
    assert ours.tolist() == reference


def test_source_encoding_matches_m2ms_own(m2m_base):
    tokenizer = AutoTokenizer.from_pretrained(m2m_base)
    tokenizer.src_lang = "fr"
    assert (
        encode_sources(tokenizer, ["Le chat dort."], ["fr"])["input_ids"][0].tolist()
        == tokenizer("Le chat dort.")["input_ids"]
    )


def test_user_codes_and_model_codes_map_both_ways(nllb_base, m2m_base):
    nllb = LanguageVocabulary(AutoTokenizer.from_pretrained(nllb_base))
    m2m = LanguageVocabulary(AutoTokenizer.from_pretrained(m2m_base))
    for user, nllb_code, m2m_code in [
        ("en", "eng_Latn", "en"),
        ("zh", "zho_Hans", "zh"),
        ("pt", "por_Latn", "pt"),
        ("ast", "ast_Latn", "ast"),
        ("ms", "zsm_Latn", "ms"),
    ]:
        assert nllb.model_code(user) == nllb_code and nllb.user_code(nllb_code) == user
        assert m2m.model_code(user) == m2m_code and m2m.user_code(m2m_code) == user
        assert nllb.model_code(m2m_code) == nllb_code and m2m.model_code(nllb_code) == m2m_code  # either family
    assert nllb.model_code("zh-Hant") == "zho_Hant" and nllb.user_code("zho_Hant") == "zh-Hant"
    assert m2m.model_code("zh-Hant") is None  # M2M-100 has no traditional Chinese
    assert nllb.model_code("ks-Deva") == "kas_Deva" and nllb.model_code("xx") is None
    assert nllb.name("zho_Hant") == "Chinese (Traditional)" and m2m.name("br") == "Breton"


def test_the_table_has_every_code_of_both_model_families_once():
    from transformers.models.m2m_100.tokenization_m2m_100 import FAIRSEQ_LANGUAGE_CODES as M2M
    from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES as NLLB

    for code in [*M2M["m2m100"], *NLLB]:
        assert lookup(code) is not None, code
    assert language_name("eng_Latn") == language_name("en") == language_name("eng") == "English"


def test_translation_with_an_nllb_checkpoint_runs_and_matches_hf_generate(nllb_base):
    from transformers import M2M100ForConditionalGeneration

    from lslo.engine.generation import GenerationSettings, translate

    tokenizer = AutoTokenizer.from_pretrained(nllb_base)
    model = M2M100ForConditionalGeneration.from_pretrained(nllb_base).eval()
    settings = GenerationSettings(num_beams=2, max_new_tokens=8)
    ours = translate(model, tokenizer, ["The cat sleeps."], ["eng_Latn"], ["fra_Latn"], settings)[0][0]
    tokenizer.src_lang = "eng_Latn"
    inputs = tokenizer(["The cat sleeps."], return_tensors="pt")
    with torch.no_grad():
        ids = model.generate(
            **inputs, num_beams=2, max_new_tokens=8, forced_bos_token_id=tokenizer.convert_tokens_to_ids("fra_Latn")
        )
    assert ours == tokenizer.batch_decode(ids, skip_special_tokens=True)[0].strip()
