"""Input text hygiene at the API boundary, before any model work."""

from __future__ import annotations

import unicodedata

_KEEP = {"\t", "\n", "\r"}


def clean(text: str) -> str:
    """Lone surrogates (valid in JSON, not encodable) become U+FFFD; control characters other than tab and
    newlines become spaces; Unicode is NFC-normalised. Everything else (emoji, right-to-left and mixed
    scripts) passes unchanged."""
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        text = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    if any(unicodedata.category(c) == "Cc" and c not in _KEEP for c in text):
        text = "".join(" " if unicodedata.category(c) == "Cc" and c not in _KEEP else c for c in text)
    return unicodedata.normalize("NFC", text)
