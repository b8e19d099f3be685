"""The one seam between the agent and any front end: a session yields typed events.

The TUI renders them, headless `fix` prints them as JSONL (`to_json`), the trajectory
file stores them. An `ApprovalNeeded` carries its own answer slot: the front end (a
person in the TUI, a policy headless) calls `answer()`, the agent thread waits on it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


@dataclass
class Event:
    kind: ClassVar[str] = "event"
    at: float = field(default_factory=time.time, kw_only=True)

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        return {"type": self.kind, **data}


@dataclass
class SessionStarted(Event):
    kind: ClassVar[str] = "session_started"
    run_id: str
    task: str
    model: str


@dataclass
class MessageDelta(Event):
    """A piece of streamed assistant text."""

    kind: ClassVar[str] = "message_delta"
    text: str


@dataclass
class Message(Event):
    """A complete assistant message (after its deltas)."""

    kind: ClassVar[str] = "message"
    text: str


@dataclass
class ToolCall(Event):
    kind: ClassVar[str] = "tool_call"
    call_id: str
    name: str
    arguments: dict[str, Any]


@dataclass
class ToolResult(Event):
    kind: ClassVar[str] = "tool_result"
    call_id: str
    name: str
    output: str
    ok: bool = True


@dataclass
class CommandRun(Event):
    """A command run in the sandbox, with its bounded output."""

    kind: ClassVar[str] = "command_run"
    command: str
    exit_code: int | None
    output: str
    seconds: float
    isolated: bool


@dataclass
class CommandOutput(Event):
    """Output of a command still running (`call_id` is its tool call), streamed in pieces
    so a front end can show it live; `CommandRun` still follows with the bounded whole."""

    kind: ClassVar[str] = "command_output"
    call_id: str
    text: str
    elapsed: float = 0.0


@dataclass
class Phase(Event):
    """A step of setting up or checking a run that a person would otherwise wait through
    in silence: "model_check", "workspace", "baseline_tests", "locating", "model_call",
    "compacting" ... `detail` is one readable line ("12 passed, 1 failed")."""

    kind: ClassVar[str] = "phase"
    name: str
    detail: str = ""


@dataclass
class ContextCompacted(Event):
    """The conversation was shrunk to fit the model's input limit: `how` is "trimmed" (old
    tool results shortened), "summarized" (older turns replaced by a summary), "dropped"
    (older turns left out with a note: no summary could be written) or "manual" (/compact);
    tokens are estimates before and after."""

    kind: ClassVar[str] = "context_compacted"
    how: str
    tokens_before: int
    tokens_after: int
    limit: int = 0
    messages_dropped: int = 0


@dataclass
class DiffProposed(Event):
    kind: ClassVar[str] = "diff_proposed"
    diff: str
    attempt: int


@dataclass
class TestCommandChosen(Event):
    """Which command the kernel runs the repository's tests with, and why: `source` is
    "config" or the file that revealed it; empty `argv` and `source` when none was found."""

    __test__ = False  # not a pytest test class
    kind: ClassVar[str] = "test_command"
    argv: list[str] = field(default_factory=list)
    source: str = ""


@dataclass
class PatchFiltered(Event):
    """The patch policy changed what an attempt delivers or what decides it: `dropped` are
    sections never delivered ("path: reason"), `left_out` test-infrastructure changes kept in
    the patch but left out of the deciding test run."""

    kind: ClassVar[str] = "patch_filtered"
    attempt: int
    dropped: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)


@dataclass
class TestResult(Event):
    __test__ = False  # not a pytest class
    kind: ClassVar[str] = "test_result"
    attempt: int
    passed: int
    failed: int
    errors: int
    failing: list[str] = field(default_factory=list)
    digest: str = ""
    not_run: str = ""
    """Why the tests could not run (no verdict), one line; empty when they ran."""


@dataclass
class CostUpdate(Event):
    kind: ClassVar[str] = "cost_update"
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None  # None: the model has no known price


@dataclass
class ApprovalNeeded(Event):
    """The agent wants to do something a policy says a person (or rule) must allow.

    `remember` is what an "allow always" answer would remember: the action (`edit`) or the
    command prefix (`python -m pytest`); empty when none may be offered (a compound
    command, say). `notice` is one line the person should see with the question (the
    repository's approval rules could not be read). The front end calls
    `answer(allowed, always=...)` once, from any thread; the approver stores the rule.
    """

    kind: ClassVar[str] = "approval_needed"
    action: str  # "edit" | "write" | "command"
    detail: str
    remember: str = ""
    notice: str = ""
    _answer: list[tuple[bool, bool]] = field(default_factory=list, repr=False)
    _ready: threading.Event = field(default_factory=threading.Event, repr=False)

    def answer(self, allowed: bool, always: bool = False) -> None:
        """Allow or deny; `always` (with `allowed`, and only when `remember` is offered)
        asks for the rule to be stored. Only the first answer counts."""
        self._answer.append((bool(allowed), bool(allowed and always and self.remember)))
        self._ready.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until answered; an unanswered request (timeout) is a refusal."""
        return self._ready.wait(timeout) and bool(self._answer and self._answer[0][0])

    @property
    def always(self) -> bool:
        """True when the first answer allowed it always."""
        return bool(self._answer and self._answer[0][1])

    def to_json(self) -> dict[str, Any]:
        return {"type": self.kind, "at": self.at, "action": self.action, "detail": self.detail,
                "remember": self.remember}


@dataclass
class Finished(Event):
    kind: ClassVar[str] = "finished"
    status: str  # "fixed" | "not_fixed" | "budget_exhausted" | "error"
    summary: str = ""
    exit_code: int = 0
