"""Placeholders: the parts of software text a translation must keep exactly as they are.

Format directives (printf, Python's ``%(name)s`` and ``{name}``), shell and environment variables, XML/HTML tags
inside a string, character entities, URLs, e-mail addresses and file paths. ``find`` lists a text's
placeholders; the front end turns each into a decoding constraint (the engine must emit it), and ``intact``
checks a translation afterwards: the same placeholders, as many times each, and the directives whose meaning
depends on their order (``%s``, ``%d``, ``{}``) in the same order. A translation that fails the check is not
shipped (the sentence is left in the source language and reported).

Which syntaxes a text uses: a gettext message says so in its flags (``c-format``, ``python-format``,
``python-brace-format``, ...; ``syntaxes_for_flags``); any other text is read with ``AUTO``, which recognises
printf only in its unambiguous forms (no space flag, not glued to a following letter: ``50% off`` and
``100%done`` are prose).

Keyboard accelerators (``&File``, ``_File``, LibreOffice's ``~File``) are not placeholders: the marker is taken
out before translation and put back on the same letter of the translation, or its first letter
(``split_accelerator`` / ``restore_accelerator``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

PRINTF = "printf"  # C/C++/Objective-C, shell printf, PHP, ...: %s %1$s %'d %-10.2f %% %lu %zd
PYTHON = "python"  # %(name)s and printf's forms
BRACE = "brace"  # {name} {0} {0:>8} {} (Python str.format, C#, Java MessageFormat), {{name}} (templates)
SHELL = "shell"  # $VAR ${VAR} %VAR%
RUBY = "ruby"  # %{name} %<count>d (Ruby's format, Rails i18n)
NESTING = "nesting"  # i18next's $t(key) and $t(key, {"count": 2})
MARKUP = "markup"  # <b>, </a>, <br/>, <x id="1"/>
ENTITY = "entity"  # &amp; &#169; &#x2014;
URL = "url"
EMAIL = "email"
PATH = "path"  # /usr/share/doc, ~/.config/app, C:\Program Files\App
ICU_NUMBER = "icu_number"  # '#' in a branch of an ICU plural (server.text.icu)
ICU_QUOTED = "icu_quoted"  # ICU's quoted literal text: '{' '}' '#'

LENGTH = r"(?:hh|h|ll|l|L|q|j|z|Z|t|I64|I32|I)?"
CONVERSIONS = "diouxXeEfFgGaAcspnCS@"  # %@: an Objective-C object (Apple .strings)
PATTERNS: dict[str, str] = {
    PRINTF: r"%(?:%|(?:\d+\$)?[-+ #0']*(?:\d+|\*(?:\d+\$)?)?(?:\.(?:\d+|\*(?:\d+\$)?))?"
    + LENGTH
    + f"[{CONVERSIONS}]|<PRI[diouxX](?:8|16|32|64|MAX|PTR)>)",
    PYTHON: r"%\([^()\s]+\)[-+ #0]*(?:\d+|\*)?(?:\.(?:\d+|\*))?[diouxXeEfFgGcrsa%]",
    BRACE: r"\{\{\s*[\w.]+\s*\}\}|(?<!\{)\{(?:[A-Za-z_][\w.]*(?:\[[^\]{}]*\])*|\d+)?(?:![rsa])?(?::[^{}\s]*)?\}(?!\})",
    SHELL: r"\$\{[A-Za-z_]\w*\}|\$[A-Za-z_]\w*|%[A-Za-z_]\w*%",
    RUBY: r"%\{[A-Za-z_]\w*\}|%<[A-Za-z_]\w*>[-+ #0]*\d*(?:\.\d+)?[bBdiouxXeEfgGaAcps]",
    NESTING: r"\$t\([^()]*(?:\([^()]*\)[^()]*)*\)",
    MARKUP: r"</?[A-Za-z][\w:.-]*(?:\s+[\w:.-]+(?:\s*=\s*(?:\"[^\"<>]*\"|'[^'<>]*'|[^\s<>\"']+))?)*\s*/?>",
    ENTITY: r"&(?:[A-Za-z][A-Za-z0-9]{1,31}|#\d{1,7}|#[xX][0-9A-Fa-f]{1,6});",
    URL: r"\b(?:https?|ftp|file)://[^\s<>\"'{}]*[^\s<>\"'{}.,;:!?)\]]|\bwww\.[\w-]+(?:\.[\w-]+)+(?:/[^\s<>\"'{}]*"
    r"[^\s<>\"'{}.,;:!?)\]])?",
    EMAIL: r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b",
    PATH: r"(?<![\w/.~$%{])(?:~|\.{1,2})?/(?:[\w.+-]+/)*[\w+-](?:[\w.+-]*[\w+-])?/?(?![\w/])"
    r"|\b[A-Za-z]:\\(?:[\w .+-]+\\)*[\w+-](?:[\w.+-]*[\w+-])?",
    ICU_QUOTED: r"'[{}#][^']*'",
    ICU_NUMBER: r"#",
}
# printf in text that does not declare it: no space flag, no ' flag, and not followed by a letter or digit.
AUTO_PRINTF = (
    r"%(?:%(?![A-Za-z0-9])|(?:\d+\$)?[-+#0]*(?:\d+|\*)?(?:\.(?:\d+|\*))?" + LENGTH + f"[{CONVERSIONS}](?![A-Za-z0-9]))"
)
# Earlier kinds win where two overlap (a URL's %20 is not a directive; a path inside a URL is the URL's).
ORDER = (ICU_QUOTED, URL, EMAIL, MARKUP, ENTITY, RUBY, PYTHON, PRINTF, BRACE, NESTING, SHELL, PATH, ICU_NUMBER)
AUTO = frozenset({PRINTF, PYTHON, BRACE, SHELL, RUBY, NESTING, MARKUP, ENTITY, URL, EMAIL, PATH})

# gettext's format flags (``#, c-format`` ...) and the syntaxes they mean; the kinds every text has too.
FLAG_SYNTAXES: dict[str, frozenset[str]] = {
    "c-format": frozenset({PRINTF}),
    "objc-format": frozenset({PRINTF}),
    "sh-format": frozenset({SHELL}),
    "python-format": frozenset({PYTHON, PRINTF}),
    "python-brace-format": frozenset({BRACE}),
    "php-format": frozenset({PRINTF}),
    "gcc-internal-format": frozenset({PRINTF}),
    "qt-format": frozenset(),
    "kde-format": frozenset(),
    "java-format": frozenset({BRACE}),
    "csharp-format": frozenset({BRACE}),
    "perl-brace-format": frozenset({BRACE}),
}
ALWAYS = frozenset({MARKUP, ENTITY, URL, EMAIL, PATH})
QT_ARGUMENT = r"%L?\d{1,2}|%L?n"  # Qt/KDE %1 %L2, and %n: the count of a plural message


def _compile(syntaxes: frozenset[str], strict_printf: bool, qt: bool) -> re.Pattern[str]:
    parts = []
    if qt:
        parts.append(f"(?P<qt>{QT_ARGUMENT})")
    for kind in ORDER:
        if kind in syntaxes:
            pattern = PATTERNS[kind] if (kind != PRINTF or strict_printf) else AUTO_PRINTF
            parts.append(f"(?P<{kind}>{pattern})")
    return re.compile("|".join(parts)) if parts else re.compile(r"(?!x)x")


class Syntax:
    """The placeholder syntaxes of one text (hashable: texts carry it through the pipeline)."""

    __slots__ = ("kinds", "declared", "qt", "_pattern")

    def __init__(self, kinds: Iterable[str] = AUTO, declared: bool = False, qt: bool = False) -> None:
        """declared: the text says it uses printf (a gettext flag), so every printf form counts."""
        self.kinds = frozenset(kinds)
        self.declared = declared
        self.qt = qt
        self._pattern = _compile(self.kinds, declared, qt)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Syntax) and (self.kinds, self.declared, self.qt) == (
            other.kinds,
            other.declared,
            other.qt,
        )

    def __hash__(self) -> int:
        return hash((self.kinds, self.declared, self.qt))

    def __repr__(self) -> str:
        return f"Syntax({sorted(self.kinds)}, declared={self.declared}, qt={self.qt})"

    def find(self, text: str) -> list[tuple[str, str]]:
        """(kind, placeholder) of each placeholder of ``text``, in order."""
        return [(m.lastgroup or "", m.group()) for m in self._pattern.finditer(text)]

    def for_icu(self, numbered: bool) -> Syntax:
        """This syntax inside an ICU message: its quoted literals too, and ``#`` in a plural's branch."""
        return Syntax(self.kinds | {ICU_QUOTED} | ({ICU_NUMBER} if numbered else set()), self.declared, self.qt)

    def placeholders(self, text: str) -> list[str]:
        return [p for _, p in self.find(text)]

    def intact(self, source: str, translation: str) -> bool:
        """Whether ``translation`` keeps ``source``'s placeholders: each as many times (as written: one glued to
        the next word, ``{name}s``, is still there), no other placeholder, and those whose meaning is their
        position (unnumbered printf and Python directives, ``{}``) in the same order."""
        before = self.find(source)
        kinds = dict((p, kind) for kind, p in before)
        counts = Counter(p for _, p in before)
        rest, seen = translation, []
        for placeholder in sorted(counts, key=len, reverse=True):  # "%1$s" before "%s": containment
            starts = [m.start() for m in re.finditer(re.escape(placeholder), rest)]
            if len(starts) != counts[placeholder]:
                return False
            seen += [(start, placeholder) for start in starts]
            rest = rest.replace(placeholder, "x" * len(placeholder))  # a letter: nothing new begins or ends here
        if self.find(rest):  # a placeholder the source does not have
            return False
        return _ordered(before) == _ordered([(kinds[p], p) for _, p in sorted(seen)])


