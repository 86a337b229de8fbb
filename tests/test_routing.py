"""Per-row routing: a reference loop of Eq. 3 / Eq. 5, mixed batches versus rows alone, and isolation."""

import pytest
import torch

from conftest import randomize_adapters
from lslo import LSLoConfig, inject
from lslo.engine.generation import GenerationSettings, generate_ids

PAIRS = [("en", "oc"), ("fr", "zh"), ("wo", "de"), ("ja", "en"), ("fr", "fr"), ("oc", "wo")]


def reference_output(module, x, src, tgt, layout, scaling, gates=None):
    """Loop over rows: W x + b + sum_side w_side * scaling * B_l A_l x on the adapted slice."""
    y = torch.nn.functional.linear(x, module.base.weight, module.base.bias).clone()
    for i in range(x.shape[0]):
        for side, bank in module.banks.items():
            lang = src[i] if side == "src" else tgt[i]
            sl = layout.slice(lang)
            a, b = bank.lora_A[sl], bank.lora_B[:, sl]  # (r, in), (out, r)
            delta = scaling * (x[i, ..., : module.lora_in] @ a.T) @ b.T
            weight = 1.0 if gates is None else gates[0 if side == "src" else 1]
            y[i, ..., : module.lora_out] += weight * delta
    return y


@pytest.mark.parametrize("fc_mode", ["full", "square"])
@pytest.mark.parametrize("weight_learning", [False, True])
@pytest.mark.parametrize("grad", [False, True], ids=["no-grad", "grad"])
def test_module_matches_reference_loop(make_model, fc_mode, weight_learning, grad):
    """With grad off (and one side per module) the inference fast path runs; with grad on, the autograd path."""
    model = make_model(dtype=torch.float64)
    config = LSLoConfig.from_strings("lang12", "2;3;8", fc_mode=fc_mode, weight_learning=weight_learning, scaling=0.5)
    lslo = inject(model, config)
    randomize_adapters(lslo)
    if weight_learning:
        with torch.no_grad():
            for gate in lslo.router.gates.values():
                gate.logits.normal_()
    src, tgt = [p[0] for p in PAIRS], [p[1] for p in PAIRS]
    x_by_width = {}
    with torch.set_grad_enabled(grad), lslo.route(src, tgt):
        for m in lslo.modules:
            mod = m.module
            x = x_by_width.setdefault(mod.in_features, torch.randn(len(PAIRS), 5, mod.in_features, dtype=torch.float64))
            gates = lslo.router.gate_weights(mod.layer_key) if weight_learning else None
            with torch.no_grad():
                expected = reference_output(mod, x, src, tgt, lslo.layout, 0.5, gates)
            torch.testing.assert_close(mod(x).detach(), expected, rtol=1e-12, atol=1e-12)


