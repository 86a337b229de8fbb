"""Adapter management: list, load or replace, unload. Changes need the admin token; the engine core makes them
between two decoding steps (``server.runtime.adapter_manager``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from lslo.errors import AdapterFileError, LSLoError
from lslo.io import read_manifest
from lslo.io.adapter_file import AdapterFile, parse_language_file
from lslo.io.bundle_store import BundleWriteError, persist_language, unpersist_language
from lslo.languages.tables import is_code_form
from server.errors import BadRequest, Conflict, NotFound, Overloaded
from server.http.auth import require_admin
from server.http.routes.payload import read_upload
from server.http.schemas import ERRORS, AdapterChange, AdapterEntry, AdapterList
from server.runtime.front_end import FrontEnd
from server.runtime.service import Service

log = logging.getLogger("lslo.server")
router = APIRouter(prefix="/adapters", tags=["adapters"])

_UPLOAD_DOC = {
    "requestBody": {
        "required": False,
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
            },
        },
    }
}


@router.get("", response_model=AdapterList, summary="Loaded adapters")
async def list_adapters(request: Request) -> AdapterList:
    service = request.app.state.service
    bundle = service.settings.bundle_dir
    return AdapterList(
        bundle=str(bundle) if bundle else "none",
        base_fingerprint=service.fingerprint,
        languages=[AdapterEntry(**row) for row in service.adapter_table],
        sync=service.bundle_state,
    )


def checked_code(lang: str, engine: FrontEnd) -> str:
    """The base model's code for a language in a path (a client's code or the model's own): only codes of the
    language table's forms, and only languages the base has a token for. (It names the bundle file.)"""
    if not is_code_form(lang):
        raise BadRequest(f"{lang!r} is not a language code (like 'en', 'zh-Hant', 'kam' or 'eng_Latn')")
    code = engine.vocabulary.model_code(lang)
    if code is None:
        raise BadRequest(f"the base model's tokenizer has no language token for {lang!r}")
    return code


PERSIST = Query(
    False,
    description="also write the change into the bundle directory, which replicas following "
    "it (--bundle-poll-s) then serve",
)


def persisting_bundle(service: Service, persist: bool) -> Path | None:
    """The bundle to write into (persist=true), or None; refuses what would leave replicas disagreeing."""
    bundle = service.settings.bundle_dir
    if persist and bundle is None:
        raise Conflict("persist=true, but the service runs without a bundle directory (--bundle DIR)")
    if not persist and service.sync is not None:
        raise Conflict("this replica serves what its bundle holds (--bundle-poll-s): change it with persist=true")
    return bundle if persist else None


@router.put(
    "/{lang}",
    response_model=AdapterChange,
    response_model_exclude_none=True,
    responses=ERRORS,
    openapi_extra=_UPLOAD_DOC,
    dependencies=[Depends(require_admin)],
    summary="Load or replace one language's adapter",
)
async def put_adapter(lang: str, request: Request, persist: bool = PERSIST) -> AdapterChange:
    service = request.app.state.service
    code = checked_code(lang, service.front)
    upload, _ = await read_upload(request, service.settings.max_upload_bytes)
    target: Path | None = None
    expected, tier = None, None
    if upload is None:
        if persist:
            raise BadRequest("persist=true needs the adapter file in the body")
        if service.sync is not None:
            raise Conflict("this replica follows its bundle (--bundle-poll-s) and reloads it by itself")
        data, label, expected, tier = await run_in_threadpool(bundle_source, service.settings.bundle_dir, code)
        source = "bundle"
    else:
        data, label, source = upload, f"upload for {code}", "upload"
        target = persisting_bundle(service, persist)
    try:
        adapter = await run_in_threadpool(parse_language_file, data, label)
        if expected and adapter.sha256 != expected:
            raise AdapterFileError(label, f"sha256 {adapter.sha256[:12]}… is not the manifest's {expected[:12]}…")
        previous = None
        if target is not None:
            await service.adapters.check(code, data, label)  # refused here: the bundle is untouched
            previous = await run_in_threadpool(bundle_bytes, target, code)
            await run_in_threadpool(persist_into, target, code, data, adapter)
            source = "bundle"
        try:
            change = await service.adapters.install(code, data, label, source, tier)
        except BaseException:
            if target is not None:  # checked, yet not installed: the bundle goes back to what it held
                await run_in_threadpool(restore, target, code, previous)
            raise
    except AdapterFileError as err:
        service.metrics.swaps.labels(action="load", result="refused").inc()
        raise BadRequest(f"adapter refused: {err.reason}") from None
    replaced = change["replaced"]
    action = "replaced" if replaced else "added"
    service.metrics.swaps.labels(action=action, result="ok").inc()
    return AdapterChange(
        language=code, action=action, rank=adapter.rank, sha256=change["sha256"], persisted=True if persist else None
    )


