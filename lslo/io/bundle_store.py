"""Changing a bundle that several processes serve from: one language's file and the manifest, under a lock.

A bundle on a shared volume is the source of truth for the replicas that serve it (``server`` with
``--bundle-poll-s``). Writers take an exclusive lock on ``<bundle>/.lock`` (``flock`` on a descriptor of their
own: it excludes other threads as well as other processes, and Linux's NFS client maps it onto NFS byte-range
locks), write the language file atomically (temporary file, fsync, rename), then the manifest the same way with
its ``revision`` increased. Files are named by their content (``<lang>.<sha256 prefix>.safetensors``) and never
overwritten: the manifest's rename is the commit, and the file it no longer names is deleted afterwards.
Readers take no lock: they read the manifest, then each file, and trust a file only when its sha256 is the
manifest's, so a file written into the bundle by other means and left half-way, or damaged, is never loaded.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lslo.errors import AdapterFileError, LSLoError
from lslo.io.adapter_file import AdapterFile, atomic_write
from lslo.io.bundle import BUNDLE_MANIFEST, BundleManifest, check_config, read_manifest
from lslo.io.fingerprint import compare_fingerprints, fingerprint_method
from lslo.languages.tables import is_valid_code

LOCK_FILE = ".lock"


@contextmanager
def bundle_lock(bundle: Path, timeout_s: float = 30.0) -> Iterator[None]:
    """Hold the bundle's writer lock (TimeoutError after ``timeout_s``; other writers hold it for milliseconds)."""
    bundle.mkdir(parents=True, exist_ok=True)
    with open(bundle / LOCK_FILE, "a+b") as handle:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as err:
                if err.errno not in (errno.EACCES, errno.EAGAIN, errno.EWOULDBLOCK):
                    raise  # no lock support here (ENOLCK...): not a busy bundle
                if time.monotonic() > deadline:
                    raise TimeoutError("the bundle's lock is held by another writer") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _sync_directory(path: Path) -> None:
    """Make renames in ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def is_empty_bundle(path: Path) -> bool:
    """A directory with no manifest and no adapter file, only (maybe) the lock, hidden leftovers of an
    interrupted write, or a file system's ``lost+found``: a bundle yet to be written."""
    if not path.is_dir():
        return False
    return all(p.name.startswith(".") or p.name == "lost+found" for p in path.iterdir())


class BundleWriteError(LSLoError):
    """The bundle cannot be changed (unreadable manifest, read-only or full file system, no lock support)."""


def _fits_bundle(manifest: BundleManifest, adapter: AdapterFile) -> None:
    base = manifest.base.get("fingerprint", {})
    try:
        same_method = fingerprint_method(base) == fingerprint_method(adapter.fingerprint)
    except ValueError:
        same_method = False  # not comparable here: the replicas' own check against the model decides
    problems = compare_fingerprints(adapter.fingerprint, base) if same_method else []
    if problems:
        raise AdapterFileError(adapter.path, "made for another base model than the bundle's: " + problems[0])
    ours = {
        "modules": manifest.modules,
        "fc_mode": manifest.fc_mode,
        "layer_map": manifest.layer_map,
        "scaling": manifest.scaling,
    }
    check_config(adapter, ours, "the bundle's adapters")


def _new_manifest(adapter: AdapterFile) -> BundleManifest:
    config = adapter.config
    return BundleManifest(
        base={"fingerprint": adapter.fingerprint, "name": ""},
        modules=list(config["modules"]),
        fc_mode=str(config["fc_mode"]),
        scaling=float(config.get("scaling", 1.0)),
        layer_map=dict(config["layer_map"]),
        languages={},
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )


def file_name(code: str, sha256: str) -> str:
    """Files are named by content: a file, once written, is never overwritten, so the manifest's rename is
    the one moment a change takes effect."""
    return f"{code}.{sha256[:16]}.safetensors"


def _manifest(bundle: Path, adapter: AdapterFile | None) -> BundleManifest | None:
    if is_empty_bundle(bundle):
        return _new_manifest(adapter) if adapter is not None else None
    try:
        return read_manifest(bundle)
    except AdapterFileError as err:
        raise BundleWriteError(f"the bundle's manifest cannot be read: {err.reason}") from None


def _drop_unreferenced(bundle: Path, manifest: BundleManifest, file: str | None) -> None:
    if file and all(e.get("file") != file for e in manifest.languages.values()):
        (bundle / file).unlink(missing_ok=True)
        _sync_directory(bundle)


@contextmanager
def _changing(bundle: Path, timeout_s: float) -> Iterator[None]:
    """The writer's lock held; OS errors (read-only or full file system, no lock support) as BundleWriteError."""
    try:
        with bundle_lock(bundle, timeout_s):
            yield
    except TimeoutError:
        raise
    except OSError as err:
        raise BundleWriteError(f"the bundle cannot be written: {err.strerror or err}") from None


def _commit(bundle: Path, manifest: BundleManifest) -> None:
    manifest.revision += 1
    atomic_write(bundle / BUNDLE_MANIFEST, manifest.to_json().encode())
    _sync_directory(bundle)


def persist_language(
    bundle: Path, code: str, data: bytes, adapter: AdapterFile, tier: str | None = None, timeout_s: float = 30.0
) -> BundleManifest:
    """Write ``data`` (the file ``adapter`` was parsed from, kept byte for byte) as ``code``'s adapter into the
    bundle, then the manifest naming it (the commit); the file it replaces goes afterwards. An empty directory
    becomes a bundle. AdapterFileError when the file does not fit the bundle's adapters; TimeoutError when the
    lock stays taken; BundleWriteError when the bundle cannot be changed."""
    if not is_valid_code(code):
        raise ValueError(f"{code!r} is not a language code")
    with _changing(bundle, timeout_s):
        manifest = _manifest(bundle, adapter)
        assert manifest is not None
        _fits_bundle(manifest, adapter)
        previous = manifest.languages.get(code, {})
        file = file_name(code, adapter.sha256)
        if not (bundle / file).is_file() or (bundle / file).read_bytes() != data:
            atomic_write(bundle / file, data)
            _sync_directory(bundle)
        manifest.languages[code] = {
            "rank": adapter.rank,
            "tier": tier if tier is not None else previous.get("tier"),
            "file": file,
            "sha256": adapter.sha256,
            "params": sum(t.numel() for t in adapter.tensors.values()),
            "nonzero": sum(int(t.count_nonzero()) for t in adapter.tensors.values()),
        }
        _commit(bundle, manifest)
        if previous.get("file") != file:
            _drop_unreferenced(bundle, manifest, previous.get("file"))
        return manifest


def unpersist_language(bundle: Path, code: str, timeout_s: float = 30.0) -> bool:
    """Take ``code`` out of the bundle (the manifest first, then its file); False when the bundle lacks it.
    TimeoutError, BundleWriteError as ``persist_language``."""
    with _changing(bundle, timeout_s):
        manifest = _manifest(bundle, None)
        entry = manifest.languages.pop(code, None) if manifest is not None else None
        if manifest is None or entry is None:
            return False
        _commit(bundle, manifest)
        _drop_unreferenced(bundle, manifest, entry.get("file"))
        return True
