"""The one place adapter changes go through: the routes (uploads, reloads, removals) and the bundle poller call
it; it sends them to the engine core as calls, one at a time, and the core applies each between two decoding
steps (a row is translated entirely under one adapter version) and announces the adapters it then serves."""

from __future__ import annotations

import asyncio
from typing import Any

from server.core.client import CoreClient


class AdapterManager:
    def __init__(self, core: CoreClient) -> None:
        self.core = core
        self._lock = asyncio.Lock()  # one change at a time from this front end, in the order asked

    async def check(self, code: str, data: bytes, label: str) -> None:
        """Refuse (AdapterFileError) what ``install`` would refuse, changing nothing."""
        await self.core.call("check", code=code, data=data, label=label)

    async def install(
        self,
        code: str,
        data: bytes,
        label: str,
        source: str,
        tier: str | None = None,
        *,
        expected: str | None = None,
        unless_changed_from: str | None = None,
    ) -> dict[str, Any] | None:
        """Add or replace ``code``'s adapter with the file ``data``; returns ``{"replaced", "sha256"}``.
        ``expected``: the sha256 the file must have; ``unless_changed_from``: only if ``code`` is still served
        with that sha256 ("" for none), else nothing is done and None returned."""
        async with self._lock:
            return await self.core.call(
                "install",
                code=code,
                data=data,
                label=label,
                source=source,
                tier=tier,
                expected=expected,
                unless_changed_from=unless_changed_from,
            )

    async def remove(self, code: str, *, unless_changed_from: str | None = None) -> bool:
        """Unload ``code``'s adapter (the language is then translated by the base alone, if still offered);
        False when it had none (or, with ``unless_changed_from``, when it changed)."""
        async with self._lock:
            return bool(await self.core.call("remove", code=code, unless_changed_from=unless_changed_from))
