"""Translated files waiting to be downloaded: unguessable names, a fixed set of extensions, an expiry.

A name is 32 URL-safe random characters plus the extension; ``get`` accepts nothing else, so no client
string reaches the file system. Files older than ``ttl_s`` are deleted at the next save or download, and the
oldest go first when the files together would exceed ``max_bytes``.
"""

from __future__ import annotations

import re
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from server.documents import FORMATS

NAME = re.compile(r"^[A-Za-z0-9_-]{32}\.(" + "|".join(sorted({f.extension for f in FORMATS.values()})) + ")$")


@dataclass(frozen=True)
class Stored:
    path: Path
    download_name: str  # what the browser saves it as
    media_type: str


class FileStore:
    def __init__(self, directory: Path | None, ttl_s: float, max_bytes: int = 2**30) -> None:
        self.directory = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="lslo-files-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ttl_s = ttl_s
        self.max_bytes = max_bytes
        self._meta: dict[str, tuple[float, str, str, int]] = {}  # name -> (created, download name, type, size)
        self._lock = threading.Lock()

    def save(self, data: bytes, extension: str, download_name: str, media_type: str) -> str:
        """Store ``data``; returns its name (the only handle to it)."""
        self.expire(room_for=len(data))
        name = f"{secrets.token_urlsafe(24)}.{extension}"
        assert NAME.match(name)
        (self.directory / name).write_bytes(data)
        with self._lock:
            self._meta[name] = (time.monotonic(), download_name, media_type, len(data))
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

    def expire(self, room_for: int = 0) -> None:
        """Delete files past their time, then the oldest until ``room_for`` more bytes fit under ``max_bytes``."""
        now = time.monotonic()
        with self._lock:
            old = [n for n, (created, *_) in self._meta.items() if now - created > self.ttl_s]
            total = sum(m[3] for n, m in self._meta.items() if n not in old)
            for name, meta in sorted(self._meta.items(), key=lambda item: item[1][0]):
                if total + room_for <= self.max_bytes:
                    break
                if name not in old:
                    old.append(name)
                    total -= meta[3]
            for name in old:
                del self._meta[name]
        for name in old:
            (self.directory / name).unlink(missing_ok=True)

    def __len__(self) -> int:
        with self._lock:
            return len(self._meta)
