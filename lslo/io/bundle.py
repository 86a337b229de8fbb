"""Adapter bundles: a directory with ``manifest.json`` and one ``.safetensors`` file per language (``<lang>``, or
``<lang>.<sha256 prefix>`` when written by ``lslo.io.bundle_store``; the manifest names it).

The manifest records the format version, the base-model fingerprint, every language's rank, tier, file,
checksum and parameter counts, the target modules, fc mode, scaling, layer map, pruning information and a
revision. Adding a language is adding its file (and manifest entry); replacing one is a new file plus a reload.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lslo.adapters.config import LSLoConfig
from lslo.adapters.handle import AdapterMismatchError, LSLoHandle
from lslo.adapters.inject import inject
from lslo.adapters.layer_map import LayerMap
from lslo.adapters.modules import parse_modules
from lslo.errors import AdapterFileError, ConfigError
from lslo.io.adapter_file import (
    FORMAT_VERSION,
    AdapterFile,
    atomic_write,
    check_format_version,
    read_language_file,
    write_language_file,
)
from lslo.io.fingerprint import Method, base_fingerprint, compare_fingerprints, current_method, fingerprint_method
from lslo.languages.tables import LanguageSpec, is_valid_code

BUNDLE_MANIFEST = "manifest.json"
BUNDLE_FORMAT = "lslo-bundle"
SAFE_FILE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}\.safetensors")


def adapter_config(lslo: LSLoHandle) -> dict[str, Any]:
    """The part of the configuration a language file must agree with to be loaded into ``lslo``."""
    return {
        "modules": lslo.config.modules.names(),
        "fc_mode": lslo.config.fc_mode,
        "scaling": lslo.config.scaling,
        "layer_map": lslo.layer_map.to_dict(),
    }


def model_fingerprint(lslo: LSLoHandle, method: Method | None = None) -> dict[str, Any]:
    """The base model's fingerprint by ``method`` (default: the current one), computed once per handle and
    method (base weights are frozen)."""
    method = method or current_method()
    cached = lslo.base_fingerprints.get(method)
    if cached is None:
        cached = lslo.base_fingerprints[method] = base_fingerprint(lslo.model, *method)
    return cached


@dataclass
class BundleManifest:
    base: dict[str, Any]  # {"fingerprint": {...}, "name": str}
    modules: list[str]
    fc_mode: str
    scaling: float
    layer_map: dict[str, list[str]]
    languages: dict[str, dict[str, Any]]  # code -> {rank, tier, file, sha256, params, nonzero}
    pruning: dict[str, Any] | None = None
    created: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    format: str = BUNDLE_FORMAT
    format_version: int = FORMAT_VERSION
    revision: int = 0  # increased by every change written through ``lslo.io.bundle_store``

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str, path: str | Path) -> BundleManifest:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise AdapterFileError(path, f"manifest is not valid JSON ({err})") from None
        if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
            raise AdapterFileError(
                path,
                f"not an LSLo bundle manifest (format is {data.get('format')!r})"
                if isinstance(data, dict)
                else "manifest is not a JSON object",
            )
        check_format_version(data.get("format_version"), path, "bundle manifest")
        known = {f for f in cls.__dataclass_fields__}
        try:
            manifest = cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as err:
            raise AdapterFileError(path, f"manifest is missing fields ({err})") from None
        bad = [c for c in manifest.languages if not is_valid_code(c)]
        if bad:
            raise AdapterFileError(path, f"manifest lists invalid language codes {bad}")
        bad = [c for c, e in manifest.languages.items() if not isinstance(e, dict)]
        if bad:
            raise AdapterFileError(path, f"manifest entries of {bad[:3]} are not objects")
        files: list[object] = [e.get("file") for e in manifest.languages.values()]
        unsafe = [f for f in files if not (isinstance(f, str) and SAFE_FILE.fullmatch(f))]
        if unsafe:  # a manifest names files inside its own directory only
            raise AdapterFileError(path, f"manifest names files that are not plain .safetensors names: {unsafe[:3]}")
        if not isinstance(manifest.revision, int) or isinstance(manifest.revision, bool):
            raise AdapterFileError(path, f"manifest revision {manifest.revision!r} is not an integer")
        return manifest

    def lslo_config(self) -> LSLoConfig:
        problems: list[str] = []
        modules = parse_modules(self.modules, problems)
        if problems:
            raise ConfigError(problems, "bundle manifest")
        specs = tuple(LanguageSpec(c, int(v["rank"]), v.get("tier")) for c, v in self.languages.items())
        return LSLoConfig(
            languages=specs,
            modules=modules,
            fc_mode=self.fc_mode,  # type: ignore[arg-type]
            layer_map=LayerMap.from_dict(self.layer_map),
            scaling=float(self.scaling),
        )


def save_bundle(
    lslo: LSLoHandle,
    out_dir: str | Path,
    *,
    base_name: str = "",
    pruning: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
    fingerprint: dict[str, Any] | None = None,
) -> BundleManifest:
    """Write every language's file, then the manifest (each atomically).

    ``fingerprint``: the base model's, when the model in memory is not the one the adapters were trained on
    as stored (an fp16 export of it); by default it is computed from the model."""
    if lslo.config.weight_learning:
        raise ConfigError(["Weight Learning models are not bundled: derive a layer map and train LSLo with it"])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fingerprint = fingerprint or model_fingerprint(lslo)
    config = adapter_config(lslo)
    params, nonzero = lslo.parameter_counts(), lslo.nonzero_counts()
    languages = {}
    for spec in lslo.languages:
        file = f"{spec.code}.safetensors"
        sha = write_language_file(
            out / file, spec.code, lslo.language_state_dict(spec.code), fingerprint, config, dtype=dtype
        )
        languages[spec.code] = {
            "rank": spec.rank,
            "tier": spec.tier,
            "file": file,
            "sha256": sha,
            "params": params[spec.code],
            "nonzero": nonzero[spec.code],
        }
    manifest = BundleManifest(
        base={"fingerprint": fingerprint, "name": base_name},
        modules=config["modules"],
        fc_mode=config["fc_mode"],
        scaling=config["scaling"],
        layer_map=config["layer_map"],
        languages=languages,
        pruning=pruning,
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        extra=extra or {},
    )
    atomic_write(out / BUNDLE_MANIFEST, manifest.to_json().encode())
    return manifest


def read_manifest(bundle_dir: str | Path) -> BundleManifest:
    path = Path(bundle_dir) / BUNDLE_MANIFEST
    if not path.is_file():
        raise AdapterFileError(path, "no bundle manifest here (is this an LSLo adapter bundle directory?)")
    return BundleManifest.from_json(path.read_text(encoding="utf-8"), path)


def check_file_fits(lslo: LSLoHandle, adapter: AdapterFile) -> None:
    """Refuse a parsed file made for another base model or adapter configuration; names the file."""
    try:
        method = fingerprint_method(adapter.fingerprint)
    except ValueError as err:
        raise AdapterFileError(adapter.path, str(err)) from None
    problems = compare_fingerprints(adapter.fingerprint, model_fingerprint(lslo, method))
    if problems:
        raise AdapterFileError(adapter.path, "belongs to another base model: " + "; ".join(problems[:3]))
    check_config(adapter, adapter_config(lslo), "the loaded adapters")


def check_config(adapter: AdapterFile, ours: dict[str, Any], whose: str) -> None:
    """Refuse a file whose adapter configuration (``adapter_config``'s keys) is not ``ours``."""
    for key in ("modules", "fc_mode", "layer_map"):
        if adapter.config.get(key) != ours[key]:
            raise AdapterFileError(
                adapter.path, f"made for {key} {adapter.config.get(key)!r}, {whose} use {ours[key]!r}"
            )
    if float(adapter.config.get("scaling", 1.0)) != float(ours["scaling"]):
        raise AdapterFileError(
            adapter.path, f"made with scaling {adapter.config.get('scaling')}, not {ours['scaling']}"
        )


def check_adapter(lslo: LSLoHandle, adapter: AdapterFile, code: str | None = None) -> str:
    """Everything ``install_adapter`` checks, without loading: AdapterFileError names the file and the reason.
    Returns the language code."""
    code = code or adapter.language
    if adapter.language != code:
        raise AdapterFileError(adapter.path, f"holds the adapter of {adapter.language!r}, not {code!r}")
    check_file_fits(lslo, adapter)
    try:
        rank = lslo.check_language_tensors(code, adapter.tensors)
    except AdapterMismatchError as err:
        raise AdapterFileError(adapter.path, "; ".join(err.problems)) from None
    if rank != adapter.rank:
        raise AdapterFileError(adapter.path, f"metadata says rank {adapter.rank}, tensors have rank {rank}")
    return code


def install_adapter(lslo: LSLoHandle, adapter: AdapterFile, code: str | None = None, tier: str | None = None) -> None:
    """Check a parsed file against ``lslo`` and load it (add or replace); nothing changes on error."""
    code = check_adapter(lslo, adapter, code)
    lslo.load_language(code, adapter.tensors, tier=tier)


def inject_for_file(model: nn.Module, adapter: AdapterFile, code: str | None = None) -> LSLoHandle:
    """LSLo injected into ``model`` as one language file describes it (modules, fc mode, scaling, layer map),
    with that language at its rank and zero weights: ``install_adapter`` then loads the file. For a model that
    serves its base alone until the first adapter arrives. AdapterFileError for a file made for another base."""
    try:
        method = fingerprint_method(adapter.fingerprint)
    except ValueError as err:
        raise AdapterFileError(adapter.path, str(err)) from None
    actual = base_fingerprint(model, *method)
    problems = compare_fingerprints(adapter.fingerprint, actual)
    if problems:
        raise AdapterFileError(adapter.path, "belongs to another base model: " + "; ".join(problems[:3]))
    problems = []
    modules = parse_modules(adapter.config.get("modules", []), problems)
    try:
        layer_map = LayerMap.from_dict(adapter.config.get("layer_map", {}))
        config = LSLoConfig(
            languages=(LanguageSpec(code or adapter.language, adapter.rank),),
            modules=modules,
            fc_mode=adapter.config.get("fc_mode", "full"),
            layer_map=layer_map,
            scaling=float(adapter.config.get("scaling", 1.0)),
        )
    except (ConfigError, TypeError, ValueError) as err:
        raise AdapterFileError(adapter.path, f"its adapter configuration is not valid ({err})") from None
    if problems:
        raise AdapterFileError(adapter.path, "; ".join(problems))
    try:
        handle = inject(model, config, initialize=False)
    except ConfigError as err:
        raise AdapterFileError(adapter.path, "; ".join(err.problems)) from None
    handle.base_fingerprints[method] = actual
    return handle


def load_language_file(
    lslo: LSLoHandle, path: str | Path, code: str | None = None, tier: str | None = None
) -> AdapterFile:
    """Read one ``<lang>.safetensors`` and load it into ``lslo`` (add or replace)."""
    adapter = read_language_file(path)
    install_adapter(lslo, adapter, code, tier)
    return adapter


def load_bundle(model: nn.Module, bundle_dir: str | Path, languages: Iterable[str] | None = None) -> LSLoHandle:
    """Inject LSLo into ``model`` as the bundle describes and load its languages (all, or ``languages``)."""
    bundle = Path(bundle_dir)
    manifest = read_manifest(bundle)
    expected = manifest.base.get("fingerprint", {})
    try:
        method = fingerprint_method(expected)
    except ValueError as err:
        raise AdapterFileError(bundle / BUNDLE_MANIFEST, str(err)) from None
    actual = base_fingerprint(model, *method)  # once per load: the files' checks reuse it through the handle
    problems = compare_fingerprints(expected, actual)
    if problems:
        reason = "bundle belongs to another base model: " + "; ".join(problems[:3])
        raise AdapterFileError(bundle / BUNDLE_MANIFEST, reason)
    wanted = list(manifest.languages) if languages is None else list(languages)
    missing = [c for c in wanted if c not in manifest.languages]
    if missing:
        raise AdapterFileError(bundle / BUNDLE_MANIFEST, f"bundle has no language(s) {missing}")
    full = manifest.lslo_config()
    config = LSLoConfig(
        languages=tuple(s for s in full.languages if s.code in wanted),
        modules=full.modules,
        fc_mode=full.fc_mode,
        layer_map=full.layer_map,
        scaling=full.scaling,
    )
    lslo = inject(model, config, initialize=False)
    lslo.base_fingerprints[method] = actual
    try:
        for code in wanted:
            entry = manifest.languages[code]
            adapter = read_language_file(bundle / entry["file"])
            if entry.get("sha256") and adapter.sha256 != entry["sha256"]:
                raise AdapterFileError(
                    adapter.path,
                    f"sha256 {adapter.sha256[:12]}… is not the manifest's "
                    f"{str(entry['sha256'])[:12]}… (damaged, or changed without "
                    "the manifest)",
                )
            install_adapter(lslo, adapter, code, entry.get("tier"))
    except BaseException:
        lslo.remove()
        raise
    return lslo
