"""gettext catalogs (.po, .pot): every message without any translation gets a machine translation, marked
``fuzzy`` for review (gettext's convention), plural forms included. A message's format flags (``c-format``,
``python-format``, ...) say which placeholders it has; a message whose translation could not keep them is left
untranslated with a translator comment saying so, so that ``msgfmt -c`` accepts every file written here.
Messages with a translation (fuzzy ones too: a translator's draft), comments, flags, references, contexts and
obsolete entries stay. The result is
written in UTF-8 with the header saying so, its ``Language`` set to the target and, where the source had no
real plural rule (a template's ``nplurals=INTEGER``), the target's rule from CLDR (babel)."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import polib

from server.documents.formats import BOM, DocumentError, Measured, decode_text
from server.text.placeholders import Syntax, syntax_for_flags

LOST_NOTE = "not machine-translated: no translation kept all of this message's placeholders"
CONFIDENCE_NOTE = re.compile(r"^machine translation, confidence [0-9.]+$|^not machine-translated: confidence .*$", re.M)


def confidence_note(confidence: float, threshold: float = 0.0) -> str:
    """The translator comment saying how sure the model was (and, under ``threshold``, why nothing is written)."""
    if confidence < threshold:
        return f"not machine-translated: confidence {confidence:.2f} is under the threshold {threshold:.2f}"
    return f"machine translation, confidence {confidence:.2f}"


def _noted(comment: str, note: str) -> str:
    """``comment`` with ``note`` added, replacing an earlier confidence note (a catalog translated again)."""
    kept = "\n".join(line for line in CONFIDENCE_NOTE.sub("", comment).split("\n") if line.strip())
    return f"{kept}\n{note}".strip() if note not in kept else kept


MAX_PLURALS = 6  # the most plural forms any language has (Arabic)
CHARSET = re.compile(rb"charset=([A-Za-z0-9_.:-]+)")


def plural_forms(language: str) -> tuple[int, str] | None:
    """(nplurals, plural expression) of ``language`` from CLDR, when babel knows it."""
    try:
        from babel import Locale, UnknownLocaleError
        from babel.messages.plurals import get_plural
    except ImportError:
        return None
    try:
        plural = get_plural(Locale.parse(language.replace("-", "_")))
    except (UnknownLocaleError, ValueError, TypeError):
        return None
    return plural.num_plurals, plural.plural_expr


@dataclass
class CatalogDocument(Measured):
    catalog: polib.POFile
    todo: list[polib.POEntry]

    @classmethod
    def read(cls, data: bytes) -> CatalogDocument:
        declared = CHARSET.search(data[:4096])
        encoding = declared.group(1).decode("ascii").lower() if declared else "utf-8"
        if encoding in ("charset", "utf8"):  # a template's placeholder
            encoding = "utf-8"
        text = decode_text(data, ".po", encoding).removeprefix(BOM)
        if not text.strip():
            raise DocumentError("not a .po file: it is empty")
        # polib takes either a path or the content and opens whatever exists as a path: it only ever gets the
        # path of a file written here, so no uploaded text can name a file on this machine.
        with tempfile.NamedTemporaryFile("w", suffix=".po", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            try:
                catalog = polib.pofile(f.name, encoding="utf-8")
            except (OSError, ValueError, UnicodeDecodeError) as err:
                raise DocumentError(f"not a valid .po file: {str(err).replace(' ' + f.name, '')}") from None
        if not catalog and not catalog.metadata:
            raise DocumentError("not a .po file: no messages and no header in it")
        todo = [e for e in catalog if not e.obsolete and e.msgid and not e.msgstr and not any(e.msgstr_plural.values())]
        return cls(catalog, todo)

    @property
    def texts(self) -> list[str]:
        return [
            t
            for entry in self.todo
            for t in ((entry.msgid, entry.msgid_plural) if entry.msgid_plural else (entry.msgid,))
        ]

    @property
    def syntaxes(self) -> list[Syntax]:
        return [syntax_for_flags(entry.flags) for entry in self.todo for _ in range(2 if entry.msgid_plural else 1)]

    def plurals(self, target: str) -> int:
        """How many plural forms to write; sets the header's rule from CLDR where the source has none."""
        header = self.catalog.metadata.get("Plural-Forms", "")
        match = re.search(r"nplurals\s*=\s*(\d+)", header)
        if match is None:
            known = plural_forms(target)
            if known is None:
                return 2
            self.catalog.metadata["Plural-Forms"] = f"nplurals={known[0]}; plural={known[1]};"
            return known[0]
        count = int(match.group(1))
        if not 1 <= count <= MAX_PLURALS:
            raise DocumentError(f"Plural-Forms says nplurals={count}; a language has 1 to {MAX_PLURALS}")
        return count

    def render(
        self,
        translations: Sequence[str],
        target: str = "",
        untranslated: Collection[int] = (),
        confidences: Sequence[float | None] = (),
        threshold: float = 0.0,
    ) -> bytes:
        """untranslated: indices (into ``texts``) of texts whose translation lost placeholders: their messages
        stay untranslated, with a translator comment. confidences (per text): each translated message gets a
        translator comment with its lowest; a message under ``threshold`` stays untranslated, saying so."""
        forms = self.plurals(target) if any(e.msgid_plural for e in self.todo) else 0
        it = iter(translations)
        index, lost_texts = 0, set(untranslated)
        for entry in self.todo:
            singular = next(it)
            plural = next(it) if entry.msgid_plural else None
            count = 2 if entry.msgid_plural else 1
            lost = any(i in lost_texts for i in range(index, index + count))
            sure = [c for c in confidences[index : index + count] if c is not None]
            index += count
            if lost:
                entry.tcomment = _noted(entry.tcomment, LOST_NOTE)
                continue
            if sure:
                entry.tcomment = _noted(entry.tcomment, confidence_note(min(sure), threshold))
                if min(sure) < threshold:
                    continue
            if plural is not None:
                # One form (Japanese, Chinese...) covers every count: the plural sentence says it best.
                entry.msgstr_plural = {i: plural if (i > 0 or forms == 1) else singular for i in range(forms)}
            else:
                entry.msgstr = singular
            if "fuzzy" not in entry.flags:
                entry.flags.append("fuzzy")
        self.catalog.metadata["Content-Type"] = "text/plain; charset=UTF-8"
        if target:
            self.catalog.metadata["Language"] = target
        text = str(self.catalog)
        if not self.catalog.header and text.startswith("#\n"):  # polib writes an empty header comment as "#"
            text = text[2:]
        return text.encode("utf-8")
