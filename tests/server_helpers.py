"""Helpers for the server tests: app construction and reference translations computed without the server."""

from __future__ import annotations

import torch
from transformers import AutoTokenizer, M2M100ForConditionalGeneration

from lslo.generation import GenerationSettings, translate
from lslo.io import load_bundle
from server.app import create_app
from server.settings import ServerSettings

FAST = dict(beam=2, max_new_tokens=10, max_batch_size=8, max_wait_ms=30, log_format="text", log_level="warning")


def make_app(base, bundle, **overrides):
    return create_app(ServerSettings(base=base, bundle=bundle, **{**FAST, **overrides}))


def reference(base, bundle, texts, source, target, beam=2, max_new_tokens=10):
    """Translations of ``texts`` computed directly with the library, one text at a time."""
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = M2M100ForConditionalGeneration.from_pretrained(base, dtype=torch.float32).eval()
    lslo = load_bundle(model, bundle)
    settings = GenerationSettings(num_beams=beam, max_new_tokens=max_new_tokens)
    return [translate(model, tokenizer, [t], [source], [target], settings, lslo)[0][0] for t in texts]
