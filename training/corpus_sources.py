"""Many-way parallel text that ships with pip packages.

- ``django``: Django's gettext catalogs (``django.mo`` / ``djangojs.mo``). English is the msgid. Strings with
  format placeholders, markup or URLs are skipped.
- ``cldr``: CLDR names via babel: languages, territories, scripts, currencies, month and day names.
- ``libreoffice-help``, ``libreoffice-ui``: LibreOffice's help and interface translations as Debian installs
  them (``training.libreoffice``).

Each source returns ``{segment key: {model code: text}}``.
"""

from __future__ import annotations

import gettext
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

SegmentTable = dict[tuple[str, ...], dict[str, str]]

# Locale directory / babel names that differ from the model's codes.
DJANGO_LOCALES = {"zh": "zh_Hans", "no": "nb"}
BABEL_LOCALES = {"zh": "zh_Hans", "no": "nb"}
_SKIP = re.compile(r"%\(|%[sdrif]|\{|\}|<|>|https?:|\\n|\n|\t")


def normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def django_segments(codes: Sequence[str], max_chars: int = 160) -> tuple[SegmentTable, str]:
    """Returns the table and a description of the source (with its version)."""
    import django

    root = Path(django.__file__).parent
    table: SegmentTable = {}
    for code in codes:
        if code == "en":
            continue
        locale = DJANGO_LOCALES.get(code, code)
        for mo in sorted(root.glob(f"**/locale/{locale}/LC_MESSAGES/*.mo")):
            if mo.stem not in ("django", "djangojs"):
                continue
            with mo.open("rb") as f:
                catalog = gettext.GNUTranslations(f)._catalog  # type: ignore[attr-defined]
            for msgid, text in catalog.items():
                if not isinstance(msgid, str) or not msgid or not isinstance(text, str) or not text.strip():
                    continue
                source = msgid.split("\x04")[-1]  # drop a msgctxt prefix
                if _SKIP.search(source) or _SKIP.search(text) or len(source) > max_chars or len(text) > max_chars:
                    continue
                entry = table.setdefault(("django", source), {"en": normalise(source)})
                entry.setdefault(code, normalise(text))  # first app in path order wins
    if "en" not in codes:
        for entry in table.values():
            entry.pop("en", None)
    return table, f"Django {django.__version__} gettext catalogs"


def cldr_segments(codes: Sequence[str], max_chars: int = 160) -> tuple[SegmentTable, str]:
    import babel
    from babel import Locale, UnknownLocaleError

    table: SegmentTable = {}
    for code in codes:
        try:
            locale = Locale.parse(BABEL_LOCALES.get(code, code))
        except (UnknownLocaleError, ValueError):
            continue
        groups = {
            "language": locale.languages,
            "territory": locale.territories,
            "script": locale.scripts,
            "currency": locale.currencies,
            "month": locale.months["format"]["wide"],
            "day": locale.days["format"]["wide"],
        }
        for kind, names in groups.items():
            for ident, text in names.items():
                if isinstance(text, str) and text.strip() and len(text) <= max_chars:
                    table.setdefault(("cldr", kind, str(ident)), {})[code] = normalise(text)
    return table, f"CLDR {babel.core.get_cldr_version()} via babel {babel.__version__}"


SOURCES = {"django": django_segments, "cldr": cldr_segments}
