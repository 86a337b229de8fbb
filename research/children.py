"""Child processes that do not outlive the process that started them.

The replication runner trains and evaluates each run in a child process. Killed with SIGTERM (``kill``, a job
scheduler, ``docker stop``) Python exits without cleanup, and its children would keep training: a run started
again would then share its log and checkpoints with a stray process. ``ChildProcesses`` remembers the
children it started and stops them (and starts no more) on ``stop_all``; ``terminate_on_sigterm`` turns SIGTERM
into ``SystemExit`` so that a ``finally`` can call it.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType


class ChildProcesses:
    """Runs commands like ``subprocess.run(cmd, check=True)``, from any thread, and can stop all still running."""

    def __init__(self, grace_seconds: float = 10.0) -> None:
        self.grace_seconds = grace_seconds
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[bytes]] = set()
        self._stopped = False

    def run(self, cmd: Sequence[str]) -> None:
        """Runs ``cmd`` to the end; raises ``CalledProcessError`` on a non-zero exit (a stopped child included),
        ``RuntimeError`` after ``stop_all``."""
        with self._lock:
            if self._stopped:
                raise RuntimeError(f"stopping: not starting {' '.join(cmd)}")
            process = subprocess.Popen(list(cmd))
            self._running.add(process)
        try:
            code = process.wait()
        except BaseException:  # interrupted while waiting (SIGTERM as SystemExit, Ctrl-C): stop the child first
            self._stop([process], self.grace_seconds)
            raise
        finally:
            with self._lock:
                self._running.discard(process)
        if code != 0:
            raise subprocess.CalledProcessError(code, list(cmd))

    def running(self) -> list[int]:
        """The process ids of the children still running."""
        with self._lock:
            return [p.pid for p in self._running]

    def stop_all(self) -> None:
        """SIGTERM to every running child, SIGKILL to those still there after ``grace_seconds``; ``run`` refuses
        to start more."""
        with self._lock:
            self._stopped = True
            processes = list(self._running)
        self._stop(processes, self.grace_seconds)

    @staticmethod
    def _stop(processes: list[subprocess.Popen[bytes]], grace_seconds: float) -> None:
        for p in processes:
            p.terminate()
        for p in processes:
            try:
                p.wait(timeout=grace_seconds)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@contextmanager
def terminate_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM raises ``SystemExit(143)`` in the main thread (as Ctrl-C raises
    ``KeyboardInterrupt``), so ``finally`` blocks run. Main thread only."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
