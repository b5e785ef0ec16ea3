"""Faults injected by ftdag's local OpenAI-compatible server (server.py), to test a client's
retries: rate limits (429 with Retry-After), server errors (500) and stalls, drawn from one
seeded generator in the order requests arrive, so that a test knows which requests fail.
"""

from __future__ import annotations

import json
import math
import random
import threading
from dataclasses import dataclass, field

from ftdag.compare.server_requests import CHAT_PATH
from ftdag.compare.server_state import ApiError


@dataclass
class Faults:
    rate_limit: float = 0.0
    server_error: float = 0.0
    stall: float = 0.0
    stall_seconds: float = 5.0
    retry_after: float = 1.0
    seed: int = 0
    scope: str = "chat"
    _random: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self):
        rates = (self.rate_limit, self.server_error, self.stall)
        if not all(0 <= r <= 1 for r in rates) or sum(rates) > 1:
            raise ValueError(f"fault rates are fractions summing to at most 1, not {rates}")
        if self.scope not in ("chat", "all") or self.stall_seconds < 0 or self.retry_after < 0:
            raise ValueError("faults: scope is 'chat' or 'all'; durations are not negative")
        self._random = random.Random(self.seed)

    @classmethod
    def parse(cls, value) -> Faults | None:
        """From a mapping, its JSON text, or None (no faults)."""
        if value is None or isinstance(value, cls):
            return value
        value = json.loads(value) if isinstance(value, str) else dict(value)
        unknown = set(value) - {k for k in cls.__dataclass_fields__ if not k.startswith("_")}
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        return cls(**value)

    def draw(self) -> str | None:
        """The next request's fault: "rate_limit", "server_error", "stall", or None."""
        with self._lock:
            u = self._random.random()
        for kind in ("rate_limit", "server_error", "stall"):
            if u < getattr(self, kind):
                return kind
            u -= getattr(self, kind)
        return None

    def apply(self, path: str, stopping: threading.Event) -> None:
        if self.scope == "chat" and path.rstrip("/") != CHAT_PATH:
            return
        kind = self.draw()
        if kind == "rate_limit":
            headers = {
                "Retry-After": str(math.ceil(self.retry_after)),
                "retry-after-ms": str(int(self.retry_after * 1000)),  # the client's preferred
            }
            message = "Rate limit reached for requests (a fault injected by ftdag's server)"
            raise ApiError(429, message, "requests", code="rate_limit_exceeded", headers=headers)
        if kind == "server_error":
            message = "The server had an error processing your request (an injected fault)"
            raise ApiError(500, message, "server_error")
        if kind == "stall":
            stopping.wait(self.stall_seconds)  # a stopping server does not wait it out
