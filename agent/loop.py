"""The agent loop: ask the model, run the tools it calls, until it calls `finish`.

One attempt is `run()` repeating `step()`; a step is one model call and the tools it asked
for. Limits are checked in one place (the model checks the budget before each call), and
stops are exceptions: `Submitted` when the model finishes, `BudgetExhausted` from usage.

Several `edit` calls in one response are applied together, all or none: a model that
sends three related edits and gets one wrong must not leave the other two half-applied.

The genome's hooks (agent/genome_code.py, run in the sandbox) get two points here:
`before_step` may add a labelled note before a model call, `stop` may end the attempt (and
the run) at a step boundary. Neither can extend a budget; a failing hook raises out.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .events import CostUpdate, Event, Message, MessageDelta, ToolCall, ToolResult
from .model import Model, ModelReply, ToolCallRequest
from .tools import call_tool, tool_schemas
from .tools.base import ToolContext, ToolOutput
from .tools.protocol import ToolFormatError, parse_text_tool_calls

if TYPE_CHECKING:
    from .genome_code import GenomeHooks

# A model that answers in prose instead of calling a tool is nudged this many times in a
# row before the attempt ends as if it had finished (it has nothing more to do).
MAX_IDLE_REPLIES = 3


class Cancelled(Exception):
    """The front end asked to stop (`should_stop` turned true at a step boundary)."""


class Submitted(Exception):
    """The model called `finish`; carries its summary."""

    def __init__(self, summary: str):
        super().__init__(summary)
        self.summary = summary


@dataclass
class LoopConfig:
    tools: list[str]
    """Enabled tool names (from the genome, filtered by its policy)."""
    max_steps: int = 60
    """Model calls per attempt."""
    native_tools: bool = True
    """Native tool calling; False uses the fenced text protocol."""
    conversational: bool = False
    """A reply with text and no tool call ends the attempt as an answer (a conversation's
    question, or "done" said in words); headless fix runs nudge the model to use a tool."""


@dataclass
class AttemptOutcome:
    summary: str
    steps: int
    finished: bool
    """True when the model called `finish`; False when it ran out of steps or went idle."""
    edits_applied: int = 0
    stopped: bool = False
    """True when the genome's `stop` hook ended the attempt: the run ends with it."""


