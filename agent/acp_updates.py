"""evoagent events as ACP session updates: one `UpdateMapper` per ACP session.

| event            | ACP update                                                        |
|------------------|-------------------------------------------------------------------|
| MessageDelta     | agent_message_chunk (a `Message` only when no delta came before)  |
| ToolCall         | tool_call: kind by tool name, status in_progress, locations       |
| CommandOutput    | tool_call_update: the command's output so far as text content     |
| ToolResult       | tool_call_update: completed / failed, the tool's output           |
| Phase, TestResult| agent_thought_chunk: one line ("· baseline tests: 3 passed ...")  |
| ApprovalNeeded   | (session/request_permission: `permission()`)                      |
| the turn's change| tool_call of kind edit, one diff per file (`change()`)            |

Tool call ids are the turn's run id and the model's call id, so they stay unique in a
session whose model reuses ids. Paths in locations and diffs are absolute, as ACP asks.
Text goes to the client exact (ACP is JSON, like `--output-format json`); titles are one
bounded line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .acp_diffs import file_changes
from .events import (
    ApprovalNeeded,
    CommandOutput,
    Event,
    Message,
    MessageDelta,
    Phase,
    SessionStarted,
    TestResult,
    ToolCall,
    ToolResult,
)
from .terminal_text import one_line, terminal_safe

TOOL_KINDS = {
    "read": "read", "repo_map": "read", "outline": "read", "load_skill": "read",
    "search": "search", "locate": "search", "recall": "search",
    "edit": "edit", "write": "edit",
    "run": "execute", "run_tests": "execute",
    "finish": "think",
}
"""ACP's ToolKind by evoagent tool name; any other (a genome's own tool) is "other"."""

MAX_OUTPUT_CHARS = 20_000
"""A command's live output shown in its tool call: the last this many characters."""

ALLOW_ONCE, ALLOW_ALWAYS, REJECT = "allow_once", "allow_always", "reject_once"
"""Permission option ids (the same as their ACP kinds)."""


def tool_kind(name: str) -> str:
    return TOOL_KINDS.get(name, "other")


def tool_title(name: str, arguments: dict[str, Any]) -> str:
    """"run: pytest -q", "edit calc.py", "search: clamp" — one bounded line."""
    paths = argument_paths(arguments)
    if name == "run" and arguments.get("command"):
        return one_line(f"run: {arguments['command']}", 120)
    if paths:
        return one_line(f"{name} {', '.join(paths)}", 120)
    for key in ("pattern", "query", "name"):
        if isinstance(arguments.get(key), str):
            return one_line(f"{name}: {arguments[key]}", 120)
    return one_line(name, 120)


def argument_paths(arguments: dict[str, Any]) -> list[str]:
    """The files a call names: `path` (read, write) and each edit's `path`."""
    found: list[str] = []
    if isinstance(arguments.get("path"), str) and arguments["path"]:
        found.append(arguments["path"])
    for edit in arguments.get("edits") or []:
        if isinstance(edit, dict) and isinstance(edit.get("path"), str):
            found.append(edit["path"])
    return list(dict.fromkeys(found))


