"""Assemble test text from another source than the demo's training data: the gettext catalogs of the system's
own programs (``/usr/share/locale``: apt, coreutils, GTK, GLib...), English -> fr, de, it, nl, zh, ja, ko, and
English -> af, cy, oc, xh where the machine has catalogs for them.

Two parts from disjoint catalogs: ``test`` from the command-line and system tools (apt, coreutils, git,
PostgreSQL...) and ``valid`` from the desktop stack (GTK, GLib, GStreamer...), so that choosing an epoch on
``valid`` learns nothing about ``test``'s strings. Each is written as OPUS-style pair files
``<part>.en-<xx>.en`` / ``.<xx>`` (English with each language) that ``python -m training evaluate --data`` and
``finetune --valid`` read. Strings are kept when they are plain text (no format placeholders, markup, mnemonics or line
breaks), 4 to 80 characters long, translated into all seven languages, and not in the demo corpus (any split)
nor in the other part; a seeded sample of each is written, the same segments in every pair. The very-low-tier
languages have few catalogs: each gets its own sample (up to ``--segments``, at least ``--min-segments``) of the
strings translated into it, so their pairs hold other segments than the seven's.

    python adapters/demo/out_of_domain.py --corpus runs/demo/data --part test --out runs/demo/out-of-domain
    python adapters/demo/out_of_domain.py --corpus runs/demo/data --part valid --out runs/demo/valid-general

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
OWN_SAMPLE = {"af": "af", "cy": "cy", "oc": "oc", "xh": "xh"}  # the demo's very-low tier: few catalogs each
PLAIN = re.compile(r"^[^%{}<>_&$\\\n\t|@#]{4,80}$")  # no placeholders, markup, mnemonics, paths or escapes
NAME_LISTS = ("iso_", "xkeyboard")  # country, language, currency and keyboard names: the demo's CLDR domain
DESKTOP = (
    "gtk",
    "glib",
    "gdk",
    "gst",
    "gsettings",
    "at-spi",
    "libhandy",
    "libsecret",
    "notification",
    "shared-mime",
    "xdg",
    "upower",
    "avahi",
    "PackageKit",
    "appstream",
    "cups",
    "system-config",
)  # the valid part


def part_of(catalog: str) -> str:
    return "valid" if catalog.startswith(DESKTOP) else "test"


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
    parser.add_argument("--part", choices=("test", "valid"), default="test")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--locales", type=Path, default=Path("/usr/share/locale"))
    parser.add_argument("--segments", type=int, default=200)
    parser.add_argument(
        "--min-segments",
        type=int,
        default=50,
        help="a very-low-tier language with fewer strings than this gets no pair",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    seen = corpus_text(args.corpus)
    tables: dict[str, dict[str, str]] = {}
    other: set[str] = set()  # English strings of the other part's catalogs
    sources: dict[str, list[str]] = {}
    for code, locale in {**LANGUAGES, **OWN_SAMPLE}.items():
        table: dict[str, str] = {}
        for path in catalogs(args.locales, locale):
            strings = read_catalog(path)
            if part_of(path.stem) != args.part:
                other.update(strings)
                continue
            for source, target in strings.items():
                table.setdefault(source, target)
            sources.setdefault(path.stem, []).append(code)
        tables[code] = table
    shared = sorted(set.intersection(*(set(tables[c]) for c in LANGUAGES)) - seen - other)
    if len(shared) < args.segments:
        raise SystemExit(f"only {len(shared)} strings are translated into all of {', '.join(LANGUAGES)}")
    chosen = random.Random(args.seed).sample(shared, args.segments)
    args.out.mkdir(parents=True, exist_ok=True)
    samples = {code: chosen for code in LANGUAGES}
    own: dict[str, dict[str, int]] = {}
    for code in OWN_SAMPLE:
        candidates = sorted(set(tables[code]) - seen - other)
        if len(candidates) < args.min_segments:
            print(
                f"{code}: {len(candidates)} strings in the {args.part} part's catalogs, fewer than "
                f"{args.min_segments}: no pair"
            )
            continue
        samples[code] = random.Random(args.seed).sample(candidates, min(args.segments, len(candidates)))
        own[code] = {"segments": len(samples[code]), "candidates": len(candidates)}
    for code, sample in samples.items():
        stem = f"{args.part}.en-{code}"
        (args.out / f"{stem}.en").write_text("".join(f"{s}\n" for s in sample), encoding="utf-8")
        (args.out / f"{stem}.{code}").write_text("".join(f"{tables[code][s]}\n" for s in sample), encoding="utf-8")
    used = {domain: langs for domain, langs in sources.items() if set(LANGUAGES) <= set(langs)}
    record = {
        "part": args.part,
        "segments": len(chosen),
        "candidates": len(shared),
        "seed": args.seed,
        "catalogs_in_all_languages": sorted(used),
        "own_samples": own,
        "own_sample_catalogs": {code: sorted(d for d, langs in sources.items() if code in langs) for code in own},
        "locales": str(args.locales),
    }
    (args.out / "sources.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
    print(f"{len(chosen)} of {len(shared)} strings, from {len(used)} catalogs -> {args.out}")


if __name__ == "__main__":
    main()
