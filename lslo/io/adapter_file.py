"""One language's adapters in one safetensors file.

Tensor keys are the adapted module's path plus ``lora_A`` (rank x in) / ``lora_B`` (out x rank), e.g.
``model.encoder.layers.0.self_attn.q_proj.lora_A``. The safetensors header metadata carries the format, its
version, the language, its rank, the tensors' dtype, the base-model fingerprint and the adapter config, so a
single file can be checked against a running model without its bundle.

Files are parsed with safetensors from bytes read in one go (a file replaced while it is read is either seen
whole or refused); nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from lslo.devices import TORCH_NAMES
from lslo.errors import AdapterFileError

FORMAT = "lslo-adapter"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class AdapterFile:
    """A parsed, file-level-valid language adapter (model fit is checked when it is loaded into a model)."""

    path: str
    language: str
    rank: int
    tensors: dict[str, torch.Tensor]
    fingerprint: dict[str, Any]
    config: dict[str, Any]  # modules, fc_mode, scaling, layer_map
    sha256: str
    size: int


def check_format_version(value: object, path: str | Path, what: str = "file", *, text: bool = False) -> int:
    """The format version of a file (an int; with ``text``, its decimal string, as safetensors metadata holds
    it); AdapterFileError for a missing or malformed one, or one newer than this software reads."""
    version = value if isinstance(value, int) and not isinstance(value, bool) and not text else None
    if text and isinstance(value, str) and re.fullmatch(r"[0-9]{1,9}", value):
        version = int(value)
    if version is None or version < 1:
        raise AdapterFileError(path, f"{what} format_version {value!r} is not valid")
    if version > FORMAT_VERSION:
        raise AdapterFileError(
            path, f"{what} written by a newer format version {version}; this software reads up to {FORMAT_VERSION}"
        )
    return version


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path`` and rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; readers (a container user) need the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def encode_language_file(
    language: str,
    tensors: dict[str, torch.Tensor],
    fingerprint: dict[str, Any],
    config: dict[str, Any],
    dtype: torch.dtype | None = None,
) -> bytes:
    ranks = {int(t.shape[0]) for k, t in tensors.items() if k.endswith(".lora_A")}
    if len(ranks) != 1:
        raise ValueError(f"tensors of {language!r} disagree on the rank: {sorted(ranks)}")
    if dtype is not None:
        tensors = {k: t.to(dtype) for k, t in tensors.items()}
    dtypes = {t.dtype for t in tensors.values()}
    if len(dtypes) != 1 or next(iter(dtypes)) not in TORCH_NAMES.values():
        raise ValueError(f"adapter tensors must share one of {list(TORCH_NAMES)}, got {dtypes}")
    dtype_name = next(n for n, d in TORCH_NAMES.items() if d in dtypes)
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "language": language,
        "rank": str(ranks.pop()),
        "dtype": dtype_name,
        "base_fingerprint": json.dumps(fingerprint, sort_keys=True),
        "config": json.dumps(config, sort_keys=True),
    }
    return st_save({k: t.detach().cpu().contiguous() for k, t in tensors.items()}, metadata=metadata)


def write_language_file(path: str | Path, *args: Any, **kwargs: Any) -> str:
    """Encode (see ``encode_language_file``) and write atomically; returns the file's sha256."""
    data = encode_language_file(*args, **kwargs)
    atomic_write(Path(path), data)
    return hashlib.sha256(data).hexdigest()


def _header(data: bytes) -> dict[str, Any]:
    if len(data) < 8:
        raise ValueError("too short to be a safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError("header length points past the end of the file (truncated or not safetensors)")
    try:
        header = json.loads(data[8 : 8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("header is not JSON (not a safetensors file)") from None
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object (not a safetensors file)")
    return header


def parse_language_file(data: bytes, path: str | Path = "<upload>") -> AdapterFile:
    """Parse and check file-level validity; AdapterFileError names ``path`` and the reason."""
    if not data:
        raise AdapterFileError(path, "file is empty")
    try:
        header = _header(data)
        tensors = st_load(data)
    except (ValueError, SafetensorError) as err:
        raise AdapterFileError(path, f"not a readable safetensors file: {err}") from None
    meta = header.get("__metadata__") or {}
    if meta.get("format") != FORMAT:
        raise AdapterFileError(path, f"not an LSLo adapter file (metadata 'format' is {meta.get('format')!r})")
    check_format_version(meta.get("format_version"), path, text=True)
    try:
        rank = int(meta["rank"])
        language = str(meta["language"])
        fingerprint = json.loads(meta["base_fingerprint"])
        config = json.loads(meta["config"])
        declared = TORCH_NAMES[meta["dtype"]]
    except (KeyError, ValueError, TypeError) as err:
        raise AdapterFileError(path, f"metadata is incomplete or malformed ({err!s})") from None
    wrong = sorted({str(t.dtype) for t in tensors.values() if t.dtype != declared})
    if wrong:
        raise AdapterFileError(path, f"tensors have dtype {', '.join(wrong)} but the file declares {meta['dtype']}")
    bad = [k for k, t in tensors.items() if not bool(torch.isfinite(t).all())]
    if bad:
        raise AdapterFileError(path, f"{len(bad)} tensor(s) hold NaN or Inf, e.g. {bad[0]!r}")
    return AdapterFile(
        path=str(path),
        language=language,
        rank=rank,
        tensors=tensors,
        fingerprint=fingerprint,
        config=config,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
    )


def read_language_file(path: str | Path, max_bytes: int | None = None) -> AdapterFile:
    path = Path(path)
    if not path.is_file():
        raise AdapterFileError(path, "no such file")
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise AdapterFileError(path, f"file is {size} bytes, over the limit of {max_bytes}")
    with path.open("rb") as f:
        data = f.read()
    return parse_language_file(data, path)
