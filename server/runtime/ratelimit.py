"""Per-key token buckets for /translate (requests per minute)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field


@dataclass
class TokenBuckets:
    per_minute: int
    _state: dict[str, tuple[float, float]] = field(default_factory=dict)  # key -> (tokens, last refill time)

    def take(self, key: str, now: float | None = None) -> float:
        """0 when the request may go ahead; otherwise the seconds until the key has a token again."""
        if self.per_minute <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        rate = self.per_minute / 60.0
        tokens, last = self._state.get(key, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - last) * rate)
        if tokens >= 1.0:
            self._state[key] = (tokens - 1.0, now)
            return 0.0
        self._state[key] = (tokens, now)
        return math.ceil((1.0 - tokens) / rate * 1000) / 1000