class UpdateMapper:
    """Turns one session's events into ACP update models (imported lazily: `acp` is only
    needed by `evoagent acp`)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.run_id = ""
        self._open_call: str | None = None
        self._output: dict[str, str] = {}
        self._streamed = False  # a delta came since the last complete message

    def updates(self, event: Event) -> list[Any]:
        """The ACP updates for `event` (none for most bookkeeping events)."""
        import acp

        if isinstance(event, SessionStarted):
            self.run_id, self._open_call, self._output = event.run_id, None, {}
            return []
        if isinstance(event, MessageDelta):
            self._streamed = True
            return [acp.update_agent_message_text(event.text)] if event.text else []
        if isinstance(event, Message):
            streamed, self._streamed = self._streamed, False
            return [] if streamed or not event.text else [acp.update_agent_message_text(event.text)]
        if isinstance(event, ToolCall):
            call_id = self._open_call = self.call_id(event.call_id)
            return [acp.start_tool_call(
                call_id, tool_title(event.name, event.arguments), kind=tool_kind(event.name),
                status="in_progress", locations=self.locations(event.arguments),
                raw_input=event.arguments)]
        if isinstance(event, CommandOutput):
            call_id = self.call_id(event.call_id)
            text = (self._output.get(call_id, "") + event.text)[-MAX_OUTPUT_CHARS:]
            self._output[call_id] = text
            return [acp.update_tool_call(call_id, content=[_text(text)])] if text else []
        if isinstance(event, ToolResult):
            call_id = self.call_id(event.call_id)
            self._open_call = None
            self._output.pop(call_id, None)
            return [acp.update_tool_call(call_id, status="completed" if event.ok else "failed",
                                         content=[_text(event.output)] if event.output else None)]
        if isinstance(event, Phase):
            line = event.name.replace("_", " ") + (f": {event.detail}" if event.detail else "")
            return [acp.update_agent_thought_text(f"· {one_line(line, 200)}\n")]
        if isinstance(event, TestResult):
            line = (f"could not run: {event.not_run}" if event.not_run else
                    f"{event.passed} passed, {event.failed} failed, {event.errors} errors")
            return [acp.update_agent_thought_text(
                f"· tests (attempt {event.attempt}): {one_line(line, 200)}\n")]
        return []

    def call_id(self, model_call_id: str) -> str:
        return f"{self.run_id}:{model_call_id}"

    def locations(self, arguments: dict[str, Any]) -> list[Any]:
        from acp.schema import ToolCallLocation

        line = arguments.get("start_line")
        line = line if isinstance(line, int) and not isinstance(line, bool) and line > 0 else None
        return [ToolCallLocation(path=str(self.root / p), line=line)
                for p in argument_paths(arguments)]

    def permission(self, event: ApprovalNeeded) -> tuple[list[Any], Any, list[Any]]:
        """(updates to send first, the tool call to ask about, the options) for an approval:
        allow once, allow always (only when the approver may remember a rule), reject."""
        import acp
        from acp.schema import PermissionOption, ToolCallUpdate

        before = []
        call_id = self._open_call
        if call_id is None:  # not inside a tool call: give the question one of its own
            call_id = self.call_id(f"approval-{id(event)}")
            before.append(acp.start_tool_call(call_id, one_line(event.action, 60),
                                              kind=_approval_kind(event.action),
                                              status="pending"))
        # A short title (clients rename the tool call with it); the whole detail (a diff,
        # a command) goes in the content.
        title = one_line(f"{event.action}: {event.detail.splitlines()[0] if event.detail else ''}",
                         120)
        if event.notice:
            title = one_line(f"{title} ({event.notice})", 240)
        options = [PermissionOption(option_id=ALLOW_ONCE, name="Allow once", kind="allow_once")]
        if event.remember:
            options.append(PermissionOption(
                option_id=ALLOW_ALWAYS, name=one_line(f"Allow always: {event.remember}", 120),
                kind="allow_always"))
        options.append(PermissionOption(option_id=REJECT, name="Reject", kind="reject_once"))
        tool_call = ToolCallUpdate(tool_call_id=call_id, title=title,
                                   kind=_approval_kind(event.action), status="pending",
                                   content=[_text(terminal_safe(event.detail)[:20_000])]
                                   if event.detail else None)
        return before, tool_call, options

    def change(self, run_id: str, patch: str) -> Any:
        """The pending change as one completed edit tool call with a diff per file."""
        import acp

        changes = file_changes(self.root, patch)
        content = []
        for change in changes:
            where = str(self.root / change.path)
            if change.whole:
                content.append(acp.tool_diff_content(where, change.new_text or "",
                                                     change.old_text))
            else:
                content.append(_text(f"{change.path}\n{change.hunks_text}"))
        count = len(changes)
        title = f"Proposed change: {count} file{'s' if count != 1 else ''} (/accept or /reject)"
        return acp.start_tool_call(
            f"{run_id}:change", title, kind="edit", status="completed", content=content,
            locations=[acp.schema.ToolCallLocation(path=str(self.root / c.path))
                       for c in changes])


def _approval_kind(action: str) -> str:
    return "execute" if action == "command" else "edit"


def _text(text: str) -> Any:
    import acp

    return acp.tool_content(acp.text_block(text))
