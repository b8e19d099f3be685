"""The conversation: requests, streamed answers, tool calls, sandbox commands, notes.

It renders events it is given (attributes down) and keeps no session state: the last
assistant message (to stream into) and open tool calls (to attach results to).
"""

from __future__ import annotations

from typing import Any

from evoagent.agent import events as ev
from evoagent.sandbox.testdetect import TestCommand, describe_test_command
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widget import AwaitMount
from textual.widgets import Static

from ..state import phase_line
from .assistant_message import AssistantMessage
from .command_output import CommandOutput
from .tool_call import ToolCallView

WARNING_PHASES = frozenset({"mcp", "restore"})
"""`Phase` events that are warnings, shown as notes in the conversation too."""


class UserRequest(Static):
    DEFAULT_CSS = """
    UserRequest { margin: 1 0 0 0; padding: 0 1; border-left: thick $primary;
                  background: $boost; color: $text; }
    """


class Note(Static):
    DEFAULT_CSS = """
    Note { padding: 0 1; color: $text-muted; }
    Note.-error { color: $error; }
    Note.-success { color: $success; }
    """


class Conversation(VerticalScroll):
    DEFAULT_CSS = """
    Conversation { height: 1fr; padding: 0 1; scrollbar-size-vertical: 1; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._answer: AssistantMessage | None = None
        self._calls: dict[str, ToolCallView] = {}

    def _add(self, widget) -> AwaitMount:
        """Mount at the end (in call order) and follow the end when it was in view."""
        at_end = self.is_vertical_scroll_end or self.max_scroll_y == 0
        mounted = self.mount(widget)
        if at_end:
            self.call_after_refresh(self.scroll_end, animate=False)
        return mounted

    def add_request(self, text: str) -> AwaitMount:
        self._answer = None
        return self._add(UserRequest(Text(text), classes="user-request"))

    def add_note(self, text: str, kind: str = "") -> AwaitMount:
        note = Note(Text(text))
        if kind:
            note.add_class(f"-{kind}")
        return self._add(note)

    def end_live(self) -> None:
        """Stop every live command view (its command ended, or the request did)."""
        for view in self._calls.values():
            view.end_live()

    async def add_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.MessageDelta):
            if self._answer is None:
                self._answer = AssistantMessage()
                await self._add(self._answer)
            await self._answer.add_text(event.text)
            if self.is_vertical_scroll_end or self.max_scroll_y <= self.scroll_y + 3:
                self.call_after_refresh(self.scroll_end, animate=False)
        elif isinstance(event, ev.Message):
            if self._answer is None and event.text.strip():
                await self._add(AssistantMessage(event.text))
            self._answer = None
        elif isinstance(event, ev.ToolCall):
            self._answer = None
            view = ToolCallView(event.call_id, event.name, event.arguments)
            self._calls[event.call_id] = view
            await self._add(view)
        elif isinstance(event, ev.CommandOutput):
            view = self._calls.get(event.call_id)
            if view is not None:
                following = self.is_vertical_scroll_end or self.max_scroll_y == 0
                view.add_live(event.text, event.elapsed)
                if following:
                    self.call_after_refresh(self.scroll_end, animate=False)
        elif isinstance(event, ev.ToolResult):
            view = self._calls.pop(event.call_id, None)
            if view is not None:
                view.set_result(event.output, event.ok)
        elif isinstance(event, ev.CommandRun):
            self._answer = None
            # Commands run one at a time: the one shown live is the one that just ended.
            self.end_live()
            await self._add(CommandOutput(event.command, event.exit_code, event.output,
                                          event.seconds, event.isolated))
        elif isinstance(event, ev.TestResult) and event.not_run:
            await self.add_note(f"tests (attempt {event.attempt}): could not run — "
                                f"{event.not_run}", "error")
        elif isinstance(event, ev.TestResult):
            kind = "success" if not (event.failed or event.errors) else "error"
            await self.add_note(f"tests (attempt {event.attempt}): {event.passed} passed, "
                                f"{event.failed} failed, {event.errors} errors", kind)
        elif isinstance(event, ev.TestCommandChosen):
            command = TestCommand.of(event.argv, event.source) if event.argv else None
            await self.add_note(f"tests: {describe_test_command(command)}")
        elif isinstance(event, ev.PatchFiltered):
            for line in event.dropped:
                await self.add_note(f"dropped from the patch: {line}", "error")
            for line in event.left_out:
                await self.add_note(f"left out of the verdict (test infrastructure): {line}",
                                    "error")
        elif isinstance(event, ev.Phase) and event.name in WARNING_PHASES:
            # A warning (a server that could not start, a saved change that no longer
            # applies) must outlive the status bar's phase, which the next step replaces.
            await self.add_note(phase_line(event.name, event.detail), "error")
        elif isinstance(event, ev.ContextCompacted):
            dropped = (f", {event.messages_dropped} older message(s) summarized"
                       if event.messages_dropped else "")
            await self.add_note(f"context {event.how}: ~{event.tokens_before:,} → "
                                f"~{event.tokens_after:,} tokens"
                                + (f" (limit {event.limit:,})" if event.limit else "") + dropped)
        elif isinstance(event, ev.DiffProposed):
            files = sum(1 for line in event.diff.splitlines() if line.startswith("diff --git"))
            await self.add_note(f"diff proposed (attempt {event.attempt}): {files} file(s)")
        elif isinstance(event, ev.ApprovalNeeded):
            await self.add_note(f"approval needed: {event.action} {event.detail.splitlines()[0] if event.detail else ''}")
        elif isinstance(event, ev.Finished):
            self.end_live()
            kind = "success" if event.status == "fixed" else ""
            await self.add_note(f"finished: {event.status}", kind)
