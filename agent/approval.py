"""Who may let the agent change files and run commands: the approval seam.

The edit, write and run tools call `ToolContext.approve(action, detail)` before acting; a
refusal means nothing was applied or run. `Approver` builds that callable from an
`ApprovalMode` that a front end may switch at any time: when the mode says a person must
decide, it emits an `ApprovalNeeded` event and blocks (on the agent's thread) until the
front end answers it, the wait times out (a refusal) or the request is cancelled.
Headless runs use `full_auto`, so nothing ever waits.

Under `ask` and `auto_edits` two things spare the question (agent/approval_rules.py):
read-only commands (`git status`, `ls`, `grep` ...), and the rules a person made by
answering "allow always", kept per repository in `.evoagent/approvals.json`. Both are
consulted only here, after the tools applied `policy.toml`, so neither can permit what the
policy refuses. The read-only tools (read, search, locate, recall, repo_map) and run_tests
never call the approver at all.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from enum import StrEnum

from .approval_rules import ApprovalRules, is_read_only, rule_for
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

    `emit` receives each `ApprovalNeeded`; the front end calls `event.answer(allowed,
    always=...)` from any thread. `timeout` (seconds, None = forever) turns an unanswered
    request into a refusal. `rules` are the repository's "allow always" rules
    (`ApprovalRules.for_repo(state_dir)`); without them the rules last for this approver.
    """

    def __init__(
        self,
        mode: ApprovalMode = ApprovalMode.ASK,
        emit: Callable[[Event], None] = lambda e: None,
        timeout: float | None = None,
        rules: ApprovalRules | None = None,
    ):
        self._mode = ApprovalMode(mode)
        self._emit = emit
        self._timeout = timeout
        self.rules = rules if rules is not None else ApprovalRules()
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
        """True when `action` may proceed; emits ApprovalNeeded and blocks when asking.

        Callers have already applied the policy: this decides only whether a person must
        say yes, and an "allow always" answer stores its rule for the next request."""
        if not self.mode.needs_approval(action):
            return True
        if action == "command" and is_read_only(detail):
            return True
        if self.rules.allows(action, detail):
            return True
        rule = rule_for(action, detail)
        event = ApprovalNeeded(action, detail, remember=rule.label if rule else "",
                               notice=self.rules.take_warning() or "")
        with self._lock:
            self._pending.append(event)
        try:
            self._emit(event)
            allowed = event.wait(self._timeout)
        finally:
            with self._lock:
                self._pending = [e for e in self._pending if e is not event]
        if allowed and event.always and rule is not None:
            self.rules.add(rule)
        return allowed

    def refuse_pending(self) -> None:
        """Answer every request still waiting with a refusal (used by cancel)."""
        with self._lock:
            pending = list(self._pending)
        for event in pending:
            event.answer(False)
