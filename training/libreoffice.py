"""Many-way parallel text from LibreOffice's translations, as Debian installs them.

- ``libreoffice-help``: the help (``libreoffice-help-<lang>``), the same HTML pages in every language under
  ``/usr/share/libreoffice/help/<locale>/text/...``; every paragraph and heading carries the same ``id`` in
  every language, so a segment is (page, id). Markup is dropped; of an inline switch (``Command`` on macOS,
  ``Ctrl`` elsewhere) the default variant is kept; code samples are left out.
- ``libreoffice-ui``: the interface's gettext catalogs (``libreoffice-l10n-<lang>``,
  ``/usr/lib/libreoffice/program/resource/<locale>/LC_MESSAGES/*.mo``). English is the msgid. Accelerator
  marks (``~``, ``_`` and the ``(~O)`` suffixes of CJK translations) are removed; placeholders (``%PRODUCTNAME``,
  ``$(ARG1)``, ``%1``) are kept as they are.

Each source returns ``{segment key: {model code: text}}`` like the other sources of ``training.corpus_sources``.
A language that LibreOffice translates but whose package is not installed is an error naming the packages to
install; a language LibreOffice has no help for (``af``, ``cy``...) simply has no help text.
"""

from __future__ import annotations

import gettext
import re
from collections.abc import Iterator, Sequence
from html.parser import HTMLParser
from pathlib import Path

from lslo.errors import ConfigError
from training.corpus_sources import SegmentTable, normalise

HELP_ROOT = Path("/usr/share/libreoffice/help")
UI_ROOT = Path("/usr/lib/libreoffice/program/resource")
HELP_KEY, UI_KEY = "lo-help", "lo-ui"  # first item of the sources' segment keys

# LibreOffice's locale names where they are not the model's code.
LOCALES = {"en": "en-US", "zh": "zh-CN", "zh-Hant": "zh-TW", "pt-BR": "pt-BR", "pa": "pa-IN"}
# Languages Debian ships LibreOffice's help / interface translations for (Debian 12, LibreOffice 7.4).
HELP_LOCALES = frozenset(
    "ca cs da de dz el en-GB en-US es et eu fi fr gl hi hu id it ja km ko nl om pl pt pt-BR ru sk sl sv tr vi "
    "zh-CN zh-TW".split()
)
UI_LOCALES = frozenset(
    "af am ar as ast be bg bn br bs ca cs cy da de dz el en-GB en-ZA eo es et eu fa fi fr ga gd gl gu gug he hi hr "
    "hu id is it ja ka kk km kmr kn ko lt lv mk ml mn mr nb ne nl nn nr nso oc om or pa-IN pl pt pt-BR ro ru rw si "
    "sk sl sr ss st sv szl ta te tg th tn tr ts ug uk uz ve vi xh za zh-CN zh-TW zu".split()
)

_PARAGRAPH_ID = re.compile(r"^(par|hd)_id")
_PARAGRAPH_TAGS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6"})
_CODE_CLASSES = frozenset({"code", "codeintable", "smathcode", "bascode", "pycode", "sqlcode"})
_VOID_TAGS = frozenset({"br", "img", "input", "meta", "link", "hr", "wbr", "source", "col", "area", "base"})
# "開く(~O)", "Open (_O)": a CJK-style accelerator suffix goes whole; then single ~ marks and _ before a letter.
_ACCELERATOR_SUFFIX = re.compile(r"\s*[(（][~_&][A-Za-z0-9][)）]")
_ACCELERATOR = re.compile(r"~|(?<![A-Za-z0-9_])_(?=[^\W_])")


def locale_of(code: str) -> str:
    return LOCALES.get(code, code)


def help_package(locale: str) -> str:
    return f"libreoffice-help-{locale.lower()}"


def ui_package(locale: str) -> str:
    return f"libreoffice-l10n-{locale.lower()}"