def _ordered(found: list[tuple[str, str]]) -> list[str]:
    return [
        p
        for kind, p in found
        if (kind in (PRINTF, PYTHON) and p != "%%" and "$" not in p and not p.startswith("%("))
        or (kind == BRACE and re.fullmatch(r"\{(?:![rsa])?(?::[^{}]*)?\}", p))
    ]


DEFAULT = Syntax()


def syntax_for_flags(flags: Iterable[str]) -> Syntax:
    """The syntax of a gettext message with these flags: its declared formats (``no-c-format`` and the like
    turn one off) plus tags, entities, URLs, e-mail addresses and paths; no format flag: ``DEFAULT``."""
    flags = {f.strip() for f in flags}
    declared = {f for f in flags if f in FLAG_SYNTAXES}
    if not declared and not any(f.startswith("no-") and f[3:] in FLAG_SYNTAXES for f in flags):
        return DEFAULT
    kinds = set(ALWAYS)
    for flag in declared:
        kinds |= FLAG_SYNTAXES[flag]
    return Syntax(kinds, declared=bool(kinds & {PRINTF, PYTHON}), qt=bool(declared & {"qt-format", "kde-format"}))


# ---------------------------------------------------------------------------------------------- accelerators
ACCELERATOR = re.compile(r"(?<![^\s(\[\"'/])([~&_])(?=[^\W\d_])")
MAX_ACCELERATED = 120  # characters: accelerators mark menu items, buttons and labels, not sentences


