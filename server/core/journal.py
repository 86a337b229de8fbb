"""The adapter changes a core has made since the service started, on disk, so that a core started again after a
crash serves exactly the adapters its predecessor served (the bundle it loads at start, then these changes in
order). Files are written by the core only, under names it makes (``<n>.safetensors``), from adapter files it
has parsed and installed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lslo.io.adapter_file import atomic_write

INDEX = "journal.json"


class Journal:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        index = root / INDEX
        self.entries: dict[str, dict[str, Any] | None] = (
            json.loads(index.read_text(encoding="utf-8")) if index.is_file() else {}
        )
        self._next = 1 + max((int(Path(e["file"]).stem) for e in self.entries.values() if e), default=0)

    def installed(self, code: str, data: bytes, source: str, tier: str | None) -> None:
        name = f"{self._next}.safetensors"
        self._next += 1
        atomic_write(self.root / name, data)
        previous = self.entries.pop(code, None)
        self.entries[code] = {"file": name, "source": source, "tier": tier}  # moved to the end: replay order
        self._save()
        if previous:
            (self.root / previous["file"]).unlink(missing_ok=True)

    def removed(self, code: str) -> None:
        previous = self.entries.pop(code, None)
        self.entries[code] = None
        self._save()
        if previous:
            (self.root / previous["file"]).unlink(missing_ok=True)

    def replay(self) -> list[tuple[str, bytes | None, str, str | None]]:
        """(code, file bytes or None for a removal, source, tier), in the order the changes were made."""
        out: list[tuple[str, bytes | None, str, str | None]] = []
        for code, entry in self.entries.items():
            if entry is None:
                out.append((code, None, "", None))
            else:
                out.append((code, (self.root / entry["file"]).read_bytes(), entry["source"], entry["tier"]))
        return out

    def _save(self) -> None:
        atomic_write(self.root / INDEX, json.dumps(self.entries, indent=1).encode("utf-8"))
