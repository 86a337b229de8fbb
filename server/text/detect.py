"""Language detection among the languages the service can translate, one text at a time.

Two steps: the writing system first (letters in Hangul can only be Korean among the candidates; kana means
Japanese; Armenian letters Armenian), then ``py3langid``'s naive Bayes model restricted to the candidates that
are left. The choice of ``py3langid`` over ``langdetect`` and ``lingua`` was measured on short strings
(docs/text.md): the most accurate of the three here, 0.03 ms a string, and its model (4.5 MB, numpy arrays,
not a pickle) ships inside the package.
"""

from __future__ import annotations

import copy
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from lslo.language_codes import code_table

# Unicode character-name prefixes of each FLORES-200 script (what a language written in it may contain).
SCRIPT_LETTERS: dict[str, tuple[str, ...]] = {
    "Latn": ("LATIN",), "Cyrl": ("CYRILLIC",), "Arab": ("ARABIC",), "Grek": ("GREEK",), "Hebr": ("HEBREW",),
    "Armn": ("ARMENIAN",), "Geor": ("GEORGIAN",), "Ethi": ("ETHIOPIC",), "Deva": ("DEVANAGARI",),
    "Beng": ("BENGALI",), "Gujr": ("GUJARATI",), "Guru": ("GURMUKHI",), "Orya": ("ORIYA",), "Taml": ("TAMIL",),
    "Telu": ("TELUGU",), "Knda": ("KANNADA",), "Mlym": ("MALAYALAM",), "Sinh": ("SINHALA",), "Thai": ("THAI",),
    "Laoo": ("LAO",), "Khmr": ("KHMER",), "Mymr": ("MYANMAR",), "Tibt": ("TIBETAN",), "Hang": ("HANGUL",),
    "Hans": ("CJK",), "Hant": ("CJK",), "Jpan": ("CJK", "HIRAGANA", "KATAKANA"),
}
# Letters that only one script has, so that their presence decides between scripts sharing the others.
DECISIVE = {"HIRAGANA": "Jpan", "KATAKANA": "Jpan"}
# Han characters tell the three Han scripts apart by their forms: simplified Chinese text fits GB 2312,
# Japanese (shinjitai: 検, 変, 時) Shift JIS, traditional Chinese Big5. A character outside a script's
# national character set is (almost) never written in it.
HAN_CHARSETS = {"Hans": "gb2312", "Jpan": "shift_jis", "Hant": "big5"}


@dataclass(frozen=True)
class Guess:
    language: str
    confidence: float  # 0..1; the guesses of one text sum to at most 1


def script_of(code: str) -> str | None:
    """The FLORES-200 script of a model code (``zh`` -> ``Hans``, ``eng_Latn`` -> ``Latn``)."""
    _, _, script = code.partition("_")
    if script:
        return script
    entry = code_table().get(code)
    return entry.flores200.partition("_")[2] if entry else None


def letter_names(text: str) -> set[str]:
    """The first word of the Unicode name of every letter of ``text`` (``LATIN``, ``CJK``, ``HIRAGANA``...)."""
    names = set()
    for c in text:
        if unicodedata.category(c).startswith("L"):
            names.add(unicodedata.name(c, "UNKNOWN").split()[0])
    return names


def writable(code: str, names: set[str], text: str = "") -> bool:
    """Whether ``code``'s script has every kind of letter in ``names`` (unknown scripts: anything) and, for the
    Han scripts, every Han character of ``text`` in its national character set."""
    script = script_of(code)
    if script not in SCRIPT_LETTERS:
        return True
    if any(DECISIVE.get(n, script) != script for n in names) or not names <= set(SCRIPT_LETTERS[script]):
        return False
    if script in HAN_CHARSETS and "CJK" in names:
        han = "".join(c for c in text if unicodedata.name(c, "").startswith("CJK UNIFIED"))
        try:
            han.encode(HAN_CHARSETS[script])
        except UnicodeEncodeError:
            return False
    return True


@cache
def _full_identifier() -> object:
    import py3langid.langid as langid

    return langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=True)


class Detector:
    """Detects among ``candidates`` (the languages the service can translate). Build a new one when they change."""

    def __init__(self, candidates: Sequence[str]) -> None:
        self.candidates = list(dict.fromkeys(candidates))
        full = _full_identifier()
        known = set(full.nb_classes)  # type: ignore[attr-defined]
        self._labels = {c: c.partition("_")[0] for c in self.candidates if c.partition("_")[0] in known}
        self._identifier = copy.copy(full)
        if self._labels:
            self._identifier.set_languages(sorted(set(self._labels.values())))  # type: ignore[attr-defined]

    def detect(self, text: str, top: int = 3) -> list[Guess]:
        """Best first, at most ``top``; empty when ``text`` has no letters (nothing to tell a language by)."""
        names = letter_names(text)
        if not names or not self.candidates:
            return []
        possible = [c for c in self.candidates if writable(c, names, text)] or self.candidates
        if len(possible) == 1:
            return [Guess(possible[0], 1.0)]
        modelled = {self._labels[c]: c for c in possible if c in self._labels}
        if not modelled:  # none of them is in the statistical model: the script narrowed it down to these
            return [Guess(c, round(1.0 / len(possible), 4)) for c in possible[:top]]
        ranked = [(modelled[label], p) for label, p in self._identifier.rank(text)  # type: ignore[attr-defined]
                  if label in modelled]
        total = sum(p for _, p in ranked) or 1.0
        share = len(modelled) / len(possible)  # candidates outside the model keep the rest of the mass
        return [Guess(code, round(p / total * share, 4)) for code, p in ranked[:top]]
