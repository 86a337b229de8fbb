"""The front end's view of the model: the tokenizer, the languages offered, the generation settings, and the
adapters as the engine core last announced them (``server.core``). No weights are loaded here: the front end
segments, tokenizes and detokenizes; the core decodes token ids."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import AutoConfig, AutoTokenizer

from lslo.engine import DecodeOutput, DecodeRequest
from lslo.engine.constraints import constrained_beams
from lslo.engine.generation import GenerationSettings, decode_request
from lslo.languages.tokenization import phrase_alternatives
from lslo.languages.tokens import LanguageVocabulary
from server.core.messages import State
from server.errors import StartupError
from server.runtime.languages import LanguageChoiceError, ServedLanguages
from server.settings import ServerSettings
from server.text.units import Hypothesis, Sentence


@dataclass(frozen=True)
class AdapterRecord:
    """One served adapter, as the core announced it (a row of ``GET /adapters``)."""

    code: str
    rank: int
    tier: str | None
    sha256: str
    source: str


class FrontEnd:
    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        base = settings.base
        if not (base / "config.json").is_file():
            raise StartupError(
                f"base model not found: {base} has no config.json (set --base or LSLO_BASE to a "
                "Hugging Face model directory)"
            )
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(base)
            config = AutoConfig.from_pretrained(base)
        except (OSError, ValueError, KeyError) as err:
            raise StartupError(f"cannot load the base model's tokenizer from {base}: {err}") from None
        self.vocabulary = LanguageVocabulary(self.tokenizer)
        try:
            self.served = ServedLanguages(self.vocabulary, Path(base), settings.languages)
        except LanguageChoiceError as err:
            raise StartupError(f"--languages: {err}") from None
        positions = int(getattr(config, "max_position_embeddings", 1024)) - 2
        self.generation = GenerationSettings(
            num_beams=settings.beam,
            max_new_tokens=min(settings.max_new_tokens, positions),
            max_input_tokens=min(settings.max_input_tokens, positions),
            fallback_to_base=True,
            max_length_ratio=settings.max_length_ratio or None,
        )
        # The longest row in tokens: it fits the input window with its language token and </s>, and its translation
        # (two thirds of max_new_tokens, at least 32 tokens, leave the decoder room) is not cut short.
        self.segment_tokens = max(
            1, min(self.generation.max_input_tokens - 2, max(32, self.generation.max_new_tokens * 2 // 3))
        )
        # Constrained sentences get up to 8 beams, within what the core's engine holds for one request.
        self.max_constrained_beams = max(
            settings.beam, settings.max_alternatives + 1, min(8, settings.max_batch_size * settings.beam)
        )
        self.state: State | None = None
        self.adapters: dict[str, AdapterRecord] = {}
        # Request handlers measure text on their own tokenizer (a fast tokenizer must not be shared between
        # threads), one thread at a time.
        self._counter = AutoTokenizer.from_pretrained(base)
        self._counter_lock = threading.Lock()

    def show(self, state: State) -> None:
        """What the core announced: its adapters, fingerprint, device."""
        self.state = state
        self.adapters = {
            row["code"]: AdapterRecord(row["code"], int(row["rank"]), row.get("tier"), row["sha256"], row["source"])
            for row in state.adapters
        }

    @property
    def fingerprint(self) -> str:
        return self.state.fingerprint if self.state is not None else ""

    def adapter_table(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self.state.adapters] if self.state is not None else []

    # -------------------------------------------------------------------------------------- languages
    @property
    def languages(self) -> list[str]:
        """Model codes of the languages offered (with or without an adapter)."""
        return self.served.served(self.adapters)

    def model_code(self, code: str) -> str | None:
        """The model code of an offered language, from the code a client sent (user or model form)."""
        return self.served.model_code(code, self.adapters)

    def user_code(self, model_code: str) -> str:
        return self.served.user_code(model_code)

    def has_token(self, code: str) -> bool:
        return self.vocabulary.model_code(code) is not None

    def fits(self, text: str) -> bool:
        """Whether ``text`` is short enough to be one row (never truncated by the model's window)."""
        if len(text) <= self.segment_tokens // 4:  # no tokenizer makes more than four tokens of a character here
            return True
        with self._counter_lock:
            return len(self._counter(text, add_special_tokens=False)["input_ids"]) <= self.segment_tokens

    # ------------------------------------------------------------------------------------ token ids
    def request_for(self, sentence: Sentence) -> DecodeRequest:
        """The decoding request of one sentence (tokenized here, on the event loop's thread); its placeholders
        and glossary terms become constraints, which need beam search: at least four beams, one more than the
        constraints up to eight, so that dynamic beam allocation has a bank for each."""
        assert self.state is not None
        limit = self.generation.max_input_tokens - 2
        ids = self.tokenizer(sentence.text, add_special_tokens=False)["input_ids"][:limit]
        constraints = tuple(phrase_alternatives(self.tokenizer, p) for p in sentence.protect)
        constraints += tuple(phrase_alternatives(self.tokenizer, t, capitalised=True) for t in sentence.terms)
        constraints = tuple(c for c in constraints if c)
        beams = max(self.generation.num_beams, sentence.n_best)
        if constraints:
            beams = constrained_beams(beams, len(constraints), self.max_constrained_beams)
        return decode_request(
            self.tokenizer,
            ids,
            sentence.source,
            sentence.target,
            self.state.decoder_start,
            self.generation,
            num_beams=beams,
            num_return_sequences=sentence.n_best,
            constraints=constraints,
        )

    def hypotheses_of(self, output: DecodeOutput) -> list[Hypothesis]:
        """The output's translations with their log-probabilities (beam search scores are the sum over the tokens
        divided by ``tokens ** length_penalty``; the sum is restored here)."""
        sequences: list[list[int]] = [list(s) for s in output.sequences] or [[]]
        texts = [t.strip() for t in self.tokenizer.batch_decode(sequences, skip_special_tokens=True)]
        if output.scores is None:
            return [Hypothesis(t, None, len(s)) for t, s in zip(texts, sequences)]
        penalty = self.generation.length_penalty
        return [
            Hypothesis(t, score * max(1, len(s)) ** penalty, max(1, len(s)))
            for t, s, score in zip(texts, sequences, output.scores)
        ]
