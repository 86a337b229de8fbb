"""Where each language's rank-r_l slice lives inside a packed adapter bank.

All LSLo modules of one model share one layout: languages side by side along the rank axis,
``A: (R, in)`` rows and ``B: (out, R)`` columns ``offset_l : offset_l + r_l`` belong to language ``l``,
with ``R = sum(r_l)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from lslo.errors import ConfigError


@dataclass(frozen=True)
class BankLayout:
    codes: tuple[str, ...]
    ranks: tuple[int, ...]

    def __post_init__(self) -> None:
        problems = []
        if len(self.codes) != len(self.ranks):
            problems.append(f"{len(self.codes)} codes but {len(self.ranks)} ranks")
        if len(set(self.codes)) != len(self.codes):
            problems.append(f"duplicate language codes in {self.codes}")
        problems += [f"rank of {c!r} is {r}; ranks must be positive" for c, r in zip(self.codes, self.ranks) if r <= 0]
        if problems:
            raise ConfigError(problems, "bank layout")

    @classmethod
    def from_ranks(cls, ranks: Iterable[tuple[str, int]]) -> BankLayout:
        pairs = list(ranks)
        return cls(tuple(c for c, _ in pairs), tuple(int(r) for _, r in pairs))

    @cached_property
    def offsets(self) -> tuple[int, ...]:
        out, total = [], 0
        for r in self.ranks:
            out.append(total)
            total += r
        return tuple(out)

    @property
    def total_rank(self) -> int:
        return sum(self.ranks)

    @cached_property
    def _index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.codes)}

    def __contains__(self, code: object) -> bool:
        return code in self._index

    def index(self, code: str) -> int:
        return self._index[code]

    def rank(self, code: str) -> int:
        return self.ranks[self._index[code]]

    def slice(self, code: str) -> slice:
        i = self._index[code]
        return slice(self.offsets[i], self.offsets[i] + self.ranks[i])

    @cached_property
    def column_languages(self) -> tuple[int, ...]:
        """Language index of each of the R columns."""
        return tuple(i for i, r in enumerate(self.ranks) for _ in range(r))

    def with_language(self, code: str, rank: int) -> BankLayout:
        """Add ``code`` at the end, or change its rank in place."""
        if code in self:
            ranks = list(self.ranks)
            ranks[self.index(code)] = rank
            return BankLayout(self.codes, tuple(ranks))
        return BankLayout(self.codes + (code,), self.ranks + (rank,))

    def without_language(self, code: str) -> BankLayout:
        i = self.index(code)
        return BankLayout(self.codes[:i] + self.codes[i + 1 :], self.ranks[:i] + self.ranks[i + 1 :])
