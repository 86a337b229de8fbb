"""Lexically constrained beam search (``lslo.engine.constraints``) against independent references: an exhaustive
search over every output of a tiny model (the best sequence containing the constraints, its log-probability
computed by the Hugging Face model itself), and ``generate()`` for the unconstrained requests that share the
constrained ones' steps."""

from __future__ import annotations

import itertools
import random

import pytest
import torch
from transformers import M2M100Config, M2M100ForConditionalGeneration

from lslo.engine import DecodeRequest, DecodingEngine
from lslo.engine.constraints import ConstraintState

EOS = 2


def tiny_model(seed: int, vocab: int = 10) -> M2M100ForConditionalGeneration:
    torch.manual_seed(seed)
    config = M2M100Config(
        vocab_size=vocab,
        d_model=16,
        encoder_layers=1,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=32,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=EOS,
        decoder_start_token_id=EOS,
    )
    model = M2M100ForConditionalGeneration(config).eval()
    with torch.no_grad():  # sharper distributions than the default init, so that the search has real choices
        model.lm_head.weight.mul_(8.0)
    return model


def contains(sequence: tuple[int, ...], alternatives: tuple[tuple[int, ...], ...]) -> bool:
    return any(sequence[i : i + len(a)] == a for a in alternatives for i in range(len(sequence) - len(a) + 1))


def exhaustive_best(model, source: list[int], prefix: list[int], constraints, max_new_tokens: int, vocab: int):
    """Every output the engine could return (ending with EOS, or cut at max_new_tokens), scored by the model's
    teacher-forced log-probabilities; the best one (length penalty 0: plain sum) that contains every constraint."""
    outputs = []
    for length in range(1, max_new_tokens + 1):
        for body in itertools.product(range(vocab), repeat=length):
            if EOS in body[:-1] or (length < max_new_tokens and body[-1] != EOS):
                continue
            if all(contains(body, c) for c in constraints):
                outputs.append(body)
    best, best_score = None, -float("inf")
    with torch.no_grad():
        for length in range(1, max_new_tokens + 1):
            group = [o for o in outputs if len(o) == length]
            if not group:
                continue
            decoder = torch.tensor([prefix + list(o[:-1]) for o in group])
            logits = model(input_ids=torch.tensor([source] * len(group)), decoder_input_ids=decoder).logits
            log_probs = torch.log_softmax(logits[:, len(prefix) - 1 :].float(), dim=-1)  # (n, length, V)
            targets = torch.tensor(group)
            scores = log_probs.gather(2, targets[..., None])[..., 0].sum(dim=1)
            i = int(scores.argmax())
            if float(scores[i]) > best_score:
                best, best_score = group[i], float(scores[i])
    return best, best_score


@pytest.mark.parametrize(
    "seed,constraints",
    [
        (0, (((5, 6),),)),  # one two-token phrase
        (1, (((7,), (8, 9)),)),  # one constraint, two alternatives of different lengths
        (2, (((4,),), ((6,),))),  # two single-token constraints
    ],
)
def test_a_beam_as_wide_as_every_hypothesis_finds_the_exhaustive_optimum(seed, constraints):
    """With k = 100 beams over a 10-token vocabulary and 3 new tokens no candidate is ever dropped, so dynamic
    beam allocation must return exactly the best constrained output, with its true log-probability."""
    vocab, max_new = 10, 3
    model = tiny_model(seed, vocab)
    source, prefix = [3, 4, 5, 6, EOS], [EOS, 3]
    engine = DecodingEngine(model, None, max_rows=100, max_new_tokens=max_new)
    (out,) = engine.run(
        [
            DecodeRequest(
                source, prefix, num_beams=100, max_new_tokens=max_new, length_penalty=0.0, constraints=constraints
            )
        ]
    )
    best, best_score = exhaustive_best(model, source, prefix, constraints, max_new, vocab)
    assert out.sequences[0] == best
    assert out.scores[0] == pytest.approx(best_score, abs=1e-4)


def test_narrow_beams_meet_constraints_the_plain_search_never_produces():
    """Four beams, 40 random sources, a two-token phrase absent from every unconstrained output: every
    constrained output contains it, and its score is the model's own log-probability of that output."""
    model = tiny_model(3, vocab=40)
    rng = random.Random(0)
    sources = [[3, *[rng.randrange(4, 40) for _ in range(rng.randrange(2, 8))], EOS] for _ in range(40)]
    plain = DecodingEngine(model, None, max_rows=64, max_new_tokens=8).run(
        [DecodeRequest(s, [EOS, 3], num_beams=4, max_new_tokens=8) for s in sources]
    )
    met = 0
    for source, unconstrained in zip(sources, plain):
        phrase = next(
            p for p in itertools.permutations(range(4, 40), 2) if not contains(unconstrained.sequences[0], ((p),))
        )
        (out,) = DecodingEngine(model, None, max_rows=8, max_new_tokens=8).run(
            [DecodeRequest(source, [EOS, 3], num_beams=4, max_new_tokens=8, constraints=((phrase,),))]
        )
        met += contains(out.sequences[0], (phrase,))
        with torch.no_grad():
            ids = list(out.sequences[0])
            decoder = torch.tensor([[EOS, 3, *ids[:-1]]])
            logits = model(input_ids=torch.tensor([source]), decoder_input_ids=decoder).logits
            log_probs = torch.log_softmax(logits[0, 1:].float(), dim=-1)
            total = float(log_probs.gather(1, torch.tensor(ids)[:, None]).sum())
        assert out.scores[0] == pytest.approx(total / len(ids), abs=1e-4)  # length penalty 1.0
    assert met == len(sources)


