"""The one language table: each language's model code (``en``, ``zh``, ``kam``), its FLORES-101 (``eng``,
``zho_simpl``) and FLORES-200 (``eng_Latn``) file codes, and its English name.

Training reads data files by these codes, the server names languages with it, and the paper's lang12/lang30
tables (``lslo.languages``) take their names from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class LanguageCode:
    model: str
    flores101: str
    flores200: str
    name: str


@cache
def code_table() -> dict[str, LanguageCode]:
    """Every language of the table, keyed by its model code."""
    raw = json.loads(resources.files("lslo").joinpath("data", "languages.json").read_text(encoding="utf-8"))
    return {row["model"]: LanguageCode(**row) for row in raw["languages"]}


def language_name(model_code: str) -> str:
    """English name of a model code; the code itself for a language the table does not know."""
    entry = code_table().get(model_code)
    return entry.name if entry else model_code


def flores_names(model_code: str) -> list[str]:
    """File stems that may hold ``model_code`` in a FLORES directory, most likely first."""
    entry = code_table().get(model_code)
    names = [entry.flores101, entry.flores200] if entry else []
    if model_code not in names:
        names.append(model_code)  # NLLB-style models use FLORES-200 codes themselves
    return names


def flores101_stem(model_code: str) -> str:
    """The FLORES-101 file stem of a model code (the code itself when the table does not know it)."""
    entry = code_table().get(model_code)
    return entry.flores101 if entry else model_code