@dataclass
class AgentLoop:
    model: Model
    ctx: ToolContext
    config: LoopConfig
    emit: Callable[[Event], None]
    messages: list[dict[str, Any]] = field(default_factory=list)
    should_stop: Callable[[], bool] | None = None
    """Checked before every step and tool call; true raises Cancelled."""
    hooks: GenomeHooks | None = None
    """The genome's hooks (None: none); `before_step` and `stop` are called from here."""
    attempt: int = 1
    """Which attempt this is (the solver advances it); hooks are told."""
    tests: dict[str, Any] | None = None
    """The kernel's last test summary (genome_code.tests_summary), for the `stop` hook."""

    def run(self) -> AttemptOutcome:
        """One attempt from the current messages; returns when the model finishes."""
        edits = 0
        idle = 0
        for step in range(1, self.config.max_steps + 1):
            self._check_stop()
            self._before_step(step)
            try:
                applied, acted = self.step()
            except Submitted as done:
                return AttemptOutcome(done.summary, step, True, edits)
            edits += applied
            idle = 0 if acted else idle + 1
            if self.hooks is not None and self.hooks.stop(step, self.attempt, self.tests):
                return AttemptOutcome("(stopped by the genome's stop hook)", step, False, edits,
                                      stopped=True)
            if idle >= MAX_IDLE_REPLIES:
                return AttemptOutcome("(the model stopped calling tools)", step, False, edits)
        return AttemptOutcome("(step limit reached)", self.config.max_steps, False, edits)

    def _before_step(self, step: int) -> None:
        if self.hooks is None:
            return
        note = self.hooks.before_step(step, self.attempt, self.messages)
        if note:
            self.messages.append({"role": "user", "content": note})

    def step(self) -> tuple[int, bool]:
        """One model call and its tools; returns (edit blocks applied, whether a tool ran)."""
        schemas = (
            tool_schemas(self.config.tools, self.ctx.extra_tools) if self.config.native_tools else None
        )
        reply = self.model.query(
            self.messages, schemas, on_delta=lambda text: self.emit(MessageDelta(text))
        )
        self.messages.append(reply.assistant_message())
        totals = self.model.session.totals()  # so front ends show cost as it accrues
        self.emit(CostUpdate(totals.prompt_tokens, totals.completion_tokens, totals.cost_usd))
        if reply.text:
            self.emit(Message(reply.text))
        calls = self._calls(reply)
        if calls is None:
            return 0, False
        return self._execute(calls), True

    def _check_stop(self) -> None:
        if self.should_stop is not None and self.should_stop():
            raise Cancelled("cancelled")

    # -- tool calls -------------------------------------------------------------------

    def _calls(self, reply: ModelReply) -> list[ToolCallRequest] | None:
        if reply.tool_calls:
            return reply.tool_calls
        if not self.config.native_tools and reply.text:
            try:
                parsed = parse_text_tool_calls(reply.text)
            except ToolFormatError as exc:
                self._nudge(f"Your tool call could not be read: {exc}")
                return None
            if parsed:
                return [
                    ToolCallRequest(f"text-{i}", name, args, json.dumps(args))
                    for i, (name, args) in enumerate(parsed)
                ]
        if self.config.conversational and reply.text.strip():
            raise Submitted(reply.text.strip())
        self._nudge(
            "Use a tool to continue (read, search, edit, run_tests, ...), "
            "or call finish with a summary when the work is done."
        )
        return None

    def _nudge(self, text: str) -> None:
        self.messages.append({"role": "user", "content": text})

    def _execute(self, calls: list[ToolCallRequest]) -> int:
        """Run the calls in order; edit calls of this response are applied as one batch."""
        results: dict[str, ToolOutput] = {}
        edit_calls = [c for c in calls if c.name == "edit" and c.arguments is not None
                      and "edit" in self.config.tools]
        applied = 0
        if edit_calls and len(edit_calls) < sum(c.name == "edit" for c in calls):
            # Another edit call of this response has unreadable arguments: all or nothing.
            refused = ToolOutput(
                "No edits were applied (all-or-nothing): another edit call in this response "
                "has arguments that are not a JSON object. Resend all the edits.",
                ok=False,
            )
            results.update((c.id, refused) for c in edit_calls)
        elif len(edit_calls) > 1:
            merged = {"edits": [e for c in edit_calls for e in c.arguments.get("edits", [])]}
            output = call_tool("edit", merged, self.ctx)
            for c in edit_calls:
                results[c.id] = output
            applied = len(merged["edits"]) if output.ok else 0
        finish: ToolOutput | None = None
        for call in calls:
            self._check_stop()
            self.emit(ToolCall(call.id, call.name, call.arguments or {}))
            if call.arguments is None:
                output = ToolOutput(
                    f"Arguments for {call.name} are not a JSON object: {call.parse_error}. "
                    "Nothing was done; send the call again with valid JSON.",
                    ok=False,
                )
            elif call.name not in self.config.tools:
                # Only the tools this attempt offers: a read-only turn's model cannot reach
                # `edit` by naming it, nor any model a tool its genome disabled.
                output = ToolOutput(
                    f"{call.name} is not available here (available: "
                    f"{', '.join(self.config.tools)}).", ok=False)
            elif call.id in results:
                output = results[call.id]
            else:
                self.ctx.current_call_id = call.id
                output = call_tool(call.name, call.arguments, self.ctx)
                if call.name == "edit" and output.ok:
                    applied += len(call.arguments.get("edits", []))
            self.emit(ToolResult(call.id, call.name, output.text, output.ok))
            self._answer(call, output)
            if output.is_finish:
                finish = output
        if finish is not None:
            raise Submitted(str((finish.data or {}).get("summary", "")))
        return applied

    def _answer(self, call: ToolCallRequest, output: ToolOutput) -> None:
        if self.config.native_tools:
            self.messages.append(
                {"role": "tool", "tool_call_id": call.id, "content": output.text or "(no output)"}
            )
        else:
            self.messages.append(
                {"role": "user", "content": f"Result of {call.name}:\n{output.text}"}
            )
