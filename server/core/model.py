"""The engine core's model: the frozen base loaded once, its LSLo adapters, and the decoding engine
(``lslo.engine``: continuous batching, versioned adapters) that translates with them.

Not thread-safe on purpose: the core's loop (``server.core.process``) drives it, and adapter changes run on that
same thread between two decoding steps; the decoding engine keeps each running row on the adapter version it
started with, so a swap never changes a translation half-way.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer, M2M100ForConditionalGeneration

from lslo.adapters.handle import LSLoHandle
from lslo.devices import resolve_device, weights_dtype
from lslo.engine import DecodingEngine
from lslo.engine.generation import GenerationSettings, decoder_start
from lslo.errors import AdapterFileError, LSLoError
from lslo.io import load_bundle, read_manifest
from lslo.io.adapter_file import AdapterFile
from lslo.io.bundle import check_adapter, inject_for_file, install_adapter, model_fingerprint
from lslo.io.bundle_store import is_empty_bundle
from lslo.io.fingerprint import base_fingerprint, fingerprint_method
from lslo.languages.tokenization import lang_token_id
from server.errors import StartupError
from server.settings import ServerSettings

log = logging.getLogger("lslo.server")


@dataclass
class AdapterRecord:
    code: str
    rank: int
    tier: str | None
    sha256: str
    source: str  # "bundle" or "upload"
    loaded_at: float = field(default_factory=time.time)
    nonzero: int = 0  # parameters left non-zero by pruning (counted where adapters change)


def load_model(settings: ServerSettings) -> ServedModel:
    """``ServedModel(settings)`` built on a thread of its own that ends once it is built.

    Every OpenMP thread team lives as long as the thread that started it, and when a process holds more OpenMP
    threads than cores, libgomp's workers stop spinning between parallel regions and sleep on a futex instead.
    Loading the model starts a team; built on the main thread, that team would stay beside the decoding thread's
    own for the life of the process, and every decoding step would pay the sleeps and wake-ups (measured on 2
    cores: about 12,000 context switches a second and steps 1.2-1.6 times slower). Built here, the loading
    team ends with its thread and the decoding thread's team is the only one. (For the same reason the engine
    does its tensor work on the loading and decoding threads only: see ``adapter_table``.)"""
    built: dict[str, Any] = {}

    def build() -> None:
        try:
            built["engine"] = ServedModel(settings)
        except BaseException as err:  # noqa: BLE001 - re-raised on the caller's thread
            built["error"] = err

    thread = threading.Thread(target=build, name="lslo-load", daemon=True)  # Ctrl-C need not wait for it
    thread.start()
    thread.join()
    if "error" in built:
        raise built["error"]
    return built["engine"]


class ServedModel:
    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        if settings.threads:
            torch.set_num_threads(settings.threads)
        try:
            self.device = resolve_device(settings.device)
        except ValueError as err:
            raise StartupError(f"--device: {err}") from None
        try:
            self.dtype = weights_dtype(settings.dtype, self.device)
        except ValueError as err:
            raise StartupError(f"--dtype: {err}") from None
        self.tokenizer, self.model = self._load_base(settings.base)
        self.lslo: LSLoHandle | None = None
        self.adapters: dict[str, AdapterRecord] = {}
        bundle = settings.bundle_dir
        if settings.bundle_poll_s and bundle is None:
            raise StartupError(
                "--bundle-poll-s needs a bundle directory to follow (--bundle DIR; an empty "
                "directory is a bundle yet to be written)"
            )
        if bundle is not None and not is_empty_bundle(bundle):  # an empty directory: a bundle yet to be written
            self.lslo, self.adapters, self.fingerprint = self._load_bundle(bundle)
            self._count_nonzero()
        else:
            self.fingerprint = base_fingerprint(self.model)  # what uploaded adapters are checked against
        positions = int(getattr(self.model.config, "max_position_embeddings", 1024)) - 2
        self.generation = GenerationSettings(
            num_beams=settings.beam,
            max_new_tokens=min(settings.max_new_tokens, positions),
            max_input_tokens=min(settings.max_input_tokens, positions),
            fallback_to_base=True,
        )
        self.decoder = DecodingEngine(
            self.model,
            self.lslo,
            max_rows=self._row_budget(),
            max_new_tokens=self.generation.max_new_tokens,
            max_source_tokens=self.generation.max_input_tokens,
            min_beams=settings.beam,
            int8=settings.dtype == "int8",
        )
        self.decoder_start = decoder_start(self.model)

    # ----------------------------------------------------------------------------------------- loading
    def _load_base(self, base: Path) -> tuple[Any, M2M100ForConditionalGeneration]:
        if not (base / "config.json").is_file():
            raise StartupError(
                f"base model not found: {base} has no config.json (set --base or LSLO_BASE to a "
                "Hugging Face model directory)"
            )
        try:
            tokenizer = AutoTokenizer.from_pretrained(base)
            model = M2M100ForConditionalGeneration.from_pretrained(base, dtype=self.dtype, use_safetensors=True)
        except (OSError, ValueError, KeyError) as err:
            raise StartupError(f"cannot load the base model from {base}: {err}") from None
        model.to(self.device)  # type: ignore[arg-type]  # transformers types the decorated to() wrongly
        model.eval()
        return tokenizer, model

    def _load_bundle(self, bundle: Path) -> tuple[LSLoHandle, dict[str, AdapterRecord], dict[str, Any]]:
        try:
            manifest = read_manifest(bundle)
            lslo = load_bundle(self.model, bundle)
        except (AdapterFileError, LSLoError) as err:
            raise StartupError(f"cannot load the adapter bundle {bundle}: {err}") from None
        missing = []
        for code in manifest.languages:
            try:
                lang_token_id(self.tokenizer, code)
            except LSLoError:
                missing.append(code)
        if missing:
            raise StartupError(
                f"bundle {bundle} has languages {missing} that the base tokenizer at "
                f"{self.settings.base} has no token for"
            )
        records = {
            code: AdapterRecord(code, int(entry["rank"]), entry.get("tier"), entry.get("sha256", ""), "bundle")
            for code, entry in manifest.languages.items()
        }
        # Computed while loading (by the bundle's fingerprint method; load_bundle checked it): GET /adapters.
        fingerprint = model_fingerprint(lslo, fingerprint_method(manifest.base.get("fingerprint", {})))
        return lslo, records, fingerprint

    # ------------------------------------------------------------------------------------ translation
    def _row_budget(self) -> int:
        """Hypotheses decoded together: ``max_batch_size`` sentences of ``beam`` beams (room for the largest
        n-best request at least); on a GPU no more than half its free memory holds in KV cache."""
        s = self.settings
        rows = max(s.max_batch_size * s.beam, s.max_alternatives + 1, s.beam)
        if self.device.type == "cuda":
            c = self.model.config
            element = torch.empty(0, dtype=self.dtype).element_size()
            per_row = (
                2
                * c.decoder_layers
                * c.d_model
                * element
                * (self.generation.max_new_tokens + 2 + self.generation.max_input_tokens)
            )
            free, _ = torch.cuda.mem_get_info(self.device)
            rows = max(s.max_alternatives + 1, s.beam, min(rows, int(free * 0.5 // per_row)))
        return rows

    # --------------------------------------------------------------------------------------- adapters
    def check(self, code: str, adapter: AdapterFile) -> None:
        """Refuse (AdapterFileError) what ``install`` would refuse, changing nothing: before a file is persisted.
        Call it on the decoding thread (serving the base alone, it injects LSLo for the trial)."""
        if self.lslo is not None:
            check_adapter(self.lslo, adapter, code)
            return
        trial = inject_for_file(self.model, adapter, code)  # serving the base alone: try it, then take it out
        try:
            check_adapter(trial, adapter, code)
        finally:
            trial.remove()

    def install(self, code: str, adapter: AdapterFile, source: str, tier: str | None = None) -> AdapterRecord:
        """Add or replace ``code`` (checked in full first: a refused file changes nothing). Serving the base
        alone, the first adapter brings LSLo in with the configuration its file records. ``tier``: the bundle's
        (default: the one ``code`` had)."""
        if tier is None and code in self.adapters:
            tier = self.adapters[code].tier
        created = self.lslo is None
        if created:
            self.lslo = inject_for_file(self.model, adapter, code)
        try:
            install_adapter(self.lslo, adapter, code, tier)  # type: ignore[arg-type]
            if created:
                self.decoder.attach(self.lslo)
        except BaseException:
            if created:  # back to the base alone, as before the call
                self.lslo.remove()  # type: ignore[union-attr]
                self.lslo = None
                self.decoder.attach(None)
            raise
        record = AdapterRecord(code, adapter.rank, tier, adapter.sha256, source)
        self.adapters[code] = record
        self._count_nonzero()
        return record

    def remove(self, code: str) -> None:
        """Unload ``code``'s adapter: the language is then translated by the base alone (if still offered)."""
        if self.lslo is not None and code in self.lslo.layout:
            self.lslo.remove_language(code)
        self.adapters.pop(code, None)

    def _count_nonzero(self) -> None:
        """Each adapter's non-zero parameters, counted where adapters change (the loading or the decoding thread),
        so that ``adapter_table``, read on the event loop too, does no tensor work there (an OpenMP team started
        on that thread would stay beside the decoding thread's: ``load_model``)."""
        counts = self.lslo.nonzero_counts() if self.lslo is not None else {}
        for code, record in self.adapters.items():
            record.nonzero = counts.get(code, 0)

    def adapter_table(self) -> list[dict[str, Any]]:
        if self.lslo is None:
            return []
        params = self.lslo.parameter_counts()
        return [
            {
                "code": c,
                "rank": r.rank,
                "tier": r.tier,
                "parameters": params.get(c, 0),
                "nonzero": r.nonzero,
                "sha256": r.sha256,
                "source": r.source,
                "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.loaded_at)),
            }
            for c, r in self.adapters.items()
        ]