def _padded_batch(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.full((len(lengths), max(lengths)), 1, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, n in enumerate(lengths):
        ids[i, :n] = torch.randint(4, 150, (n,), generator=g)
        ids[i, n - 1] = 2
        mask[i, :n] = 1
    return ids, mask


def test_mixed_batch_logits_equal_rows_alone(make_model):
    model = make_model()
    lslo = inject(model, LSLoConfig.from_strings("lang12", "2;2;8"))
    randomize_adapters(lslo, std=0.2)
    lengths = [9, 4, 7, 6, 3, 8]
    ids, mask = _padded_batch(lengths)
    dec = torch.randint(4, 150, (len(PAIRS), 6), generator=torch.Generator().manual_seed(1))
    src, tgt = [p[0] for p in PAIRS], [p[1] for p in PAIRS]
    with torch.no_grad(), lslo.route(src, tgt):
        mixed = model(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits
    for i, (s, t) in enumerate(PAIRS):
        n = lengths[i]
        with torch.no_grad(), lslo.route([s], [t]):
            alone = model(input_ids=ids[i : i + 1, :n], decoder_input_ids=dec[i : i + 1]).logits
        torch.testing.assert_close(mixed[i : i + 1], alone, rtol=0, atol=1e-5)


def _strip(row, pad=1):
    row = row.tolist()
    while row and row[-1] == pad:
        row.pop()
    return row


@pytest.mark.parametrize("beams", [1, 4])
def test_mixed_batch_generation_equals_rows_alone(model_for, tokenizer, beams):
    model = model_for(dtype=torch.float64)
    lslo = inject(model, LSLoConfig.from_strings("lang12", "2;2;8"))
    randomize_adapters(lslo, std=0.4)
    texts = ["The cat sleeps.", "Le train part à huit heures.", "Bitte speichern Sie.", "We go", "Ce champ", "De kat"]
    src, tgt = [p[0] for p in PAIRS], [p[1] for p in PAIRS]
    settings = GenerationSettings(num_beams=beams, max_new_tokens=12, num_return_sequences=min(beams, 2))
    mixed = generate_ids(model, tokenizer, texts, src, tgt, settings, lslo)
    k = settings.num_return_sequences
    assert mixed.shape[0] == len(texts) * k
    for i in range(len(texts)):
        alone = generate_ids(model, tokenizer, texts[i : i + 1], src[i : i + 1], tgt[i : i + 1], settings, lslo)
        for j in range(k):
            assert _strip(mixed[i * k + j]) == _strip(alone[j]), (i, j)
    # Every row starts with the decoder start token and its own target language token.
    for i, lang in enumerate(tgt):
        assert mixed[i * k, 1].item() == tokenizer.get_lang_id(lang)


def test_routing_expands_with_beams(make_model):
    """Decoder modules see batch x beams rows; each row's beams must use that row's adapters."""
    model = make_model()
    lslo = inject(model, LSLoConfig.from_strings("lang12", "2;2;8"))
    seen = {}
    for m in lslo.modules:
        if m.stack == "decoder" and m.name in ("q", "c-k"):

            def record(mod, args, name=m.name):
                seen.setdefault(name, args[0].shape[0])

            m.module.register_forward_pre_hook(record)
    ids, mask = _padded_batch([5, 7])
    with torch.no_grad(), lslo.route(["en", "oc"], ["fr", "wo"]):
        model.generate(input_ids=ids, attention_mask=mask, num_beams=3, max_new_tokens=3, do_sample=False)
        rows = lslo.router.row_languages("tgt", 6).tolist()
    assert seen == {"q": 6, "c-k": 6}
    fr, wo = lslo.layout.index("fr"), lslo.layout.index("wo")
    assert rows == [fr, fr, fr, wo, wo, wo]


def test_changing_one_language_changes_only_its_rows(make_model):
    model = make_model()
    lslo = inject(model, LSLoConfig.from_strings("lang12", "2;2;8"))  # 4 encoder layers: 1-3 src, 4 tgt
    randomize_adapters(lslo, std=0.2)
    pairs = [("fr", "en"), ("en", "fr"), ("de", "oc"), ("oc", "de")]
    src, tgt = [p[0] for p in pairs], [p[1] for p in pairs]
    ids, mask = _padded_batch([6, 6, 6, 6])
    dec = torch.randint(4, 150, (4, 5), generator=torch.Generator().manual_seed(2))

    def logits():
        with torch.no_grad(), lslo.route(src, tgt):
            return model(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits

    def bump(stack, layer, code):
        sl = lslo.layout.slice(code)
        with torch.no_grad():
            for m in lslo.modules:
                if m.stack == stack and m.layer == layer:
                    for bank in m.module.banks.values():
                        bank.lora_B[:, sl] += 0.5

    before = logits()
    assert lslo.layer_map.encoder[0] == "src"
    bump("encoder", 0, "fr")  # a source-indexed layer: only the row translating *from* French changes
    after = logits()
    changed = [(after[i] - before[i]).abs().max().item() > 1e-6 for i in range(4)]
    assert changed == [True, False, False, False]

    assert lslo.layer_map.encoder[3] == "tgt"
    bump("encoder", 3, "oc")  # a target-indexed encoder layer: only the row translating *into* Occitan
    again = logits()
    changed = [(again[i] - after[i]).abs().max().item() > 1e-6 for i in range(4)]
    assert changed == [False, False, True, False]

    bump("decoder", 1, "de")  # decoder layers are target-indexed
    last = logits()
    changed = [(last[i] - again[i]).abs().max().item() > 1e-6 for i in range(4)]
    assert changed == [False, False, False, True]


@pytest.mark.parametrize("grad", [False, True], ids=["no-grad", "grad"])
def test_languages_without_adapters_fall_back_to_the_base_in_the_same_batch(make_model, grad):
    """With fallback, a row whose languages have no adapter is the base model's own output; a row with an
    adapter on one side only gets that side's delta (the reference loop, with the other side's term left out)."""
    model = make_model(dtype=torch.float64, encoder_layers=2, decoder_layers=2)
    ids, dec = torch.randint(4, 150, (3, 6)), torch.randint(4, 150, (3, 4))
    with torch.no_grad():
        base = model(input_ids=ids, decoder_input_ids=dec).logits  # (3, 4, vocab)
    lslo = inject(model, LSLoConfig.from_strings("en,fr", "4"))
    randomize_adapters(lslo)
    pairs = [("xh", "zu"), ("en", "fr"), ("xh", "fr")]  # xh and zu have no adapters
    with torch.set_grad_enabled(grad), lslo.route([p[0] for p in pairs], [p[1] for p in pairs], fallback=True):
        mixed = model(input_ids=ids, decoder_input_ids=dec).logits
    with torch.no_grad(), lslo.route(["en"], ["fr"]):
        alone = model(input_ids=ids[1:2], decoder_input_ids=dec[1:2]).logits
    torch.testing.assert_close(mixed[0], base[0], rtol=0, atol=1e-12)  # exactly the base
    torch.testing.assert_close(mixed[1], alone[0], rtol=0, atol=1e-12)  # unaffected by its neighbours
    assert not torch.allclose(mixed[2], base[2]) and not torch.allclose(mixed[2], alone[0])  # the fr side acts
    with pytest.raises(Exception, match="no adapter for language"):
        with lslo.route(["xh"], ["fr"]):  # without fallback: an error, as before
            pass