def bundle_source(bundle: Path | None, code: str) -> tuple[bytes, str, str | None, str | None]:
    """A reload from the bundle: (the file, its label, the manifest's sha256 and tier of it)."""
    if bundle is None:
        raise NotFound("no body, and the service runs without a bundle: upload the adapter file")
    try:
        entry = read_manifest(bundle).languages.get(code)
    except AdapterFileError:
        entry = None
    path = bundle / (entry["file"] if entry else f"{code}.safetensors")
    if not path.is_file():
        raise NotFound(f"no body and no {path.name} in the bundle: upload the adapter file")
    # The label ends up in error messages: the file name only, never the server's paths.
    return path.read_bytes(), f"bundle file {path.name}", (entry or {}).get("sha256"), (entry or {}).get("tier")


def bundle_bytes(bundle: Path, code: str) -> bytes | None:
    """The file the bundle holds for ``code`` now (None: none)."""
    try:
        return (bundle / read_manifest(bundle).languages[code]["file"]).read_bytes()
    except (AdapterFileError, KeyError, OSError):
        return None


@contextmanager
def bundle_errors() -> Iterator[None]:
    """A bundle change's failures as answers: a busy lock 503, an unwritable bundle 409."""
    try:
        yield
    except TimeoutError as err:
        raise Overloaded(f"the bundle is busy: {err}", {"Retry-After": "5"}) from None
    except BundleWriteError as err:
        raise Conflict(str(err)) from None


def persist_into(bundle: Path, code: str, data: bytes, adapter: AdapterFile) -> None:
    try:
        with bundle_errors():
            persist_language(bundle, code, data, adapter)
    except AdapterFileError as err:
        raise BadRequest(f"adapter refused by the bundle: {err.reason}") from None


def restore(bundle: Path, code: str, previous: bytes | None) -> None:
    try:
        if previous is None:
            unpersist_language(bundle, code)
        else:
            persist_language(bundle, code, previous, parse_language_file(previous))
    except (LSLoError, OSError):
        log.exception("the bundle could not be restored after a failed install", extra={"language": code})


@router.delete(
    "/{lang}",
    response_model=AdapterChange,
    response_model_exclude_none=True,
    responses=ERRORS,
    dependencies=[Depends(require_admin)],
    summary="Unload one language's adapter",
)
async def delete_adapter(lang: str, request: Request, persist: bool = PERSIST) -> AdapterChange:
    service = request.app.state.service
    code = checked_code(lang, service.front)
    target = persisting_bundle(service, persist)
    removed = False
    if target is not None:
        with bundle_errors():
            removed = await run_in_threadpool(unpersist_language, target, code)
    if code not in service.front.adapters and not removed:
        raise NotFound(f"no adapter loaded for {code!r}" + (" and none in the bundle" if persist else ""))
    if code in service.front.adapters:
        await service.adapters.remove(code)
    service.metrics.swaps.labels(action="removed", result="ok").inc()
    return AdapterChange(language=code, action="removed", persisted=removed if persist else None)
