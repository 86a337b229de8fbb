"""Translated files waiting to be downloaded: unguessable names, a fixed set of extensions, an expiry.

A name is 32 URL-safe random characters plus the extension; ``path`` accepts nothing else, so no client
string reaches the file system. Files older than ``ttl_s`` are deleted at the next save or download.
"""

from __future__ import annotations

import re
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

NAME = re.compile(r"^[A-Za-z0-9_-]{32}\.(txt|html|docx|po|pot|srt)$")


@dataclass(frozen=True)
class Stored:
    path: Path
    download_name: str  # what the browser saves it as
    media_type: str


class FileStore:
    def __init__(self, directory: Path | None, ttl_s: float) -> None:
        self.directory = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="lslo-files-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ttl_s = ttl_s
        self._meta: dict[str, tuple[float, str, str]] = {}  # name -> (created, download name, media type)
        self._lock = threading.Lock()

    def save(self, data: bytes, extension: str, download_name: str, media_type: str) -> str:
        """Store ``data``; returns its name (the only handle to it)."""
        self.expire()
        name = f"{secrets.token_urlsafe(24)}.{extension}"
        assert NAME.match(name)
        (self.directory / name).write_bytes(data)
        with self._lock:
            self._meta[name] = (time.monotonic(), download_name, media_type)
        return name

    def get(self, name: str) -> Stored | None:
        """The stored file, or None: a name of another form, unknown, or expired."""
        self.expire()
        if not NAME.match(name):
            return None
        with self._lock:
            meta = self._meta.get(name)
        path = self.directory / name
        if meta is None or not path.is_file():
            return None
        return Stored(path, meta[1], meta[2])

    def expire(self) -> None:
        now = time.monotonic()
        with self._lock:
            old = [n for n, (created, _, _) in self._meta.items() if now - created > self.ttl_s]
            for name in old:
                del self._meta[name]
        for name in old:
            (self.directory / name).unlink(missing_ok=True)

    def __len__(self) -> int:
        with self._lock:
            return len(self._meta)