def test_unconstrained_requests_sharing_steps_with_constrained_ones_decode_as_generate():
    model = tiny_model(4, vocab=40)
    rng = random.Random(1)
    requests = []
    for i in range(12):
        source = [3, *[rng.randrange(4, 40) for _ in range(rng.randrange(2, 8))], EOS]
        constraints = (((rng.randrange(4, 40), rng.randrange(4, 40)),),) if i % 3 == 0 else ()
        requests.append(DecodeRequest(source, [EOS, 3], num_beams=3, max_new_tokens=8, constraints=constraints))
    outputs = DecodingEngine(model, None, max_rows=64, max_new_tokens=8).run(requests)
    for request, out in zip(requests, outputs):
        if request.constraints:
            assert contains(out.sequences[0], request.constraints[0])
            continue
        ids = model.generate(
            input_ids=torch.tensor([list(request.source_ids)]),
            decoder_input_ids=torch.tensor([list(request.prefix)]),
            num_beams=3,
            max_new_tokens=8,
            do_sample=False,
            early_stopping=True,
        )
        assert list(out.sequences[0]) == [t for t in ids[0, 2:].tolist() if t != 1]


def test_the_constraint_tracker_by_hand():
    constraints = (((5, 6, 7),), ((9,), (8, 9)))
    s = ConstraintState()
    assert s.wanted(constraints) == [5, 8, 9]
    s = s.after(5, constraints).after(6, constraints)
    assert s.inside == (0, 0, 2) and s.met_tokens() == 2 and s.wanted(constraints) == [7]
    s = s.after(4, constraints)  # left half-way: progress lost
    assert s.inside is None and s.met_tokens() == 0
    s = s.after(8, constraints).after(9, constraints)
    assert s.met == ((1, 2),) and not s.complete(constraints) and s.wanted(constraints) == [5]
    s = s.after(5, constraints).after(6, constraints).after(7, constraints)
    assert s.complete(constraints) and s.met_tokens() == 5


def test_bad_constraints_are_refused():
    with pytest.raises(ValueError, match="beam search"):
        DecodeRequest([3, EOS], [EOS, 3], num_beams=1, constraints=(((5,),),))
    with pytest.raises(ValueError, match="no alternative"):
        DecodeRequest([3, EOS], [EOS, 3], num_beams=2, constraints=((),))
    with pytest.raises(ValueError, match="empty"):
        DecodeRequest([3, EOS], [EOS, 3], num_beams=2, constraints=(((),),))


def test_the_library_translates_with_required_phrases_on_the_demo():
    """``lslo.engine.generation.translate(required=...)``: every translation holds its phrases (terms the demo would
    not choose), written as the tokenizer writes them; rows without phrases are unchanged."""
    from transformers import AutoTokenizer

    from lslo.engine.generation import GenerationSettings, translate
    from lslo.io import load_bundle
    from lslo.languages.tokenization import phrase_alternatives
    from server_helpers import DEMO, DEMO_BUNDLE

    tokenizer = AutoTokenizer.from_pretrained(DEMO / "base")
    model = M2M100ForConditionalGeneration.from_pretrained(DEMO / "base", dtype=torch.float32).eval()
    lslo = load_bundle(model, DEMO_BUNDLE)
    alternatives = phrase_alternatives(tokenizer, "classeur", capitalised=True)
    assert len(alternatives) >= 2 and {tokenizer.decode(list(a)).strip() for a in alternatives} == {
        "classeur",
        "Classeur",
    }
    texts = ["Open the file in the editor.", "You have new messages.", "Save the document."]
    settings = GenerationSettings(num_beams=4, max_new_tokens=48)
    plain = translate(model, tokenizer, texts, ["en"] * 3, ["fr"] * 3, settings, lslo)
    required = [["classeur"], ["LibreOffice", "courriel"], []]
    out = translate(model, tokenizer, texts, ["en"] * 3, ["fr"] * 3, settings, lslo, required=required)
    assert "classeur" in out[0][0].lower() and "classeur" not in plain[0][0].lower()
    assert "LibreOffice" in out[1][0] and "courriel" in out[1][0].lower()
    assert out[2] == plain[2]
