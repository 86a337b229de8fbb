"""Step shapes that repeat (what a captured step, a CUDA graph, needs): cache lengths rounded up to a bucket,
the packed adapter rank rounded up to a multiple of 8, and the rows' grouping kept between steps. Checked
against generate() and against the grouping recomputed from scratch at every step."""

from __future__ import annotations

import torch
from test_engine import demo, reference, sentence_rows, sequences  # noqa: F401  (demo: a fixture)

import lslo.engine.engine as engine_module
from lslo.engine import DecodingEngine
from lslo.engine.adapter_pack import AdapterPack
from lslo.engine.generation import GenerationSettings, requests_for


def recorded_steps(monkeypatch, engine: DecodingEngine) -> list[tuple[int, int, int]]:
    """Each decoder step's (self length T, source length S, packed rank R)."""
    seen: list[tuple[int, int, int]] = []
    real = engine_module.decode_step

    def spy(w, x, adapters):
        seen.append((x.self_bias.shape[-1], x.cross_bias.shape[-1], adapters.pack.total_rank))
        return real(w, x, adapters)

    monkeypatch.setattr(engine_module, "decode_step", spy)
    return seen


def test_bucketed_steps_translate_as_generate_and_repeat_their_shapes(demo, monkeypatch):  # noqa: F811
    tokenizer, model, lslo = demo
    part = sentence_rows(40, seed=11)
    settings = GenerationSettings(num_beams=4, max_new_tokens=40, fallback_to_base=True)
    expected = reference(model, tokenizer, lslo, part, settings)
    requests = requests_for(tokenizer, *zip(*part), settings, 2)
    engine = DecodingEngine(model, lslo, max_rows=24, max_new_tokens=40, shape_bucket=16)  # rows join mid-flight
    steps = recorded_steps(monkeypatch, engine)
    assert sequences(engine.run(requests)) == expected
    lengths = {t for t, _, _ in steps}
    assert all(t % 16 == 0 or t == engine.max_length for t in lengths)
    assert len(lengths) <= -(-engine.max_length // 16)  # one shape per bucket at most
    assert all(s % 16 == 0 or s == engine.slots.source_capacity for _, s, _ in steps)
    assert all(r % 8 == 0 for _, _, r in steps) and any(r for _, _, r in steps)


def test_without_buckets_the_lengths_are_the_rows_own(demo, monkeypatch):  # noqa: F811
    """shape_bucket 1 (the CPU's default): T is the longest row's position + 1 and S the longest source."""
    tokenizer, model, lslo = demo
    part = sentence_rows(12, seed=3)
    settings = GenerationSettings(num_beams=2, max_new_tokens=24, fallback_to_base=True)
    requests = requests_for(tokenizer, *zip(*part), settings, 2)
    engine = DecodingEngine(model, lslo, max_rows=64, max_new_tokens=24)
    steps = recorded_steps(monkeypatch, engine)
    engine.run(requests)
    assert [t for t, _, _ in steps] == list(range(1, len(steps) + 1))  # all admitted at once: one more a step
    sources = [s for _, s, _ in steps]
    assert sources[0] == max(len(r.source_ids) for r in requests)
    assert sources == sorted(sources, reverse=True)  # no one joins later: the longest source can only leave


def test_rows_leaving_from_the_middle_and_mixed_beams_translate_as_generate(demo):  # noqa: F811
    """Cancellations move rows and request slots between steps, greedy and beam requests share them: the rows'
    grouping (kept between steps) must follow, or cross-attention would read another request's source."""
    tokenizer, model, lslo = demo
    part = sentence_rows(16, seed=5)
    greedy = GenerationSettings(num_beams=1, max_new_tokens=20, fallback_to_base=True)
    beam = GenerationSettings(num_beams=3, max_new_tokens=20, fallback_to_base=True)
    requests = requests_for(tokenizer, *zip(*part[:8]), greedy, 2) + requests_for(tokenizer, *zip(*part[8:]), beam, 2)
    expected = reference(model, tokenizer, lslo, part[:8], greedy) + reference(model, tokenizer, lslo, part[8:], beam)
    engine = DecodingEngine(model, lslo, max_rows=12, max_new_tokens=20, shape_bucket=16)
    ids = [engine.submit(r) for r in requests]
    outputs = {}
    cancelled = set(ids[1:12:2])
    for i in sorted(cancelled):
        outputs.update((o.request_id, o) for o in engine.step())
        engine.abort(i)
    while not engine.idle:
        outputs.update((o.request_id, o) for o in engine.step())
    kept = [j for j, i in enumerate(ids) if i not in cancelled]
    assert all(outputs[i].aborted or outputs[i].sequences for i in cancelled)
    assert [[list(s) for s in outputs[ids[j]].sequences] for j in kept] == [expected[j] for j in kept]


def test_the_packed_rank_is_the_sets_ranks_rounded_up_to_eight(demo):  # noqa: F811
    _, model, lslo = demo
    engine = DecodingEngine(model, lslo, max_rows=8, max_new_tokens=8)
    pack = AdapterPack(engine.weights, lslo)
    pack.sync(())
    layout = lslo.layout
    for codes in (["fr"], ["fr", "de", "it"], list(layout.codes)):
        keys = [pack.current_key(c) for c in codes]
        fresh = AdapterPack(engine.weights, lslo)
        fresh.sync(())
        fresh.activate(keys)
        ranks = sum(layout.slice(c).stop - layout.slice(c).start for c in codes)
        assert fresh.total_rank == ranks + (-ranks) % 8
        coef = fresh.coefficients(keys, engine.device, engine.dtype)  # (rows, R)
        assert coef.shape == (len(codes), fresh.total_rank)
        assert (coef != 0).sum().item() == ranks
        for packed in fresh.packed.values():
            used = torch.zeros(packed.B.shape[1], dtype=torch.bool)
            for key in keys:
                for part in range(packed.parts):
                    start = part * fresh.total_rank + fresh.offsets[key]
                    rank = layout.slice(key[0]).stop - layout.slice(key[0]).start
                    used[start : start + rank] = True
            assert not packed.B[:, ~used].any() and not packed.A[~used].any()  # spare columns are zero
