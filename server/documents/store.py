"""Translated files waiting to be downloaded: unguessable names, a fixed set of extensions, an expiry.

A name is 32 URL-safe random characters plus the extension; ``get`` accepts nothing else, so no client
string reaches the file system. Files older than ``ttl_s`` are deleted at the next save or download, and the
oldest go first when the files together would exceed ``max_bytes``.

Everything the store knows is in its directory (each file beside ``<name>.meta``: its download name and media
type; its age is the file's modification time), so that the front-end processes of ``--workers`` share one
store: a file translated through one is downloaded through any. Files appear whole (written aside, then
renamed) and any process may delete an expired one.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.documents import FORMATS

NAME = re.compile(r"^[A-Za-z0-9_-]{32}\.(" + "|".join(sorted({f.extension for f in FORMATS.values()})) + ")$")
META = ".meta"  # "<name>.meta": the metadata (JSON) of <name>; no format has this extension


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

    def save(self, data: bytes, extension: str, download_name: str, media_type: str) -> str:
        """Store ``data``; returns its name (the only handle to it)."""
        self.expire(room_for=len(data))
        name = f"{secrets.token_urlsafe(24)}.{extension}"
        assert NAME.match(name)
        meta = {"download_name": download_name, "media_type": media_type}
        self._write(name, data)
        self._write(name + META, json.dumps(meta).encode())  # last: a file is listed once it is whole
        return name

    def get(self, name: str) -> Stored | None:
        """The stored file, or None: a name of another form, unknown, or expired."""
        self.expire()
        if not NAME.match(name):
            return None
        meta = self._meta(name)
        path = self.directory / name
        if meta is None or not path.is_file():
            return None
        return Stored(path, meta["download_name"], meta["media_type"])

    def expire(self, room_for: int = 0) -> None:
        """Delete files past their time, then the oldest until ``room_for`` more bytes fit under ``max_bytes``."""
        now = time.time()
        kept: list[tuple[float, str, int]] = []  # (written, name, size)
        for name in self._names():
            try:
                stat = (self.directory / name).stat()
            except FileNotFoundError:  # deleted by another process meanwhile, or its metadata alone is left
                (self.directory / (name + META)).unlink(missing_ok=True)
                continue
            if now - stat.st_mtime > self.ttl_s:
                self._delete(name)
            else:
                kept.append((stat.st_mtime, name, stat.st_size))
        total = sum(size for *_, size in kept)
        for _, name, size in sorted(kept):
            if total + room_for <= self.max_bytes:
                break
            self._delete(name)
            total -= size

    def __len__(self) -> int:
        return sum(self._meta(name) is not None for name in self._names())

    def _names(self) -> list[str]:
        return [p.name[: -len(META)] for p in self.directory.glob("*" + META) if NAME.match(p.name[: -len(META)])]

    def _meta(self, name: str) -> dict[str, Any] | None:
        try:
            return json.loads((self.directory / (name + META)).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None

    def _write(self, name: str, data: bytes) -> None:
        fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(temporary, self.directory / name)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def _delete(self, name: str) -> None:
        (self.directory / (name + META)).unlink(missing_ok=True)  # first: unlisted, then gone
        (self.directory / name).unlink(missing_ok=True)
