"""int8 weights in ``lslo.engine`` (``--dtype int8``) against references written here: a float64 computation of
the quantized product, and Hugging Face ``generate()`` on the same model with every base linear replaced by
that computation (the adapters left in float, as the engine leaves them)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from fastapi.testclient import TestClient
from test_engine import sentence_rows
from transformers import AutoTokenizer, M2M100ForConditionalGeneration

from lslo.devices import weights_dtype
from lslo.engine import DecodingEngine
from lslo.engine.generation import GenerationSettings, generate_ids, requests_for, translate_reference
from lslo.engine.quantize import int8_linear, quantize_weight
from lslo.errors import ConfigError
from lslo.io import load_bundle
from server_helpers import DEMO, DEMO_BUNDLE, FAST, make_app


def reference_int8(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x W^T + b with W quantized per output channel and x per row (symmetric, 127 levels), in float64."""
    w_scale = weight.abs().amax(dim=1).clamp_min(1e-12) / 127  # (out,); an all-zero row stays zero
    w_int = torch.round(weight / w_scale[:, None]).double()  # (out, in) integers
    x_scale = x.abs().amax(dim=-1, keepdim=True).clamp_min(1e-12) / 127  # (..., 1)
    x_int = torch.round(x / x_scale).double()  # (..., in) integers
    y = (x_int @ w_int.T) * x_scale.double() * w_scale.double()  # exact integer sums, then the two scales
    if bias is not None:
        y = y + bias.double()
    return y.float()


def test_int8_linear_matches_the_float64_reference():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 5, 48, generator=gen) * torch.linspace(0.1, 30, 48)  # rows of very different ranges
    weight, bias = torch.randn(40, 48, generator=gen), torch.randn(40, generator=gen)
    q = quantize_weight(weight)
    assert q.values_t.dtype == torch.int8 and q.values_t.shape == (48, 40)
    got = int8_linear(x, q, bias)
    expected = reference_int8(x, weight, bias)
    assert got.shape == (4, 5, 40)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-4)
    exact = F.linear(x, weight, bias)  # and the quantization error is what 8 bits allow
    assert (got - exact).abs().max() < 0.02 * exact.abs().max()


def test_a_rows_result_does_not_depend_on_its_batch():
    gen = torch.Generator().manual_seed(1)
    weight = torch.randn(24, 32, generator=gen)
    q = quantize_weight(weight)
    row = torch.randn(1, 32, generator=gen)
    outlier = torch.randn(7, 32, generator=gen) * 1000  # would coarsen a per-tensor activation scale
    together = int8_linear(torch.cat([outlier, row]), q, None)[-1:]
    assert torch.equal(together, int8_linear(row, q, None))
    zero = int8_linear(torch.zeros(2, 32), q, torch.ones(24))
    assert torch.equal(zero, torch.ones(2, 24))


def test_int8_is_refused_where_it_does_not_apply():
    with pytest.raises(ValueError, match="CPU"):
        weights_dtype("int8", torch.device("cuda"))
    assert weights_dtype("int8", torch.device("cpu")) == torch.float32
    half = M2M100ForConditionalGeneration.from_pretrained(DEMO / "base", dtype=torch.float16)
    with pytest.raises(ConfigError, match="fp32"):
        DecodingEngine(half, None, max_rows=4, int8=True)


@pytest.fixture(scope="module")
def demo():
    tokenizer = AutoTokenizer.from_pretrained(DEMO / "base")
    model = M2M100ForConditionalGeneration.from_pretrained(DEMO / "base", dtype=torch.float32).eval()
    return tokenizer, model, load_bundle(model, DEMO_BUNDLE)


def quantized_linears(model: torch.nn.Module, monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on ``F.linear`` computes the linears of ``model``'s base (not its adapters) in int8."""
    base_weights = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Linear)}
    assert id(model.lm_head.weight) in base_weights
    float_linear = F.linear

    def linear(x, weight, bias=None):
        return reference_int8(x, weight, bias) if id(weight) in base_weights else float_linear(x, weight, bias)

    monkeypatch.setattr(torch.nn.functional, "linear", linear)


def test_greedy_int8_matches_generate_on_the_quantized_model(demo, monkeypatch):
    tokenizer, model, lslo = demo
    rows = sentence_rows(48, seed=11)
    settings = GenerationSettings(num_beams=1, max_new_tokens=40, fallback_to_base=True)
    engine = DecodingEngine(model, lslo, max_rows=16, int8=True)
    requests = requests_for(tokenizer, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], settings, 2)
    got = [list(o.sequences[0]) for o in engine.run(requests)]

    quantized_linears(model, monkeypatch)
    ids = generate_ids(
        model, tokenizer, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], settings, lslo
    )
    monkeypatch.undo()
    expected = [[t for t in row[2:].tolist() if t != tokenizer.pad_token_id] for row in ids]
    assert got == expected
    assert all(p.int8 is not None for p in engine.weights.projections) and engine.weights.lm_head_int8 is not None


def test_the_server_serves_int8(service_dirs, monkeypatch):
    base, bundle = service_dirs
    texts = ["The cat sleeps.", "Where is the station?", "Das Wetter ist kalt."]
    with TestClient(make_app(base, bundle, dtype="int8")) as client:
        response = client.post("/translate", json={"q": texts, "source": "en", "target": "fr"})
        ready = client.get("/ready").json()
    assert response.status_code == 200, response.text
    assert ready["dtype"] == "int8"
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = M2M100ForConditionalGeneration.from_pretrained(base, dtype=torch.float32).eval()
    lslo = load_bundle(model, bundle)
    quantized_linears(model, monkeypatch)
    settings = GenerationSettings(num_beams=FAST["beam"], max_new_tokens=FAST["max_new_tokens"])
    expected = [translate_reference(model, tokenizer, [t], ["en"], ["fr"], settings, lslo)[0][0] for t in texts]
    assert response.json()["translatedText"] == expected


def test_attaching_adapters_keeps_the_quantized_base():
    model = M2M100ForConditionalGeneration.from_pretrained(DEMO / "base", dtype=torch.float32).eval()
    engine = DecodingEngine(model, None, max_rows=4, int8=True)
    before = [p.int8 for p in engine.weights.projections] + [engine.weights.lm_head_int8]
    engine.attach(load_bundle(model, DEMO_BUNDLE))  # the first adapter arrives on a base-only server
    after = [p.int8 for p in engine.weights.projections] + [engine.weights.lm_head_int8]
    assert all(a is b for a, b in zip(before, after, strict=True)) and None not in after
