"""Stored glossaries, by owner and id: in a directory (shared by the front-end processes of ``--workers`` and by
replicas that mount it) or, without one, in this process's memory.

An owner is an API key (when the service has keys: each key sees its own glossaries) or ``admin``. Ids are
checked against a strict pattern and owners are hashed, so nothing a client sends names a path; files are
written atomically (a temporary file renamed over the old one).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
from pathlib import Path

from server.text.glossary import Glossary, Term
from server.text.glossary_files import GlossaryFile

GLOSSARY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_GLOSSARIES = 100  # per owner


class GlossaryLimit(ValueError):
    """An owner already has ``MAX_GLOSSARIES`` glossaries."""


def owner_of(api_key: str | None) -> str:
    """The owner name of an API key (hashed: a key never reaches the disk), or ``admin``."""
    return "admin" if api_key is None else "key-" + hashlib.sha256(api_key.encode()).hexdigest()[:24]


class GlossaryStore:
    def __init__(self, directory: Path | None, max_glossaries: int = MAX_GLOSSARIES) -> None:
        self.directory = directory
        self.max_glossaries = max_glossaries
        self._memory: dict[tuple[str, str], GlossaryFile] = {}
        self._lock = threading.Lock()
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _path(self, owner: str, glossary_id: str) -> Path:
        assert self.directory is not None and GLOSSARY_ID.match(glossary_id) and re.match(r"^[\w-]+$", owner)
        return self.directory / owner / f"{glossary_id}.json"

    def ids(self, owner: str) -> list[str]:
        if self.directory is None:
            with self._lock:
                return sorted(i for o, i in self._memory if o == owner)
        folder = self.directory / owner
        return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []

    def get(self, owner: str, glossary_id: str) -> GlossaryFile | None:
        if not GLOSSARY_ID.match(glossary_id):
            return None
        if self.directory is None:
            with self._lock:
                return self._memory.get((owner, glossary_id))
        try:
            data = json.loads(self._path(owner, glossary_id).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return GlossaryFile(data["source"], data["target"], Glossary(tuple(Term(s, t) for s, t in data["terms"])))

    def put(self, owner: str, glossary_id: str, glossary: GlossaryFile) -> bool:
        """Store (or replace) it; True when it is new. GlossaryLimit when the owner has too many."""
        existing = self.ids(owner)
        if glossary_id not in existing and len(existing) >= self.max_glossaries:
            raise GlossaryLimit(
                f"{len(existing)} glossaries are stored already; the limit is {self.max_glossaries} (delete one first)"
            )
        if self.directory is None:
            with self._lock:
                self._memory[(owner, glossary_id)] = glossary
            return glossary_id not in existing
        path = self._path(owner, glossary_id)
        path.parent.mkdir(exist_ok=True, mode=0o700)
        body = json.dumps(
            {
                "source": glossary.source,
                "target": glossary.target,
                "terms": [[t.source, t.target] for t in glossary.glossary.terms],
            },
            ensure_ascii=False,
        )
        fd, temporary = tempfile.mkstemp(dir=path.parent, suffix=".part")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(body)
        os.replace(temporary, path)
        return glossary_id not in existing

    def delete(self, owner: str, glossary_id: str) -> bool:
        if not GLOSSARY_ID.match(glossary_id):
            return False
        if self.directory is None:
            with self._lock:
                return self._memory.pop((owner, glossary_id), None) is not None
        try:
            self._path(owner, glossary_id).unlink()
        except FileNotFoundError:
            return False
        return True
