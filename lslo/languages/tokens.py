"""Which languages a tokenizer has, and the codes users send for them.

A language token is one of the tokenizer's added special tokens in M2M-100's form (``__en__``) or NLLB-200's
(``eng_Latn``); nothing else ever is, so that an ordinary piece spelled like a code (NLLB's ``en``) is never
taken for a language. ``LanguageVocabulary`` maps the base model's codes to the codes users
send (``zho_Hans`` <-> ``zh``, ``__zh__`` <-> ``zh``) through the language table.
"""

from __future__ import annotations

import re
from typing import Any

from lslo.languages.codes import language_name, lookup, table

M2M_TOKEN = re.compile(r"^__([a-z]{2,3}(?:_[A-Za-z]{2,4})?)__$")
FLORES_TOKEN = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")


def language_tokens(tokenizer: Any) -> dict[str, int]:
    """{model code: token id} of the tokenizer's language tokens (``en`` for ``__en__``; ``eng_Latn``)."""
    cached = tokenizer.__dict__.get("_lslo_language_tokens")
    if cached is not None:
        return cached
    candidates: dict[str, int] = dict(getattr(tokenizer, "added_tokens_encoder", {}) or {})
    candidates.update(getattr(tokenizer, "lang_token_to_id", {}) or {})  # M2M100Tokenizer's own table
    tokens: dict[str, int] = {}
    for token, token_id in candidates.items():
        m2m = M2M_TOKEN.match(token)
        if m2m:
            tokens[m2m.group(1)] = int(token_id)
        elif FLORES_TOKEN.match(token):
            tokens[token] = int(token_id)
    tokenizer.__dict__["_lslo_language_tokens"] = tokens
    return tokens


class LanguageVocabulary:
    """The base model's languages under the codes users send, and back."""

    def __init__(self, tokenizer: Any, tokens: dict[str, int] | None = None) -> None:
        self.tokens = language_tokens(tokenizer) if tokens is None else tokens
        self.from_tokenizer = tokens is None
        self._from_user: dict[str, str] = {}
        self._to_user: dict[str, str] = {}
        for model_code in self.tokens:
            row = lookup(model_code)
            user = row.code if row else model_code
            self._to_user[model_code] = user
            self._from_user.setdefault(user, model_code)
        for model_code in self.tokens:  # the model's own codes are accepted too
            self._from_user.setdefault(model_code, model_code)

    @classmethod
    def of_table(cls) -> LanguageVocabulary:
        """Every language of the language table under its own code: what checks use while the base model's
        tokenizer cannot be read, so that the other problems are still all found."""
        return cls(None, {row.code: -1 for row in table()})

    def unknown(self, code: str) -> str:
        """Why ``code`` has no model code, for an error message."""
        if self.from_tokenizer:
            return f"the base model's tokenizer has no language token for {code!r}"
        return f"{code!r} is not a known language code (lslo/data/languages.json lists them)"

    @property
    def model_codes(self) -> list[str]:
        return list(self.tokens)

    def model_code(self, code: str) -> str | None:
        """The base model's code for a user code (``zh``), a model code of either family (``zho_Hans``,
        ``zh``) or a FLORES-101 code, or None if the base has no token for that language."""
        if code in self._from_user:
            return self._from_user[code]
        row = lookup(code)
        if row is None:
            return None
        for candidate in (row.code, row.m2m, row.flores200):
            if candidate and candidate in self.tokens:
                return candidate
        return None

    def user_code(self, model_code: str) -> str:
        return self._to_user.get(model_code, model_code)

    def name(self, model_code: str) -> str:
        return language_name(model_code)
