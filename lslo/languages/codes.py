"""The one language table (``lslo/data/languages.json``): for each language the code users send (ISO 639-1,
else 639-3, with a BCP-47 script subtag for a second script: ``en``, ``ast``, ``zh-Hant``), its M2M-100 code
(``en``; token ``__en__``), its FLORES-200 code (``eng_Latn``; NLLB-200's token), its FLORES-101 file code
(``eng``) and its English name. Any of these codes finds the language.

Training reads data files by these codes, the server turns user codes into the base model's codes and back
(``lslo.languages.tokens``), and the paper's lang12/lang30 tables take their names from here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class LanguageCode:
    code: str  # what users and LibreTranslate clients send
    m2m: str | None  # M2M-100 / M2M-124 code
    flores101: str | None
    flores200: str | None  # also NLLB-200's code
    name: str


@cache
def table() -> tuple[LanguageCode, ...]:
    raw = json.loads(resources.files("lslo").joinpath("data", "languages.json").read_text(encoding="utf-8"))
    return tuple(LanguageCode(**row) for row in raw["languages"])


@cache
def _index() -> dict[str, LanguageCode]:
    """Every code of every language -> its row; a user code wins over another language's model code."""
    index: dict[str, LanguageCode] = {}
    for field in ("flores101", "flores200", "m2m", "code"):  # later fields overwrite earlier ones
        for row in table():
            value = getattr(row, field)
            if value:
                index[value] = row
    return index


def lookup(code: str) -> LanguageCode | None:
    """The language of any of its codes (``en``, ``eng_Latn``, ``eng``, ``zh-Hant``), or None."""
    return _index().get(code) or _index().get(code.replace("_", "-"))


def language_name(code: str) -> str:
    """English name of any code; the code itself for a language the table does not know."""
    row = lookup(code)
    return row.name if row else code


def flores_names(code: str) -> list[str]:
    """File stems that may hold ``code`` in a FLORES directory, most likely first."""
    row = lookup(code)
    names = [n for n in ((row.flores101, row.flores200) if row else ()) if n]
    if code not in names:
        names.append(code)  # NLLB-style models use FLORES-200 codes themselves
    return names


def flores101_stem(code: str) -> str:
    """The FLORES-101 file stem of a code (the code itself when there is none)."""
    row = lookup(code)
    return row.flores101 if row and row.flores101 else code
