"""The languages the service translates, under the codes its clients send.

Every language the base model has a token for can be served: a language with an adapter goes through it, one
without through the base model alone, in the same batches. Which of the base's languages are offered is
``--languages``: ``auto`` (the languages the base declares it was trained on, in its ``base_info.json``; else
all of them), ``all``, or a comma list. Languages with adapters are always offered.

Clients use the codes of the language table (``en``, ``zh``, ``zh-Hant``); the model uses its own (``en``,
``eng_Latn``, ``zho_Hant``). Either is accepted; answers use the clients' codes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from lslo.languages.tokens import LanguageVocabulary


class LanguageChoiceError(ValueError):
    """``--languages`` names languages the base has no token for; the message lists them."""


def base_declared_languages(base: Path) -> list[str] | None:
    """The languages a base was trained on, as ``init-base`` records them in ``base_info.json``."""
    info = base / "base_info.json"
    try:
        languages = json.loads(info.read_text(encoding="utf-8")).get("languages")
    except (OSError, ValueError, AttributeError):
        return None
    return [str(c) for c in languages] if isinstance(languages, list) else None


class ServedLanguages:
    def __init__(self, vocabulary: LanguageVocabulary, base: Path, choice: str) -> None:
        self.vocabulary = vocabulary
        if choice == "all":
            wanted = vocabulary.model_codes
        elif choice == "auto":
            wanted = base_declared_languages(base) or vocabulary.model_codes
        else:
            wanted = [c.strip() for c in choice.split(",") if c.strip()]
        resolved = {c: vocabulary.model_code(c) for c in wanted}
        unknown = [c for c, m in resolved.items() if m is None]
        if unknown:
            raise LanguageChoiceError(f"the base model has no language token for {', '.join(unknown)}")
        self.base_languages = sorted({m for m in resolved.values() if m}, key=vocabulary.user_code)

    def served(self, adapters: Iterable[str]) -> list[str]:
        """Model codes of every language offered: the chosen ones and those with adapters."""
        return sorted(set(self.base_languages) | set(adapters), key=self.vocabulary.user_code)

    def model_code(self, code: str, adapters: Iterable[str]) -> str | None:
        """The model code of a language the service offers, from a user or model code; None otherwise."""
        model = self.vocabulary.model_code(code)
        return model if model is not None and model in self.served(adapters) else None

    def user_code(self, model_code: str) -> str:
        return self.vocabulary.user_code(model_code)
