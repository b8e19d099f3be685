"""Per-session token and cost accounting, and the step/cost/time budget checked before each call.

A call whose price litellm does not know has cost None ("unknown"). The session total keeps
summing the calls it can price, and says it is a lower bound: `SessionTotals.cost_usd` is
None while `known_cost_usd` still holds the known part.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import EXIT_BUDGET, EvoError


@dataclass(frozen=True)
class Usage:
    """Tokens of one model call, as the provider reported them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    """Prompt tokens served from the provider's prompt cache (0 when not reported)."""

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class SessionTotals:
    """A consistent snapshot of a session's accounting."""

    calls: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    known_cost_usd: float
    unknown_cost_calls: int
    elapsed_s: float

    @property
    def cost_usd(self) -> float | None:
        """The total cost, or None ("unknown") when any call could not be priced."""
        return None if self.unknown_cost_calls else self.known_cost_usd

    @property
    def cost_label(self) -> str:
        if not self.unknown_cost_calls:
            return f"${self.known_cost_usd:.4f}"
        if self.known_cost_usd:
            return f"unknown (at least ${self.known_cost_usd:.4f})"
        return "unknown"


class SessionUsage:
    """Thread-safe running totals for one session; every model call is `record`ed here."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._calls = 0
        self._prompt = 0
        self._completion = 0
        self._cached = 0
        self._known_cost = 0.0
        self._unknown = 0

    def record(self, usage: Usage, cost_usd: float | None) -> None:
        with self._lock:
            self._calls += 1
            self._prompt += usage.prompt_tokens
            self._completion += usage.completion_tokens
            self._cached += usage.cached_tokens
            if cost_usd is None:
                self._unknown += 1
            else:
                self._known_cost += cost_usd

    def totals(self) -> SessionTotals:
        with self._lock:
            return SessionTotals(
                calls=self._calls,
                prompt_tokens=self._prompt,
                completion_tokens=self._completion,
                cached_tokens=self._cached,
                known_cost_usd=self._known_cost,
                unknown_cost_calls=self._unknown,
                elapsed_s=self._clock() - self._started,
            )


class BudgetExhausted(EvoError):
    """A budget limit was reached; `reason` is "steps", "cost" or "time"."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"budget exhausted: {detail}", EXIT_BUDGET)
        self.reason = reason


@dataclass(frozen=True)
class Budget:
    """Limits of one session; None means no limit. Checked in one place, before each model call."""

    max_steps: int | None = None
    """Model calls allowed in the session."""
    max_cost_usd: float | None = None
    """Dollars allowed; only priced calls count (an unknown cost cannot be enforced)."""
    max_seconds: float | None = None
    """Wall-clock seconds since the session's accounting started."""

    def check(self, session: SessionUsage) -> None:
        """Raise BudgetExhausted if another call would go past a limit."""
        t = session.totals()
        if self.max_steps is not None and t.calls >= self.max_steps:
            raise BudgetExhausted("steps", f"{t.calls} of {self.max_steps} steps used")
        if self.max_cost_usd is not None and t.known_cost_usd >= self.max_cost_usd:
            raise BudgetExhausted(
                "cost", f"${t.known_cost_usd:.4f} spent of ${self.max_cost_usd:.4f}"
            )
        if self.max_seconds is not None and t.elapsed_s >= self.max_seconds:
            raise BudgetExhausted("time", f"{t.elapsed_s:.0f}s elapsed of {self.max_seconds:.0f}s")
