import math

import pytest
import torch
from torch import nn
from transformers import M2M100ForConditionalGeneration

from conftest import randomize_adapters
from lslo import ConfigError, LSLoConfig, LSLoLinear, RoutingError, inject


def _config(ranks="2;2;8", **kw):
    return LSLoConfig.from_strings("lang12", ranks, **kw)


def _batch(n=3, src_len=7, tgt_len=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(4, 150, (n, src_len), generator=g), torch.randint(4, 150, (n, tgt_len), generator=g)


@pytest.mark.parametrize("fc_mode", ["full", "square"])
@pytest.mark.parametrize("weight_learning", [False, True])
def test_zero_B_leaves_outputs_exactly_unchanged(make_model, fc_mode, weight_learning):
    ids, dec = _batch()
    base = make_model(seed=1)
    with torch.no_grad():
        expected = base(input_ids=ids, decoder_input_ids=dec).logits
        expected_gen = base.generate(input_ids=ids, num_beams=2, max_new_tokens=6, do_sample=False)
    model = make_model(seed=1)
    lslo = inject(model, _config(fc_mode=fc_mode, weight_learning=weight_learning))
    with torch.no_grad(), lslo.route(["en", "oc", "zh"], ["wo", "fr", "en"]):
        got = model(input_ids=ids, decoder_input_ids=dec).logits
        got_gen = model.generate(input_ids=ids, num_beams=2, max_new_tokens=6, do_sample=False)
    assert torch.equal(got, expected)
    assert torch.equal(got_gen, expected_gen)


def test_base_frozen_and_only_lslo_trainable(make_model):
    model = make_model()
    lslo = inject(model, _config())
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".banks." in n for n in trainable)
    assert {id(p) for p in lslo.trainable_parameters()} == {id(p) for p in model.parameters() if p.requires_grad}
    for m in lslo.modules:
        assert not m.module.base.weight.requires_grad


def test_A_kaiming_B_zero_and_independent_of_other_languages(make_model):
    lslo = inject(make_model(), _config())
    for m in lslo.modules:
        bank = m.module.banks[m.module.sides[0]]
        bound = 1.0 / math.sqrt(m.module.lora_in)  # kaiming_uniform_(a=sqrt(5)) bound
        assert float(bank.lora_A.detach().abs().max()) <= bound + 1e-7
        assert float(bank.lora_A.detach().abs().max()) > 0.5 * bound
        assert torch.count_nonzero(bank.lora_B) == 0
    # The same language gets the same initial A whatever else is configured.
    other = inject(make_model(), LSLoConfig.from_strings("oc,en", "oc=8,en=2"))
    a1 = lslo.language_state_dict("oc")
    a2 = other.language_state_dict("oc")
    assert all(torch.equal(a1[k], a2[k]) for k in a1)


def test_remove_restores_exact_base_model(make_model):
    model = make_model(seed=3)
    reference = {k: v.clone() for k, v in model.state_dict().items()}
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    originals = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    lslo = inject(model, _config(weight_learning=True))
    randomize_adapters(lslo)
    restored = lslo.remove()
    assert restored is model
    assert not any(isinstance(m, LSLoLinear) for m in model.modules())
    assert not hasattr(model, "lslo_gates")
    state = model.state_dict()
    assert state.keys() == reference.keys()
    assert all(torch.equal(state[k], reference[k]) for k in state)
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
    assert all(dict(model.named_modules())[n] is m for n, m in originals.items())
    inject(model, _config())  # can inject again after removal


def test_double_injection_and_wrong_model_refused(make_model):
    model = make_model()
    inject(model, _config())
    with pytest.raises(ConfigError, match="already has LSLo"):
        inject(model, _config())
    with pytest.raises(ConfigError, match="M2M100"):
        inject(nn.Linear(3, 3), _config())


@pytest.mark.parametrize("layers,d_model,ffn", [((1, 1), 16, 32), ((2, 5), 32, 48), ((6, 2), 24, 96)])
def test_any_depth_and_width(make_model, layers, d_model, ffn):
    model = make_model(
        encoder_layers=layers[0], decoder_layers=layers[1], d_model=d_model, encoder_ffn_dim=ffn, decoder_ffn_dim=ffn
    )
    for fc_mode in ("full", "square"):
        lslo = inject(model, _config(fc_mode=fc_mode))
        assert len(lslo.modules) == 5 * layers[0] + 8 * layers[1]
        assert len(lslo.layer_map.encoder) == layers[0]
        randomize_adapters(lslo)
        ids, dec = _batch(2)
        with torch.no_grad(), lslo.route(["en", "wo"], ["oc", "fr"]):
            out = model(input_ids=ids, decoder_input_ids=dec).logits
        assert out.shape == (2, dec.shape[1], model.config.vocab_size)
        lslo.remove()


def test_real_checkpoint_from_local_path(make_model, tmp_path):
    make_model(seed=5).save_pretrained(tmp_path / "ckpt")
    model = M2M100ForConditionalGeneration.from_pretrained(tmp_path / "ckpt").eval()
    ids, dec = _batch(2)
    with torch.no_grad():
        base = model(input_ids=ids, decoder_input_ids=dec).logits  # (2, tgt_len, vocab), before injection
    lslo = inject(model, _config(modules="fc", fc_mode="square"))
    assert len(lslo.modules) == 2 * (4 + 3)
    with torch.no_grad(), lslo.route(["en", "en"], ["de", "de"]):
        assert torch.equal(model(input_ids=ids, decoder_input_ids=dec).logits, base)  # B = 0: the base exactly
    randomize_adapters(lslo)
    with torch.no_grad(), lslo.route(["en", "en"], ["de", "de"]):
        both_de = model(input_ids=ids, decoder_input_ids=dec).logits
    with torch.no_grad(), lslo.route(["en", "en"], ["de", "oc"]):
        de_oc = model(input_ids=ids, decoder_input_ids=dec).logits
    assert not torch.allclose(both_de, base, atol=1e-3)  # the adapters act
    assert torch.equal(de_oc[0], both_de[0]) and not torch.allclose(de_oc[1], both_de[1], atol=1e-3)  # per row
    assert torch.equal(lslo.remove()(input_ids=ids, decoder_input_ids=dec).logits.detach(), base)


def test_unrouted_and_unknown_languages_fail_clearly(make_model):
    model = make_model()
    lslo = inject(model, _config())
    ids, dec = _batch(2)
    with pytest.raises(RoutingError, match="without routing"):
        model(input_ids=ids, decoder_input_ids=dec)
    with pytest.raises(RoutingError, match="no adapter for language"):
        with lslo.route(["en", "xh"], ["fr", "fr"]):
            pass
    with pytest.raises(RoutingError, match="2 source languages but 1"):
        with lslo.route(["en", "fr"], ["fr"]):
            pass
    with pytest.raises(RoutingError, match="whole factor"):
        with lslo.route(["en", "fr"], ["fr", "de"]):
            model(input_ids=_batch(3)[0], decoder_input_ids=_batch(3)[1])
