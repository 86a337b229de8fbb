"""Exceptions raised by the library. Callers (training CLI, server) map them to their own error surfaces."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


class LSLoError(Exception):
    """Base class of every error this library raises on purpose."""


class ConfigError(LSLoError, ValueError):
    """A configuration with one or more problems; `problems` lists every one of them."""

    def __init__(self, problems: Iterable[str], what: str = "LSLo configuration") -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid {what} ({len(self.problems)} problem(s)):\n{lines}")


class RoutingError(LSLoError, ValueError):
    """A forward pass whose rows cannot be routed to language adapters."""


class AdapterFileError(LSLoError):
    """An adapter file or bundle that cannot be used; names the file and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def raise_if_problems(problems: list[str], what: str = "LSLo configuration") -> None:
    if problems:
        raise ConfigError(problems, what)
