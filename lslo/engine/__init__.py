"""The decoding engine: an owned incremental loop with continuous batching and versioned adapters.

``DecodingEngine`` replaces Hugging Face ``generate()`` for serving, evaluation and benchmarks (``generate()``
stays as the reference the tests compare with): ``DecodeRequest`` in, ``DecodeOutput`` out, both in token ids.
``lslo.engine.generation.translate`` is the text-level entry point.
"""

from lslo.engine.engine import DecodingEngine
from lslo.engine.request import DecodeOutput, DecodeRequest

__all__ = ["DecodeOutput", "DecodeRequest", "DecodingEngine"]
