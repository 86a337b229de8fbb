"""The service on real checkpoint formats, with no bundle: every language of the base, under clients' codes,
through the base alone; adapters added at run time serve next to the base-only languages, in the same batch."""

import pytest
import torch
from fastapi.testclient import TestClient
from transformers import AutoTokenizer, M2M100ForConditionalGeneration

from conftest import randomize_adapters
from lslo import LSLoConfig, inject
from lslo.engine.generation import GenerationSettings, translate
from lslo.io import save_bundle
from server_helpers import make_app

TEXT = "The cat sleeps."


def base_alone(base, text, source, target):
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = M2M100ForConditionalGeneration.from_pretrained(base).eval()
    settings = GenerationSettings(num_beams=2, max_new_tokens=10)
    return translate(model, tokenizer, [text], [source], [target], settings)[0][0]


@pytest.mark.parametrize(
    "fixture,en,fr,count", [("nllb_base", "eng_Latn", "fra_Latn", 202), ("m2m_base", "en", "fr", 100)]
)
def test_a_base_without_a_bundle_serves_all_its_languages_under_clients_codes(request, fixture, en, fr, count):
    base = request.getfixturevalue(fixture)
    for bundle in ("none", "auto"):  # auto: a base other than the demo's has no bundle
        with TestClient(make_app(base, bundle)) as c:
            languages = c.get("/languages").json()
            codes = {entry["code"] for entry in languages}
            assert len(languages) == count and {"en", "fr", "zh"} <= codes and not any(e["adapter"] for e in languages)
            if count == 202:
                assert "zh-Hant" in codes and "eng_Latn" not in codes  # clients' codes, not the model's
            response = c.post("/translate", json={"q": TEXT, "source": "en", "target": "fr"}).json()
            assert response["translatedText"] == base_alone(base, TEXT, en, fr)
            by_model_code = c.post("/translate", json={"q": TEXT, "source": en, "target": fr}).json()
            assert by_model_code == response  # the model's own codes are accepted too
            assert c.get("/adapters").json()["bundle"] == "none" and c.get("/adapters").json()["languages"] == []


def test_the_languages_offered_can_be_chosen(nllb_base):
    with TestClient(make_app(nllb_base, "none", languages="en,fr,zh-Hant")) as c:
        assert [e["code"] for e in c.get("/languages").json()] == ["en", "fr", "zh-Hant"]
        response = c.post("/translate", json={"q": TEXT, "source": "en", "target": "de"})
        assert response.status_code == 400 and "supported: en, fr, zh-Hant" in response.json()["error"]
    with pytest.raises(Exception, match="no language token for xx"):
        with TestClient(make_app(nllb_base, "none", languages="en,xx")):
            pass


def test_an_adapter_added_at_run_time_serves_next_to_base_only_languages(nllb_base, tmp_path):
    """Upload fra_Latn's adapter into a base-only service: fr rows change, others stay the base's, all batched."""
    model = M2M100ForConditionalGeneration.from_pretrained(nllb_base)
    lslo = inject(model, LSLoConfig.from_strings("fra_Latn", "4"))
    randomize_adapters(lslo, seed=3, std=0.5)
    save_bundle(lslo, tmp_path / "bundle")
    data = (tmp_path / "bundle" / "fra_Latn.safetensors").read_bytes()
    with TestClient(make_app(nllb_base, "none", admin_token="tok", max_wait_ms=100)) as c:
        before = {
            p: c.post("/translate", json={"q": TEXT, "source": "en", "target": p}).json()["translatedText"]
            for p in ("fr", "de")
        }
        added = c.put("/adapters/fr", content=data, headers={"Authorization": "Bearer tok"})
        assert added.status_code == 200 and added.json()["action"] == "added" and added.json()["language"] == "fra_Latn"
        assert {e["code"]: e["adapter"] for e in c.get("/languages").json()}["fr"] is True
        both = c.post("/translate", json={"q": [TEXT, TEXT], "source": "en", "target": "fr"}).json()["translatedText"]
        german = c.post("/translate", json={"q": TEXT, "source": "en", "target": "de"}).json()["translatedText"]
        assert both[0] != before["fr"] and german == before["de"]
        # A file made for another base is refused and the service stays as it was.
        other = tmp_path / "other"
        torch.manual_seed(1)
        foreign = M2M100ForConditionalGeneration(model.config)
        foreign_lslo = inject(foreign, LSLoConfig.from_strings("deu_Latn", "4"))
        save_bundle(foreign_lslo, other)
        refused = c.put(
            "/adapters/de",
            content=(other / "deu_Latn.safetensors").read_bytes(),
            headers={"Authorization": "Bearer tok"},
        )
        assert refused.status_code == 400 and "another base model" in refused.json()["error"]
        assert c.delete("/adapters/fr", headers={"Authorization": "Bearer tok"}).status_code == 200
        assert (
            c.post("/translate", json={"q": TEXT, "source": "en", "target": "fr"}).json()["translatedText"]
            == before["fr"]
        )  # back to the base alone
