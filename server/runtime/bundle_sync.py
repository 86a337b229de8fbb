"""Following the bundle (``--bundle-poll-s N``): every N seconds, make the served adapters match the bundle's.

The bundle is the source of truth for every replica that serves it. Each poll costs a ``stat`` of the manifest
and of the files while nothing changed; when something did, the manifest is read and each language whose file
is not the one served is read, hashed and parsed (on a worker thread), then installed or removed through
the same checks and the same between-steps swap as an upload — running rows finish under the adapter they began
with. A file is trusted only when its sha256 is the one the manifest records: a file caught half-way through a
write, truncated or corrupted is refused (and shown in ``/adapters``) while the previous adapter keeps serving.
A manifest that is missing or unreadable, or a directory found empty (a volume not mounted?), changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool

from lslo.errors import AdapterFileError
from lslo.io import BUNDLE_MANIFEST, read_manifest
from lslo.io.adapter_file import AdapterFile, parse_language_file
from lslo.io.bundle_store import is_empty_bundle

if TYPE_CHECKING:
    from server.runtime.service import Service

log = logging.getLogger("lslo.server")

StatKey = tuple[int, int, int] | None  # (mtime_ns, size, inode), None for a missing file


def stat_key(path: Path) -> StatKey:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


@dataclass
class Refusal:
    sha256: str  # the manifest's
    reason: str
    key: StatKey  # the file as it was when refused: the same file is not read again


@dataclass
class BundleView:
    """What the last poll saw: ``GET /adapters`` and the metrics show it."""

    revision: int | None = None
    languages: dict[str, str] = field(default_factory=dict)  # code -> the manifest's sha256
    refused: dict[str, Refusal] = field(default_factory=dict)
    error: str | None = None
    checked_at: float = 0.0


@dataclass
class Plan:
    """Changes found by a scan; each with the sha256 served when it was made (None: none), so that a change made
    meanwhile (an upload persisted through this replica) is not undone by an older view of the bundle."""

    install: list[tuple[str, AdapterFile, bytes, str | None, StatKey, str | None]] = field(default_factory=list)
    remove: list[tuple[str, str | None]] = field(default_factory=list)


class BundleSync:
    def __init__(self, service: Service, bundle: Path, interval_s: float) -> None:
        self.service = service
        self.bundle = bundle
        self.interval_s = interval_s
        self.view = BundleView()
        self._keys: tuple[StatKey, dict[str, StatKey]] | None = None  # manifest and files at the last full scan
        self._entries: dict[str, str] = {}  # code -> file name, from the last manifest read
        self._verified: dict[str, tuple[StatKey, str]] = {}  # file name -> (its stat when hashed, its sha256)
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------------------------------ loop
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="bundle-sync")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a failed poll must not end polling; the next one retries
                log.exception("bundle poll failed")
            await asyncio.sleep(self.interval_s)

    async def poll(self) -> None:
        plan = await run_in_threadpool(self.scan)
        manager, metrics = self.service.adapters, self.service.metrics
        for code, adapter, data, tier, key, seen in plan.install:
            action = "replaced" if seen is not None else "added"
            try:  # only if this replica still serves what the scan saw (an upload meanwhile is not undone)
                done = await manager.install(code, data, adapter.path, "bundle", tier, unless_changed_from=seen or "")
            except AdapterFileError as err:
                self.view.refused[code] = Refusal(adapter.sha256, err.reason, key)
                metrics.swaps.labels(action="load", result="refused").inc()
                log.warning("bundle adapter refused", extra={"language": code, "reason": err.reason})
                continue
            if done is not None:
                metrics.swaps.labels(action=action, result="ok").inc()
                log.info("bundle adapter installed", extra={"language": code, "sha256": adapter.sha256})
        for code, seen in plan.remove:
            if await manager.remove(code, unless_changed_from=seen or ""):
                metrics.swaps.labels(action="removed", result="ok").inc()
                log.info("bundle adapter removed", extra={"language": code})
        self.service.show_bundle(self.view)

    # ------------------------------------------------------------------------------------------ scan
    def scan(self) -> Plan:
        """Compare the bundle with what is served (runs on a worker thread: reads, hashes, parses)."""
        view = self.view
        view.checked_at = time.time()
        manifest_key = stat_key(self.bundle / BUNDLE_MANIFEST)
        files = {code: stat_key(self.bundle / name) for code, name in self._entries.items()}
        served = {code: record.sha256 for code, record in dict(self.service.front.adapters).items()}
        expected = {c: s for c, s in view.languages.items() if c not in view.refused}
        if (
            self._keys == (manifest_key, files)
            and set(served) <= set(view.languages)
            and all(served.get(c) == s for c, s in expected.items())
        ):
            return Plan()  # nothing changed on disk, and this replica serves the bundle
        if is_empty_bundle(self.bundle):  # a bundle yet to be written (or a volume not mounted: nothing is removed)
            view.revision, view.languages, self._entries, self._keys = None, {}, {}, (manifest_key, {})
            view.error = "the bundle directory is empty; nothing was changed" if served else None
            return Plan()
        try:
            manifest = read_manifest(self.bundle)
        except (AdapterFileError, OSError) as err:
            view.error = getattr(err, "reason", str(err))
            return Plan()
        view.error = None
        view.revision = manifest.revision
        view.languages = {code: str(entry.get("sha256") or "") for code, entry in manifest.languages.items()}
        self._entries = {code: str(entry["file"]) for code, entry in manifest.languages.items()}
        self._verified = {n: v for n, v in self._verified.items() if n in self._entries.values()}  # files go
        files = {code: stat_key(self.bundle / name) for code, name in self._entries.items()}
        self._keys = (manifest_key, files)
        plan = Plan(remove=[(code, sha) for code, sha in served.items() if code not in manifest.languages])
        for code, entry in manifest.languages.items():
            checked = self._check(code, str(entry["file"]), view.languages[code], files[code], served.get(code))
            if checked is not None:
                plan.install.append((code, *checked, entry.get("tier"), files[code], served.get(code)))
        for code in list(view.refused):
            if code not in manifest.languages:
                del view.refused[code]
        return plan

    def _check(
        self, code: str, name: str, want: str, key: StatKey, served: str | None
    ) -> tuple[AdapterFile, bytes] | None:
        """The bundle's file of ``code`` when it is to be installed; None when it is served already or refused
        (then recorded in the view)."""
        refused = self.view.refused
        earlier = refused.get(code)
        if earlier is not None and (earlier.sha256, earlier.key) == (want, key):
            return None  # the same file as refused last time
        if not self.service.front.has_token(code):
            refused[code] = Refusal(want, "the base model has no language token for it", key)
            return None
        known = self._verified.get(name)
        data = None
        if known is not None and known[0] == key and key is not None:
            sha = known[1]
        else:
            try:
                data = (self.bundle / name).read_bytes()
            except OSError as err:
                refused[code] = Refusal(want, f"cannot read {name}: {err.strerror or err}", key)
                return None
            sha = hashlib.sha256(data).hexdigest()
            self._verified[name] = (key, sha)
        if want and sha != want:
            refused[code] = Refusal(
                want,
                f"{name} has sha256 {sha[:12]}…, the manifest says {want[:12]}… "
                "(written half-way, damaged, or changed without the manifest)",
                key,
            )
            return None
        if sha == served:
            refused.pop(code, None)
            return None
        try:
            if data is None:
                data = (self.bundle / name).read_bytes()
            adapter = parse_language_file(data, f"bundle file {name}")
        except OSError as err:
            refused[code] = Refusal(want, f"cannot read {name}: {err.strerror or err}", key)
            return None
        except AdapterFileError as err:
            refused[code] = Refusal(want, err.reason, key)
            return None
        if adapter.sha256 != sha:  # replaced between the two reads: the next poll looks again
            return None
        refused.pop(code, None)
        return adapter, data


def bundle_report(view: BundleView | None, served: dict[str, str]) -> dict[str, Any] | None:
    """The bundle part of ``GET /adapters``: revision, the last check, refusals, and whether this replica serves
    exactly what the bundle holds (and every file of the bundle checks out)."""
    if view is None:
        return None
    in_sync = view.error is None and not view.refused and view.checked_at > 0 and served == view.languages
    return {
        "revision": view.revision,
        "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(view.checked_at)) if view.checked_at else None,
        "error": view.error,
        "in_sync": in_sync,
        "refused": [{"code": c, "sha256": r.sha256, "reason": r.reason} for c, r in sorted(view.refused.items())],
    }