class HelpPage(HTMLParser):
    """The paragraphs of one help page: ``{id: text}`` for every ``p``/``h1``…``h6`` whose id is a paragraph id."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: dict[str, str] = {}
        self._stack: list[tuple[str, bool]] = []  # (tag, skipped: hidden or code, with what is inside)
        self._current: str | None = None  # the paragraph being read
        self._depth = 0  # stack depth at which it started
        self._parts: list[str] = []

    def _skipping(self) -> bool:
        return any(skipped for _, skipped in self._stack)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID_TAGS:
            if tag == "br" and self._current is not None:
                self._parts.append(" ")
            return
        attributes = dict(attrs)
        ident = attributes.get("id") or ""
        classes = set((attributes.get("class") or "").split())
        # Inline switches hold every platform's variant hidden; the page script reveals one: keep the default's.
        hidden = "hidden" in attributes and not ident.startswith("default")
        skipped = hidden or bool(classes & _CODE_CLASSES)
        if (
            self._current is None
            and tag in _PARAGRAPH_TAGS
            and _PARAGRAPH_ID.match(ident)
            and not self._skipping()
            and not skipped
        ):
            self._current, self._depth, self._parts = ident, len(self._stack), []
        self._stack.append((tag, skipped))

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID_TAGS:
            return
        # Close up to the matching tag (help pages are well formed; this tolerates a stray end tag).
        for i in range(len(self._stack) - 1, -1, -1):
            if self._stack[i][0] == tag:
                del self._stack[i:]
                break
        else:
            return
        if self._current is not None and len(self._stack) <= self._depth:
            text = normalise("".join(self._parts))
            if text:
                self.paragraphs.setdefault(self._current, text)
            self._current = None

    def handle_data(self, data: str) -> None:
        if self._current is not None and not self._skipping():
            self._parts.append(data)


def help_paragraphs(html: str) -> dict[str, str]:
    page = HelpPage()
    page.feed(html)
    page.close()
    return page.paragraphs


def _missing_packages(
    codes: Sequence[str], root: Path, known: frozenset[str], package, kind: str, subdir: str = ""
) -> None:
    missing = [
        locale_of(c)
        for c in codes
        if locale_of(c) in known
        and not (root / (locale_of(c).replace("-", "_") if kind == "ui" else locale_of(c)) / subdir).is_dir()
    ]
    if missing:
        names = " ".join(package(m) for m in missing)
        raise ConfigError(
            [
                f"LibreOffice's {'help' if kind == 'help' else 'interface translations'} for "
                f"{', '.join(missing)} is not installed under {root}: apt-get install {names}"
            ],
            "corpus source",
        )


def _pages(root: Path) -> Iterator[Path]:
    yield from sorted((root / "text").rglob("*.html"))


def help_segments(codes: Sequence[str], max_chars: int = 160, root: Path = HELP_ROOT) -> tuple[SegmentTable, str]:
    """Paragraphs aligned by (page, id). A language's paragraph equal to the English one (left untranslated)
    is dropped when it has more than three words."""
    _missing_packages(codes, root, HELP_LOCALES, help_package, "help")
    table: SegmentTable = {}
    languages = [c for c in codes if (root / locale_of(c) / "text").is_dir()]
    english = "en" if "en" in languages else None
    for code in sorted(languages, key=lambda c: c != english):  # English first: the others compare with it
        base = root / locale_of(code)
        for page in _pages(base):
            relative = page.relative_to(base).as_posix()
            for ident, text in help_paragraphs(page.read_text(encoding="utf-8", errors="replace")).items():
                if len(text) > max_chars:
                    continue
                key = (HELP_KEY, relative, ident)
                if code != english and english is not None:
                    same = table.get(key, {}).get(english)
                    if same == text and len(text.split()) > 3:
                        continue
                table.setdefault(key, {})[code] = text
    return table, f"LibreOffice help ({_version(root, languages)}) for {', '.join(languages) or 'no language'}"


def strip_accelerators(text: str) -> str:
    return _ACCELERATOR.sub("", _ACCELERATOR_SUFFIX.sub("", text))


def ui_segments(codes: Sequence[str], max_chars: int = 160, root: Path = UI_ROOT) -> tuple[SegmentTable, str]:
    """Interface strings keyed by their English text (the msgid, accelerators removed); the first catalog in
    path order wins where one English text has several translations."""
    _missing_packages(codes, root, UI_LOCALES, ui_package, "ui")
    table: SegmentTable = {}
    found = []
    for code in codes:
        if code == "en":
            continue
        catalogs = sorted((root / locale_of(code).replace("-", "_") / "LC_MESSAGES").glob("*.mo"))
        if catalogs:
            found.append(code)
        for mo in catalogs:
            with mo.open("rb") as f:
                catalog = gettext.GNUTranslations(f)._catalog  # type: ignore[attr-defined]
            for msgid, text in catalog.items():
                if not isinstance(msgid, str) or not msgid or not isinstance(text, str) or not text.strip():
                    continue
                source = normalise(strip_accelerators(msgid.split("\x04")[-1]))  # drop a msgctxt prefix
                target = normalise(strip_accelerators(text))
                if not source or not target or len(source) > max_chars or len(target) > max_chars:
                    continue
                entry = table.setdefault((UI_KEY, source), {"en": source})
                entry.setdefault(code, target)
    if "en" not in codes:
        for entry in table.values():
            entry.pop("en", None)
    return table, f"LibreOffice interface catalogs ({_version(root, found)}) for {', '.join(found) or 'no language'}"


def _version(root: Path, codes: Sequence[str]) -> str:
    """The Debian package version of the first installed language, when dpkg knows it."""
    status = Path("/var/lib/dpkg/status")
    installed = str(root).startswith(("/usr/share/libreoffice", "/usr/lib/libreoffice"))
    if not codes or not status.is_file() or not installed:
        return "files under " + str(root)
    package = (help_package if "help" in str(root) else ui_package)(locale_of(codes[0]))
    match = re.search(
        rf"^Package: {re.escape(package)}\n(?:[^\n]+\n)*?Version: (\S+)",
        status.read_text(encoding="utf-8", errors="replace"),
        re.M,
    )
    return f"Debian {match.group(1)}" if match else "files under " + str(root)
