import pytest
import torch

from conftest import randomize_adapters
from lslo import ConfigError, LSLoConfig, inject
from lslo.pruning import Pruner, PruningSchedule, language_pools, layer_pools, subspace_scores


def test_schedule_matches_hand_computation():
    s = PruningSchedule(ratio=0.9, start=2, duration=8, total=15)
    # P_e = P - P (1 - (e - 2) / 8)^3 for 2 < e <= 10
    expected = {
        1: 0.0,
        2: 0.0,
        3: 0.9 * (1 - (7 / 8) ** 3),
        4: 0.9 * (1 - (6 / 8) ** 3),
        6: 0.9 * (1 - 0.5**3),
        9: 0.9 * (1 - (1 / 8) ** 3),
        10: 0.9,
        11: 0.9,
        15: 0.9,
    }
    for epoch, value in expected.items():
        assert s.ratio_at(epoch) == pytest.approx(value, abs=1e-12), epoch
    assert s.ratio_at(3) == pytest.approx(0.2970703125)  # 0.9 * 169/512
    assert [round(s.ratio_at(e), 4) for e in range(1, 16)] == [
        0.0,
        0.0,
        0.2971,
        0.5203,
        0.6803,
        0.7875,
        0.8525,
        0.8859,
        0.8982,
        0.9,
        0.9,
        0.9,
        0.9,
        0.9,
        0.9,
    ]
    # step granularity follows the same curve; step 0 of epoch e equals P_e
    assert s.ratio_at_step(4 * 10, steps_per_epoch=10) == s.ratio_at(5)
    assert s.ratio_at(4) < s.ratio_at_step(35, 10) < s.ratio_at(5)


def test_schedule_rejects_bad_settings_all_at_once():
    with pytest.raises(ConfigError) as err:
        PruningSchedule(ratio=1.0, start=-1, duration=0, total=3)
    assert len(err.value.problems) >= 3
    with pytest.raises(ConfigError, match="E \\+ k = 16 exceeds T = 15"):
        PruningSchedule(ratio=0.5, start=8, duration=8, total=15)


def _pruned_model(make_model, ranks="2;2;8"):
    model = make_model()
    lslo = inject(model, LSLoConfig.from_strings("lang12", ranks))
    randomize_adapters(lslo)
    return model, lslo


def _zeros(lslo, code):
    sl = lslo.layout.slice(code)
    return sum(int((m.module.banks[s].lora_B[:, sl] == 0).sum()) for m in lslo.modules for s in m.module.sides)


@pytest.mark.parametrize("ratio", [0.1, 0.33, 0.9])
def test_language_pool_prunes_exactly_round_P_n(make_model, ratio):
    _, lslo = _pruned_model(make_model)
    pools = language_pools(lslo, ["en", "zh"])
    sizes = {p.name: p.size(lslo) for p in pools}
    result = Pruner(lslo, pools).prune_to(ratio)
    for code in ("en", "zh"):
        n = sizes[f"lang:{code}"]
        assert result[f"lang:{code}"] == round(ratio * n)
        assert _zeros(lslo, code) == round(ratio * n)
    assert _zeros(lslo, "fr") == 0 and _zeros(lslo, "oc") == 0  # other languages untouched


def test_pruning_removes_the_smallest_magnitudes(make_model):
    _, lslo = _pruned_model(make_model)
    pool = language_pools(lslo, ["de"])
    values = torch.cat([m.bank.lora_B[:, lslo.layout.slice("de")].detach().abs().flatten() for m in pool[0].members])
    threshold = values.sort().values[round(0.5 * values.numel()) - 1]
    Pruner(lslo, pool).prune_to(0.5)
    kept = torch.cat([m.bank.lora_B[:, lslo.layout.slice("de")].detach().abs().flatten() for m in pool[0].members])
    assert float(kept[kept != 0].min()) > float(threshold)


def test_masks_stay_enforced_through_optimizer_steps(make_model):
    model, lslo = _pruned_model(make_model)
    model.train()
    pools = language_pools(lslo, ["en", "fr", "zh", "nl"])
    pruner = Pruner(lslo, pools)
    optimizer = torch.optim.AdamW(lslo.trainable_parameters(), lr=1e-2, weight_decay=0.01)
    pruner.attach(optimizer)
    ids, labels = torch.randint(4, 150, (4, 6)), torch.randint(4, 150, (4, 5))
    src, tgt = ["en", "fr", "zh", "oc"], ["nl", "oc", "en", "fr"]

    def step():
        with lslo.route(src, tgt):
            loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    for _ in range(3):  # build up Adam momentum before pruning
        step()
    expected = {p.name: round(0.6 * p.size(lslo)) for p in pools}
    pruner.prune_to(0.6)
    masks_before = [b.prune_mask.clone() for b in pruner.banks()]
    for _ in range(5):
        step()
    for code in ("en", "fr", "zh", "nl"):
        assert _zeros(lslo, code) == expected[f"lang:{code}"]
    assert all(torch.equal(a, b.prune_mask) for a, b in zip(masks_before, pruner.banks()))
    # gradients of pruned entries are zero too
    with lslo.route(src, tgt):
        model(input_ids=ids, labels=labels).loss.backward()
    for bank in pruner.banks():
        assert float(bank.lora_B.grad[~bank.prune_mask].abs().sum()) == 0.0
    # a later, higher ratio keeps every earlier pruned entry pruned
    pruner.prune_to(0.8)
    assert all(not (b.prune_mask & ~m).any() for b, m in zip(pruner.banks(), masks_before))


def test_layer_pools_and_ise_scores_sum_to_zero(make_model):
    _, lslo = _pruned_model(make_model, ranks="8;8;8")
    pools = layer_pools(lslo)
    assert [p.name for p in pools] == [f"encoder.{i}" for i in range(4)] + [f"decoder.{i}" for i in range(3)]
    assert all(len({m.code for m in p.members}) == 12 for p in pools)
    Pruner(lslo, pools).prune_to(0.7)
    scores = subspace_scores(lslo, 0.7)
    assert len(scores) == len(lslo.modules) * 12
    for pool in pools:
        stack, layer = pool.name.split(".")
        in_pool = [s for s in scores if s.stack == stack and s.layer == int(layer)]
        total = sum(s.size for s in in_pool)
        assert sum(s.pruned for s in in_pool) == round(0.7 * total)
        assert abs(sum(s.score for s in in_pool)) <= 0.5 + 1e-9  # round(P n) - P n
    # Eq. 6 per matrix: #pruned - P * #B
    s = scores[0]
    assert s.score == pytest.approx(s.pruned - 0.7 * s.size)


def test_nonzero_counts(make_model):
    _, lslo = _pruned_model(make_model)
    full = lslo.parameter_counts()
    assert lslo.nonzero_counts() == full  # random A and B have no zeros
    pools = language_pools(lslo, ["ja"])
    Pruner(lslo, pools).prune_to(0.9)
    nonzero = lslo.nonzero_counts()
    assert nonzero["ja"] == full["ja"] - round(0.9 * pools[0].size(lslo))
    assert nonzero["wo"] == full["wo"]
