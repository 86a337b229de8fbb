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

from lslo.languages.codes import lookup

# Unicode character-name prefixes of each FLORES-200 script (what a language written in it may contain).
SCRIPT_LETTERS: dict[str, tuple[str, ...]] = {
    "Latn": ("LATIN",),
    "Cyrl": ("CYRILLIC",),
    "Arab": ("ARABIC",),
    "Grek": ("GREEK",),
    "Hebr": ("HEBREW",),
    "Armn": ("ARMENIAN",),
    "Geor": ("GEORGIAN",),
    "Ethi": ("ETHIOPIC",),
    "Deva": ("DEVANAGARI",),
    "Beng": ("BENGALI",),
    "Gujr": ("GUJARATI",),
    "Guru": ("GURMUKHI",),
    "Orya": ("ORIYA",),
    "Taml": ("TAMIL",),
    "Telu": ("TELUGU",),
    "Knda": ("KANNADA",),
    "Mlym": ("MALAYALAM",),
    "Sinh": ("SINHALA",),
    "Thai": ("THAI",),
    "Laoo": ("LAO",),
    "Khmr": ("KHMER",),
    "Mymr": ("MYANMAR",),
    "Tibt": ("TIBETAN",),
    "Hang": ("HANGUL",),
    "Hans": ("CJK",),
    "Hant": ("CJK",),
    "Jpan": ("CJK", "HIRAGANA", "KATAKANA"),
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
    _, _, script = code.replace("-", "_").partition("_")
    if len(script) == 4:
        return script.title()
    entry = lookup(code)
    return entry.flores200.partition("_")[2] if entry and entry.flores200 else None


def letter_script(c: str) -> str | None:
    """The script name of a letter as ``SCRIPT_LETTERS`` spells it (``LATIN``, ``CJK``, ``HIRAGANA``...), None
    for a letter that belongs to no script of its own (modifier letters)."""
    name = unicodedata.name(c, "")
    words = name.split()
    if not words or words[0] == "MODIFIER":
        return None
    if words[0] in ("HALFWIDTH", "FULLWIDTH") and len(words) > 1:
        words = words[1:]
    if words[0] == "KATAKANA-HIRAGANA":
        return "KATAKANA"
    if words[0] == "IDEOGRAPHIC":  # 々, 〆
        return "CJK"
    return words[0]


def letter_names(text: str) -> set[str]:
    """The scripts of the letters of ``text``. Latin letters inside text of another script (a brand, a term)
    do not count: ``geometryタイプ`` is Japanese."""
    names = {letter_script(c) for c in text if unicodedata.category(c).startswith("L")} - {None}
    if len(names) > 1:
        names.discard("LATIN")
    return names  # type: ignore[return-value]


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
        possible = [c for c in self.candidates if writable(c, names, text)]
        if not possible:  # written in a script none of the served languages uses
            return []
        if len(possible) == 1:
            return [Guess(possible[0], 1.0)]
        by_label: dict[str, list[str]] = {}
        for code in possible:
            if code in self._labels:
                by_label.setdefault(self._labels[code], []).append(code)
        if not by_label:  # none of them is in the statistical model: the script narrowed it down to these
            return [Guess(c, round(1.0 / len(possible), 4)) for c in possible[:top]]
        ranked = [
            (label, p)
            for label, p in self._identifier.rank(text)  # type: ignore[attr-defined]
            if label in by_label
        ]
        total = sum(p for _, p in ranked) or 1.0
        share = sum(len(v) for v in by_label.values()) / len(possible)  # the rest: candidates outside the model
        guesses = [
            Guess(code, round(p / total * share / len(by_label[label]), 4))  # codes sharing a label share
            for label, p in ranked
            for code in by_label[label]
        ]
        outside = [c for c in possible if c not in self._labels]
        guesses += [Guess(c, round((1 - share) / len(outside), 4)) for c in outside]
        return sorted(guesses, key=lambda g: -g.confidence)[:top]
