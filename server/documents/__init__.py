"""Files in, files out: the formats ``POST /translate_file`` reads, and where translated files wait.

``read_document`` parses a file into a document: its ``texts`` to translate (in order), how many
``characters`` of text that is, a ``sample`` for language detection, and ``render(translations, target)`` that
writes the translated file. Reading and rendering are synchronous (call them off the event loop).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath

from server.documents import toolkit
from server.documents.catalog import CatalogDocument
from server.documents.formats import DocumentError, HtmlDocument, SubtitleDocument, TextDocument, WebVttDocument
from server.documents.markdown import MarkdownDocument
from server.documents.ooxml import PresentationDocument, WorkbookDocument
from server.documents.toolkit import ToolkitDocument
from server.documents.word import WordDocument

__all__ = ["FORMATS", "Document", "DocumentError", "FileFormat", "file_format", "read_document"]

Document = (
    TextDocument
    | HtmlDocument
    | SubtitleDocument
    | WebVttDocument
    | MarkdownDocument
    | CatalogDocument
    | WordDocument
    | ToolkitDocument
    | WorkbookDocument
    | PresentationDocument
)


@dataclass(frozen=True)
class FileFormat:
    extension: str  # as stored, without the dot
    media_type: str


FORMATS: dict[str, FileFormat] = {
    ".txt": FileFormat("txt", "text/plain; charset=utf-8"),
    ".html": FileFormat("html", "text/html; charset=utf-8"),
    ".htm": FileFormat("html", "text/html; charset=utf-8"),
    ".docx": FileFormat("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ".xlsx": FileFormat("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ".pptx": FileFormat("pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
    ".po": FileFormat("po", "text/x-gettext-translation; charset=utf-8"),
    ".pot": FileFormat("pot", "text/x-gettext-translation; charset=utf-8"),
    ".srt": FileFormat("srt", "application/x-subrip; charset=utf-8"),
    ".vtt": FileFormat("vtt", "text/vtt; charset=utf-8"),
    ".md": FileFormat("md", "text/markdown; charset=utf-8"),
    ".xlf": FileFormat("xlf", "application/xliff+xml"),
    ".xliff": FileFormat("xliff", "application/xliff+xml"),
    ".ts": FileFormat("ts", "application/x-linguist+xml"),
    ".properties": FileFormat("properties", "text/x-java-properties"),
    ".strings": FileFormat("strings", "text/plain"),  # UTF-16 or UTF-8, as the source was
    ".xml": FileFormat("xml", "application/xml"),  # Android's strings.xml
    ".json": FileFormat("json", "application/json"),
    ".yml": FileFormat("yml", "application/yaml"),
    ".yaml": FileFormat("yaml", "application/yaml"),
}
READERS: dict[str, Callable[[bytes], Document]] = {
    ".txt": TextDocument.read,
    ".html": HtmlDocument.read,
    ".htm": HtmlDocument.read,
    ".docx": WordDocument.read,
    ".xlsx": WorkbookDocument.read,
    ".pptx": PresentationDocument.read,
    ".po": CatalogDocument.read,
    ".pot": CatalogDocument.read,
    ".srt": SubtitleDocument.read,
    ".vtt": WebVttDocument.read,
    ".md": MarkdownDocument.read,
    ".xlf": toolkit.read_xliff,
    ".xliff": toolkit.read_xliff,
    ".ts": toolkit.read_ts,
    ".properties": toolkit.read_properties,
    ".strings": toolkit.read_strings,
    ".xml": toolkit.read_android,
    ".json": toolkit.read_json,
    ".yml": toolkit.read_yaml,
    ".yaml": toolkit.read_yaml,
}


def file_format(filename: str) -> tuple[str, FileFormat]:
    suffix = PurePath(filename).suffix.lower()
    if suffix not in FORMATS:
        raise DocumentError(
            f"files of type {suffix or '(no extension)'!r} are not translated; supported: {', '.join(FORMATS)}"
        )
    return suffix, FORMATS[suffix]


def read_document(suffix: str, data: bytes) -> Document:
    """The document in ``data``; ``DocumentError`` for an empty file or one that is not what ``suffix`` says."""
    if not data:
        raise DocumentError("the file is empty")
    return READERS[suffix](data)
