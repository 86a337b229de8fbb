"""Rebuild ``lslo/data/languages.json``, the one language table: every language of M2M-100 and of NLLB-200
(FLORES-101 and FLORES-200) with the code users type, each model family's code, and an English name.

    python scripts/build_language_table.py     # needs pycountry (pip install pycountry); run from the root

- ``code``: what users and LibreTranslate clients send. ISO 639-1 where the language has one, else ISO 639-3;
  a second script of a language gets a BCP-47 script subtag (``zh-Hant``, ``ks-Deva``).
- ``m2m``: M2M-100 / M2M-124's language code (``en``; its token is ``__en__``), where the model has the language.
- ``flores101`` / ``flores200``: file codes of the FLORES releases; ``flores200`` is also NLLB-200's token.
- ``name``: English name.

Rows already in the table keep their values (they were checked against the FLORES-101 list); new rows come
from transformers' own code lists (the tokens the released tokenizers have) and pycountry's ISO 639 data.
"""

from __future__ import annotations

import json
from pathlib import Path

import pycountry
from transformers.models.m2m_100.tokenization_m2m_100 import FAIRSEQ_LANGUAGE_CODES as M2M_CODES
from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES as NLLB_CODES

TABLE = Path("lslo/data/languages.json")
# For a language that FLORES-200 has in two scripts, the one its bare code means.
DEFAULT_SCRIPT = {
    "ace": "Latn",
    "arb": "Arab",
    "bjn": "Latn",
    "kas": "Arab",
    "knc": "Latn",
    "min": "Latn",
    "taq": "Latn",
    "zho": "Hans",
}
SCRIPT_NAMES = {
    "Arab": "Arabic script",
    "Latn": "Latin script",
    "Deva": "Devanagari",
    "Tfng": "Tifinagh",
    "Hant": "Traditional",
    "Hans": "Simplified",
}


def iso(alpha3: str) -> tuple[str, str]:
    """(user code, name) of an ISO 639-3 code."""
    language = pycountry.languages.get(alpha_3=alpha3)
    if language is None:
        return alpha3, alpha3
    return getattr(language, "alpha_2", None) or alpha3, language.name


def build() -> dict:
    old = json.loads(TABLE.read_text(encoding="utf-8"))["languages"]
    rows = {
        r["flores200"]: {
            "code": r.get("code", r.get("model")),
            "m2m": r.get("m2m", r.get("model")),
            "flores101": r["flores101"],
            "flores200": r["flores200"],
            "name": r["name"],
        }
        for r in old
    }
    # Every FLORES-101 row keeps its M2M code: M2M-124 (FLORES-101's model) has all of them, M2M-100 all but
    # kam, mt, ny and sn.
    taken = {r["code"] for r in rows.values()}
    by_base: dict[str, list[str]] = {}
    for code in NLLB_CODES:
        by_base.setdefault(code.split("_")[0], []).append(code)
    for code in NLLB_CODES:
        if code in rows:
            continue
        base, script = code.split("_")
        user, name = iso(base)
        if len(by_base[base]) > 1 and script != DEFAULT_SCRIPT.get(base, script):
            user = f"{user}-{script}"
            name = f"{name} ({SCRIPT_NAMES.get(script, script)})"
        while user in taken:  # an ISO 639-1 code the table already gives another FLORES-200 language
            user = f"{base}-{script}" if user != f"{base}-{script}" else f"{base}_{script}"
        taken.add(user)
        rows[code] = {"code": user, "m2m": None, "flores101": None, "flores200": code, "name": name}
    # M2M-100 languages FLORES-101 does not have (Breton, Frisian, Scottish Gaelic...): their own rows.
    known_m2m = {r["m2m"] for r in rows.values() if r["m2m"]}
    for code in M2M_CODES["m2m100"]:
        if code in known_m2m:
            continue
        language = pycountry.languages.get(alpha_2=code) or pycountry.languages.get(alpha_3=code)
        flores = next((c for c in NLLB_CODES if language is not None and c.split("_")[0] == language.alpha_3), None)
        if flores and flores in rows:
            rows[flores]["m2m"] = code
            continue
        rows[f"m2m:{code}"] = {
            "code": code,
            "m2m": code,
            "flores101": None,
            "flores200": flores,
            "name": language.name if language else code,
        }
    ordered = sorted(rows.values(), key=lambda r: r["code"])
    return {
        "source": "The one language table: user codes (ISO 639-1, else 639-3, with a BCP-47 script subtag for a "
        "second script), M2M-100/M2M-124 and NLLB-200/FLORES-200 codes, FLORES-101 file codes and "
        "English names. Built by scripts/build_language_table.py from the FLORES-101 list, "
        "transformers' M2M-100 and NLLB-200 code lists and ISO 639 (pycountry).",
        "languages": ordered,
    }


def write(table: dict) -> None:
    rows = ",\n".join("  " + json.dumps(r, ensure_ascii=False) for r in table["languages"])
    TABLE.write_text(
        '{\n"source": ' + json.dumps(table["source"]) + ',\n"languages": [\n' + rows + "\n]\n}\n", encoding="utf-8"
    )


if __name__ == "__main__":
    built = build()
    write(built)
    print(f"{len(built['languages'])} languages -> {TABLE}")
