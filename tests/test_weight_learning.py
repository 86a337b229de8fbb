import pytest
import torch

from conftest import randomize_adapters
from lslo import LayerMap, LSLoConfig, inject
from lslo.adapters.weight_learning import layer_map_from_weights, read_weights


def test_gradients_reach_the_layer_weights(make_model):
    model = make_model()
    model.train()
    lslo = inject(model, LSLoConfig.from_strings("lang12", 4, weight_learning=True))
    randomize_adapters(lslo, std=0.1)
    assert len(lslo.router.gates) == 4 + 3
    ids = torch.randint(4, 150, (3, 6))
    labels = torch.randint(4, 150, (3, 5))
    with lslo.route(["en", "oc", "zh"], ["fr", "en", "wo"]):
        loss = model(input_ids=ids, labels=labels).loss
    loss.backward()
    for key, gate in lslo.router.gates.items():
        assert gate.logits.grad is not None, key
        assert gate.logits.grad.abs().sum() > 0, key
        # softmax over two logits: the two gradients are opposite
        assert gate.logits.grad.sum().abs() < 1e-6
    optimizer = torch.optim.SGD(lslo.trainable_parameters(), lr=1.0)
    before = {k: g.logits.detach().clone() for k, g in lslo.router.gates.items()}
    optimizer.step()
    assert any(not torch.equal(before[k], g.logits) for k, g in lslo.router.gates.items())


def test_weights_start_even_and_sum_to_one(make_model):
    lslo = inject(make_model(), LSLoConfig.from_strings("en,fr", 2, weight_learning=True))
    weights = read_weights(lslo.router.gates)
    assert len(weights["encoder"]) == 4 and len(weights["decoder"]) == 3
    assert all(w == pytest.approx((0.5, 0.5)) for stack in weights.values() for w in stack)
    with torch.no_grad():
        lslo.router.gates["encoder_2"].logits.copy_(torch.tensor([0.3, -1.0]))
    w_src, w_tgt = read_weights(lslo.router.gates)["encoder"][2]
    assert w_src + w_tgt == pytest.approx(1.0)
    assert w_src == pytest.approx(torch.sigmoid(torch.tensor(1.3)).item())


def test_layer_map_picks_larger_weight():
    weights = {"encoder": [(0.7, 0.3), (0.51, 0.49), (0.2, 0.8)], "decoder": [(0.4, 0.6), (0.9, 0.1)]}
    assert layer_map_from_weights(weights) == LayerMap(("src", "src", "tgt"), ("tgt", "src"))


def test_weight_learning_counts_both_sides(make_model):
    plain = inject(make_model(), LSLoConfig.from_strings("en,fr", 2))
    wl = inject(make_model(), LSLoConfig.from_strings("en,fr", 2, weight_learning=True))
    assert wl.parameter_counts()["en"] == 2 * plain.parameter_counts()["en"]
