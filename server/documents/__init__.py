"""Files in, files out: the formats ``POST /translate_file`` reads, and where translated files wait.

``read_document`` parses a file into a document: its ``texts`` to translate (in order), how many
``characters`` of text that is, a ``sample`` for language detection, and ``render(translations, target)`` that
writes the translated file. Reading and rendering are synchronous (call them off the event loop).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath

from server.documents.catalog import CatalogDocument
from server.documents.formats import DocumentError, HtmlDocument, SubtitleDocument, TextDocument
from server.documents.word import WordDocument

__all__ = ["FORMATS", "Document", "DocumentError", "FileFormat", "file_format", "read_document"]

Document = TextDocument | HtmlDocument | SubtitleDocument | CatalogDocument | WordDocument


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
    ".pot": FileFormat("pot", "text/x-gettext-translation; charset=utf-8"),
    ".srt": FileFormat("srt", "application/x-subrip; charset=utf-8"),
}
READERS = {".txt": TextDocument, ".html": HtmlDocument, ".htm": HtmlDocument, ".docx": WordDocument,
           ".po": CatalogDocument, ".pot": CatalogDocument, ".srt": SubtitleDocument}


def file_format(filename: str) -> tuple[str, FileFormat]:
    suffix = PurePath(filename).suffix.lower()
    if suffix not in FORMATS:
        raise DocumentError(f"files of type {suffix or '(no extension)'!r} are not translated; supported: "
                            f"{', '.join(FORMATS)}")
    return suffix, FORMATS[suffix]


def read_document(suffix: str, data: bytes) -> Document:
    """The document in ``data``; ``DocumentError`` for an empty file or one that is not what ``suffix`` says."""
    if not data:
        raise DocumentError("the file is empty")
    return READERS[suffix].read(data)  # type: ignore[attr-defined]
