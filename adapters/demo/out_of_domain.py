"""Assemble test text from another source than the demo's training data: the gettext catalogs of the system's
own programs (``/usr/share/locale``: apt, coreutils, GTK, GLib...), English -> fr, de, it, nl, zh, ja, ko.

Writes OPUS-style pair files ``test.en-<xx>.en`` / ``.<xx>`` that ``python -m training evaluate --data`` reads
(their ``test`` part, 14 directions). Strings are kept when they are plain text (no format placeholders, markup,
mnemonics or line breaks), 4 to 80 characters long, translated into all seven languages, and not in the demo
corpus (any split); a seeded sample of them is written, the same segments in every pair.

    python adapters/demo/out_of_domain.py --corpus runs/demo/data --out runs/demo/out-of-domain

The catalogs are those of the machine it runs on: what it found is printed and written to ``sources.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

import polib

LANGUAGES = {"fr": "fr", "de": "de", "it": "it", "nl": "nl", "zh": "zh_CN", "ja": "ja", "ko": "ko"}
PLAIN = re.compile(r"^[^%{}<>_&$\\\n\t|@#]{4,80}$")  # no placeholders, markup, mnemonics, paths or escapes
NAME_LISTS = ("iso_", "xkeyboard")  # country, language, currency and keyboard names: the demo's CLDR domain


def catalogs(root: Path, locale: str) -> list[Path]:
    folder = root / locale / "LC_MESSAGES"
    return sorted(p for p in folder.glob("*.mo") if not p.name.startswith(NAME_LISTS)) if folder.is_dir() else []


def read_catalog(path: Path) -> dict[str, str]:
    out = {}
    for entry in polib.mofile(str(path)):
        if entry.msgid_plural or entry.msgctxt or not entry.msgstr.strip():
            continue
        source, target = entry.msgid.strip(), entry.msgstr.strip()
        if PLAIN.match(source) and PLAIN.match(target) and re.search(r"[A-Za-z]{3}", source):
            out[source] = target
    return out


def corpus_text(corpus: Path) -> set[str]:
    return {line.strip() for path in corpus.glob("*/*.*") for line in path.read_text(encoding="utf-8").splitlines()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="the demo corpus (runs/demo/data)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--locales", type=Path, default=Path("/usr/share/locale"))
    parser.add_argument("--segments", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    seen = corpus_text(args.corpus)
    tables: dict[str, dict[str, str]] = {}
    sources: dict[str, list[str]] = {}
    for code, locale in LANGUAGES.items():
        table: dict[str, str] = {}
        for path in catalogs(args.locales, locale):
            for source, target in read_catalog(path).items():
                table.setdefault(source, target)
            sources.setdefault(path.stem, []).append(code)
        tables[code] = table
    shared = sorted(set.intersection(*(set(t) for t in tables.values())) - seen)
    if len(shared) < args.segments:
        raise SystemExit(f"only {len(shared)} strings are translated into all of {', '.join(LANGUAGES)}")
    chosen = random.Random(args.seed).sample(shared, args.segments)
    args.out.mkdir(parents=True, exist_ok=True)
    for code, table in tables.items():
        (args.out / f"test.en-{code}.en").write_text("".join(f"{s}\n" for s in chosen), encoding="utf-8")
        (args.out / f"test.en-{code}.{code}").write_text("".join(f"{table[s]}\n" for s in chosen), encoding="utf-8")
    used = {domain: langs for domain, langs in sources.items() if len(langs) == len(LANGUAGES)}
    record = {"segments": len(chosen), "candidates": len(shared), "seed": args.seed,
              "catalogs_in_all_languages": sorted(used), "locales": str(args.locales)}
    (args.out / "sources.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
    print(f"{len(chosen)} of {len(shared)} strings, from {len(used)} catalogs -> {args.out}")


if __name__ == "__main__":
    main()
