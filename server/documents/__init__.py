"""Files in, files out: the formats ``POST /translate_file`` reads, and where translated files wait."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePath

from server.documents.formats import CatalogDocument, DocumentError, SubtitleDocument, TextDocument, decode_text
from server.documents.word import WordDocument

__all__ = ["FORMATS", "DocumentError", "FileFormat", "translate_document"]


@dataclass(frozen=True)
class FileFormat:
    extension: str  # as stored, without the dot
    media_type: str


FORMATS: dict[str, FileFormat] = {
    ".txt": FileFormat("txt", "text/plain; charset=utf-8"),
    ".html": FileFormat("html", "text/html; charset=utf-8"),
    ".htm": FileFormat("html", "text/html; charset=utf-8"),
    ".docx": FileFormat("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ".po": FileFormat("po", "text/x-gettext-translation; charset=utf-8"),
    ".pot": FileFormat("po", "text/x-gettext-translation; charset=utf-8"),
    ".srt": FileFormat("srt", "application/x-subrip; charset=utf-8"),
}

Texts = Callable[[Sequence[str]], Awaitable[list[str]]]  # translates plain texts, one translation each
Html = Callable[[str], Awaitable[str]]  # translates one HTML document


def file_format(filename: str) -> tuple[str, FileFormat]:
    suffix = PurePath(filename).suffix.lower()
    if suffix not in FORMATS:
        raise DocumentError(f"files of type {suffix or '(no extension)'!r} are not translated; supported: "
                            f"{', '.join(FORMATS)}")
    return suffix, FORMATS[suffix]


def document_text(suffix: str, data: bytes) -> str:
    """Some of the file's text, for language detection."""
    return "\n".join(_reader(suffix, data).texts)[:2000] if suffix not in (".html", ".htm") else \
        decode_text(data, suffix)[:20000]


def _reader(suffix: str, data: bytes):  # noqa: ANN202 - one of the document classes
    if suffix == ".txt":
        return TextDocument.read(data)
    if suffix == ".srt":
        return SubtitleDocument.read(data)
    if suffix in (".po", ".pot"):
        return CatalogDocument.read(data)
    return WordDocument.read(data)


async def translate_document(suffix: str, data: bytes, texts: Texts, html: Html, target: str) -> bytes:
    """The translated file. ``DocumentError`` for a file that is not what its extension says."""
    if not data:
        raise DocumentError("the file is empty")
    if suffix in (".html", ".htm"):
        return (await html(decode_text(data, suffix))).encode("utf-8")
    document = _reader(suffix, data)
    translations = await texts(document.texts)
    if isinstance(document, CatalogDocument):
        return document.render(translations, target)
    return document.render(translations)
