"""``python -m server --workers N``: one engine core for N HTTP front-end processes.

The main process starts the core and, while uvicorn's worker processes serve HTTP, restarts it whenever it ends
unasked (on the same socket and journal: the new core serves the adapters its predecessor served). The workers
connect to the core's socket (``CoreClient(shared=...)``) and read the service's settings from the core's
directory, which is private to this service (mode 0700: the file holds the admin token).
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import threading
from pathlib import Path
from typing import Any

from server.core.client import spawn_core, wait_until_up
from server.errors import StartupError
from server.runtime.metrics import SHARED_DIR
from server.settings import ServerSettings

log = logging.getLogger("lslo.server")
CORE_DIR = "LSLO_CORE_DIR"  # the environment variable naming the shared core's directory, for the workers
SETTINGS_FILE = "settings.json"


def settings_payload(settings: ServerSettings) -> dict[str, Any]:
    """The settings as JSON data, secrets included (``model_dump`` masks them)."""
    data = settings.model_dump(mode="json")
    if settings.admin_token is not None:
        data["admin_token"] = settings.admin_token.get_secret_value()
    return data


def shared_settings(root: Path) -> ServerSettings:
    """A worker's settings: those the main process was started with."""
    return ServerSettings(**json.loads((root / SETTINGS_FILE).read_text(encoding="utf-8")))


class Supervisor:
    def __init__(self, settings: ServerSettings, process: mp.process.BaseProcess) -> None:
        self.settings, self.process = settings, process
        self.root: Path = process.lslo_root  # type: ignore[attr-defined]
        self.restarts = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="lslo-core-supervisor", daemon=True)

    def share(self) -> None:
        """Write the settings for the workers and name the directory in the environment they inherit."""
        path = self.root / SETTINGS_FILE
        settings = self.settings
        if settings.glossaries_dir is None:  # one store for all workers: glossaries stored through one are seen by all
            settings = settings.model_copy(update={"glossaries_dir": self.root / "glossaries"})
        if settings.files_dir is None:  # and one for translated files: downloaded through any worker
            settings = settings.model_copy(update={"files_dir": self.root / "files"})
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(settings_payload(settings), f)
        os.environ[CORE_DIR] = str(self.root)
        if (
            SHARED_DIR not in os.environ
        ):  # the workers' counters in files there: /metrics sums them (server.runtime.metrics)
            (self.root / "metrics").mkdir(exist_ok=True)
            os.environ[SHARED_DIR] = str(self.root / "metrics")

    def start(self) -> None:
        self._thread.start()

    def _watch(self) -> None:
        while True:
            self.process.join()
            if self._stopping.is_set():
                return
            log.error("the engine core stopped (exit code %s); starting it again", self.process.exitcode)
            self.restarts += 1
            target = getattr(self.process, "lslo_target", None)
            self.process = spawn_core(self.settings, self.root, *([target] if target else []))
            try:
                wait_until_up(self.process, timeout_s=3600)
            except StartupError:
                log.exception("the engine core could not be started again")
                return

    def stop(self, timeout_s: float) -> int | None:
        """SIGTERM to the core (it finishes what it holds, then exits); its exit code. The watching thread is
        the one that waits for the process (two threads waiting for one child race for its exit status)."""
        self._stopping.set()
        if self.process.is_alive():
            self.process.terminate()
        self._thread.join(timeout_s)
        if self.process.is_alive():
            self.process.kill()
            self._thread.join(5)
        return self.process.exitcode
