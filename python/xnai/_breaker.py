"""One circuit breaker per worker address, the Rust SDK's policy (`xnai_proto::net::breaker`):
open after 5 failures in a row that say the node is unreachable or stuck, stay open 1 s
doubling to 60 s, then let one probe through (half-open). Thread-safe and loop-agnostic (no
awaits under the lock), so the sync client and `xnai.aio` share it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Dict

from .errors import Unavailable

FAILURES = 5
OPEN_MIN_S = 1.0
OPEN_MAX_S = 60.0


@dataclass
class _State:
    failures: int = 0
    open_until: float = 0.0
    open_for: float = OPEN_MIN_S
    probing: bool = False


class Breakers:
    """Breakers keyed by worker address."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by: Dict[str, _State] = {}

    def check(self, address: str) -> None:
        """Raise `Unavailable` at once while `address`'s breaker is open (one probe is let
        through once the open period is over)."""
        with self._lock:
            s = self._by.get(address)
            if s is None or s.failures < FAILURES:
                return
            now = time.monotonic()
            if now >= s.open_until and not s.probing:
                s.probing = True
                return
            raise Unavailable(
                f"circuit breaker open for worker {address}: {s.failures} calls failed in a row"
            )

    def success(self, address: str) -> None:
        with self._lock:
            self._by.pop(address, None)

    def failure(self, address: str) -> None:
        """Count a node failure; the 5th in a row (or a failed probe) opens the breaker."""
        with self._lock:
            s = self._by.setdefault(address, _State())
            was_open = s.failures >= FAILURES
            s.failures += 1
            if s.failures >= FAILURES:
                if was_open:
                    s.open_for = min(s.open_for * 2, OPEN_MAX_S)
                s.open_until = time.monotonic() + s.open_for
                s.probing = False

    def is_open(self, address: str) -> bool:
        with self._lock:
            s = self._by.get(address)
            return s is not None and s.failures >= FAILURES
