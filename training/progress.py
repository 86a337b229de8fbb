"""Progress of long work: a tqdm bar on a terminal, and in a log (a file, a pipe, a job scheduler) a plain line
every ``every`` updates and at the end, instead of thousands of carriage-return bar updates."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from tqdm.auto import tqdm


class LineProgress:
    """The subset of tqdm's interface the recipes use, printing whole lines."""

    def __init__(self, total: int, desc: str, unit: str, initial: int, every: int, stream: TextIO) -> None:
        self.total, self.desc, self.unit, self.n, self.every, self.stream = total, desc, unit, initial, every, stream
        self.postfix: dict[str, Any] = {}
        self.started = time.monotonic()
        self._printed_at = initial

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.n - self._printed_at >= self.every:
            self._print()

    def set_postfix(self, **values: Any) -> None:
        self.postfix = values

    def close(self) -> None:
        if self.n != self._printed_at:
            self._print()

    def _print(self) -> None:
        self._printed_at = self.n
        elapsed = time.monotonic() - self.started
        extra = "".join(f", {k} {v}" for k, v in self.postfix.items())
        print(f"{self.desc}: {self.unit} {self.n}/{self.total} ({elapsed:.0f}s{extra})", file=self.stream, flush=True)


def progress(
    total: int,
    desc: str,
    *,
    unit: str = "step",
    initial: int = 0,
    enabled: bool = True,
    lines: int = 10,
    stream: TextIO | None = None,
) -> Any:
    """A tqdm bar when ``stream`` (stderr by default) is a terminal; otherwise about ``lines`` lines over the
    whole ``total``. ``enabled=False`` shows nothing."""
    stream = stream or sys.stderr
    if not enabled:
        return tqdm(total=total, disable=True)
    if stream.isatty():
        return tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=False, file=stream)
    return LineProgress(total, desc, unit, initial, max(1, total // max(lines, 1)), stream)
