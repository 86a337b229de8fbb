"""Language codes: the model's (``en``, ``zh``, ``kam``) versus FLORES-101 (``eng``, ``zho_simpl``) and
FLORES-200 (``eng_Latn``) file names."""

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
    """Keyed by the model code."""
    raw = json.loads(resources.files("training").joinpath("data", "flores_codes.json").read_text(encoding="utf-8"))
    return {row["model"]: LanguageCode(**row) for row in raw["languages"]}


@cache
def _by_flores() -> dict[str, LanguageCode]:
    table = code_table()
    out = {c.flores101: c for c in table.values()}
    out.update({c.flores200: c for c in table.values()})
    return out


def flores_names(model_code: str) -> list[str]:
    """File stems that may hold ``model_code`` in a FLORES directory, most likely first."""
    entry = code_table().get(model_code)
    names = [entry.flores101, entry.flores200] if entry else []
    if model_code not in names:
        names.append(model_code)  # NLLB-style models use FLORES-200 codes themselves
    return names


def model_code(flores_code: str) -> str | None:
    entry = _by_flores().get(flores_code)
    return entry.model if entry else None


def language_name(model_code: str) -> str:
    entry = code_table().get(model_code)
    return entry.name if entry else model_code
