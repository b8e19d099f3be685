"""Who may let the agent change files and run commands: the approval seam.

The edit, write and run tools call `ToolContext.approve(action, detail)` before acting; a
refusal means nothing was applied or run. `Approver` builds that callable from an
`ApprovalMode` that a front end may switch at any time: when the mode says a person must
decide, it emits an `ApprovalNeeded` event and blocks (on the agent's thread) until the
front end answers it, the wait times out (a refusal) or the request is cancelled.
Headless runs use `full_auto`, so nothing ever waits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from enum import StrEnum

from .events import ApprovalNeeded, Event

ACTIONS = ("edit", "write", "command")
"""What the tools ask about: `edit` (search/replace), `write` (a whole file), `command` (run)."""


class ApprovalMode(StrEnum):
    ASK = "ask"
    """Ask before every edit, write and command."""
    AUTO_EDITS = "auto_edits"
    """Edits and writes go through; commands are asked."""
    FULL_AUTO = "full_auto"
    """Never ask (headless; the sandbox is the safety)."""

    def needs_approval(self, action: str) -> bool:
        """True when `action` must be put to a person under this mode."""
        if self is ApprovalMode.FULL_AUTO:
            return False
        if self is ApprovalMode.AUTO_EDITS:
            return action == "command"
        return True


class Approver:
    """A thread-safe approval policy: `approver.approve` is what `ToolContext.approve` takes.

    `emit` receives each `ApprovalNeeded`; the front end calls `event.answer(bool)` from any
    thread. `timeout` (seconds, None = forever) turns an unanswered request into a refusal.
    """

    def __init__(
        self,
        mode: ApprovalMode = ApprovalMode.ASK,
        emit: Callable[[Event], None] = lambda e: None,
        timeout: float | None = None,
    ):
        self._mode = ApprovalMode(mode)
        self._emit = emit
        self._timeout = timeout
        self._lock = threading.Lock()
        self._pending: list[ApprovalNeeded] = []

    @property
    def mode(self) -> ApprovalMode:
        with self._lock:
            return self._mode

    def set_mode(self, mode: ApprovalMode | str) -> None:
        """Switch the mode; applies to the next request (a pending one keeps waiting)."""
        with self._lock:
            self._mode = ApprovalMode(mode)

    def approve(self, action: str, detail: str) -> bool:
        """True when `action` may proceed; emits ApprovalNeeded and blocks when asking."""
        if not self.mode.needs_approval(action):
            return True
        event = ApprovalNeeded(action, detail)
        with self._lock:
            self._pending.append(event)
        try:
            self._emit(event)
            return event.wait(self._timeout)
        finally:
            with self._lock:
                self._pending = [e for e in self._pending if e is not event]

    def refuse_pending(self) -> None:
        """Answer every request still waiting with a refusal (used by cancel)."""
        with self._lock:
            pending = list(self._pending)
        for event in pending:
            event.answer(False)