def split_accelerator(text: str) -> tuple[str, str | None, str | None]:
    """``(text without the marker, marker, letter)`` when ``text`` has exactly one accelerator marker (``~``,
    ``&`` or ``_`` at the start of a word, before a letter); else ``(text, None, None)``. ``&amp;``-style
    entities and doubled markers (``&&``) are not accelerators."""
    found = [
        m
        for m in ACCELERATOR.finditer(text)
        if not (m.group(1) == "&" and re.match(PATTERNS[ENTITY], text[m.start() :]))
    ]
    if len(found) != 1 or len(text) > MAX_ACCELERATED:
        return text, None, None
    m = found[0]
    return text[: m.start()] + text[m.end() :], m.group(1), text[m.end()]


def restore_accelerator(translation: str, marker: str | None, letter: str | None) -> str:
    """Put ``marker`` back: before the same letter at the start of a word, else before that letter anywhere,
    else before the first letter."""
    if marker is None or letter is None:
        return translation
    for pattern in (
        rf"(?<!\w)(?={re.escape(letter)})",
        rf"(?<!\w)(?=(?i:{re.escape(letter)}))",
        rf"(?=(?i:{re.escape(letter)}))",
        r"(?=[^\W\d_])",
    ):
        m = re.search(pattern, translation)
        if m:
            return translation[: m.start()] + marker + translation[m.start() :]
    return marker + translation


# ------------------------------------------------------------------------------------------------- masking
MASK_BASE, MASK_LIMIT = 0xE000, 0xF8FF  # Unicode's private use area: one character stands for a placeholder


def mask(text: str, syntax: Syntax) -> tuple[str, list[str]]:
    """``text`` with each placeholder replaced by one private-use character (so that cutting the text into
    sentences never cuts inside one: a URL's ``:`` or ``.`` is not punctuation) and the placeholders, in mask
    order. A text that already holds private-use characters, or more placeholders than there are of them, is
    left as it is."""
    found = list(syntax._pattern.finditer(text))
    if not found or len(found) > MASK_LIMIT - MASK_BASE or any(MASK_BASE <= ord(c) <= MASK_LIMIT for c in text):
        return text, []
    parts: list[str] = []
    table: list[str] = []
    start = 0
    for m in found:
        parts += [text[start : m.start()], chr(MASK_BASE + len(table))]
        table.append(m.group())
        start = m.end()
    parts.append(text[start:])
    return "".join(parts), table


def unmask(text: str, table: list[str]) -> str:
    if not table:
        return text
    return re.sub("[\ue000-\uf8ff]", lambda m: table[ord(m.group()) - MASK_BASE], text)
