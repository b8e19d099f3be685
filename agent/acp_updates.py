"""evoagent events as ACP session updates: one `UpdateMapper` per ACP session.

| event            | ACP update                                                        |
|------------------|-------------------------------------------------------------------|
| MessageDelta     | agent_message_chunk (a `Message` only when no delta came before)  |
| ToolCall         | tool_call: kind by tool name, status in_progress, locations       |
| CommandOutput    | tool_call_update: the command's output so far as text content     |
| ToolResult       | tool_call_update: completed / failed, the tool's output           |
| Phase, TestResult| agent_thought_chunk: one line ("· baseline tests: 3 passed ...")  |
| steps of a turn  | plan: the whole list again on every change (`TurnPlan`)           |
| ApprovalNeeded   | (session/request_permission: `permission()`)                      |
| the turn's change| tool_call of kind edit, one diff per file (`change()`)            |

Tool call ids are the turn's run id and the model's call id, so they stay unique in a
session whose model reuses ids. Paths in locations and diffs are absolute, as ACP asks.
Text goes to the client exact (ACP is JSON, like `--output-format json`); titles are one
bounded line. The other way, `prompt_text` and `client_mcp_servers` read what a client
sends (a prompt's content blocks, its `mcpServers`) as evoagent's own terms.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .acp_diffs import file_changes
from .events import (
    ApprovalNeeded,
    CommandOutput,
    DiffProposed,
    Event,
    Finished,
    Message,
    MessageDelta,
    Phase,
    SessionStarted,
    TestCommandChosen,
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
        self.said = ""
        """The model's text the client was sent in this turn."""
        self.plan = TurnPlan()

    def updates(self, event: Event) -> list[Any]:
        """The ACP updates for `event` (none for most bookkeeping events), then the turn's
        plan when the event changed it."""
        import acp

        updates = self._mapped(event)
        entries = self.plan.see(event)
        if entries is not None:
            updates.append(acp.update_plan(
                acp.plan_entry(content, priority="medium", status=status)
                for content, status in entries))
        return updates

    def _mapped(self, event: Event) -> list[Any]:
        import acp

        if isinstance(event, SessionStarted):
            self.run_id, self._open_call, self._output = event.run_id, None, {}
            self.said = ""
            return []
        if isinstance(event, MessageDelta):
            self._streamed = True
            self.said += event.text
            return [acp.update_agent_message_text(event.text)] if event.text else []
        if isinstance(event, Message):
            streamed, self._streamed = self._streamed, False
            if streamed or not event.text:
                return []
            self.said += event.text
            return [acp.update_agent_message_text(event.text)]
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
            return [acp.update_tool_call(call_id, content=[code(text)])] if text else []
        if isinstance(event, ToolResult):
            call_id = self.call_id(event.call_id)
            self._open_call = None
            self._output.pop(call_id, None)
            return [acp.update_tool_call(call_id, status="completed" if event.ok else "failed",
                                         content=[code(event.output)] if event.output else None)]
        if isinstance(event, Phase):
            line = event.name.replace("_", " ") + (f": {event.detail}" if event.detail else "")
            # A blank line after each: clients render thoughts as Markdown, which would
            # join single lines into one paragraph.
            return [acp.update_agent_thought_text(f"· {one_line(line, 300)}\n\n")]
        if isinstance(event, TestResult):
            line = (f"could not run: {event.not_run}" if event.not_run else
                    f"{event.passed} passed, {event.failed} failed, {event.errors} errors")
            return [acp.update_agent_thought_text(
                f"· tests (attempt {event.attempt}): {one_line(line, 200)}\n\n")]
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
        title = one_line(permission_title(event.action, event.detail), 120)
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
                                   content=[code(terminal_safe(event.detail)[:20_000],
                                                 "diff" if event.action == "edit" else "sh")]
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
                content.append(_text(change.path))
                content.append(code(change.hunks_text, "diff"))
        count = len(changes)
        title = f"Proposed change: {count} file{'s' if count != 1 else ''} (/accept or /reject)"
        return acp.start_tool_call(
            f"{run_id}:change", title, kind="edit", status="completed", content=content,
            locations=[acp.schema.ToolCallLocation(path=str(self.root / c.path))
                       for c in changes])


def prompt_text(blocks: list[Any]) -> str:
    """The request a prompt's content blocks make: its text, with embedded files as fenced
    context and links to files named by their URI."""
    parts = []
    for block in blocks:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind == "resource_link":
            parts.append(f"@{block.uri}")
        elif kind == "resource" and getattr(block.resource, "text", None) is not None:
            parts.append(f"\n<context uri={block.resource.uri!r}>\n{block.resource.text}\n"
                         "</context>\n")
    return "".join(parts).strip()


def closing_line(outcome: Any) -> str:
    """The message that ends a turn with a pending change: summary, status, tests, what next."""
    summary = (outcome.summary or "").strip()
    tests = (outcome.tests or {}).get("after") or {}
    counts = ""
    if isinstance(tests, dict) and tests and not tests.get("not_run"):
        passed, failed = (len(tests.get(k) or []) for k in ("passed", "failed"))
        counts = f"; tests: {passed} passed, {failed} failed"
    lead = f"{summary}\n\n" if summary else "\n\n"
    error = outcome.report.get("error") if isinstance(outcome.report, dict) else None
    if error:  # the model failed mid-turn: its best attempt is what is pending
        lead += f"The model failed: {one_line(str(error), 300)}\n"
    return (f"{lead}Status: {outcome.status}{counts}. The change is pending: /accept applies "
            "it to your files, /reject drops it.")


def client_mcp_servers(servers: list[Any]) -> tuple[tuple[Any, ...], list[str]]:
    """An ACP client's `mcpServers` as the person's `mcp_config.ServerDef`s (values passed as
    given), and one line per server skipped (SSE, ACP transport, a name `server__tool`
    cannot carry)."""
    from .mcp_config import PERSON, SERVER_NAME, ServerDef

    source = Path("<ACP client>")
    defs, skipped = [], []
    for server in servers:
        name = str(getattr(server, "name", ""))
        kind = getattr(server, "type", None) or "stdio"
        if not SERVER_NAME.fullmatch(name):
            skipped.append(f"skipping MCP server {one_line(name, 40)!r}: a name is 1-32 "
                           "letters, digits, '-' or single '_'")
        elif kind == "stdio":
            defs.append(ServerDef(name=name, origin=PERSON, source=source,
                                  command=server.command, args=tuple(server.args),
                                  env={e.name: e.value for e in server.env}, given_env=True))
        elif kind == "http":
            defs.append(ServerDef(name=name, origin=PERSON, source=source, url=server.url,
                                  headers={h.name: h.value for h in server.headers},
                                  given_env=True))
        else:
            skipped.append(f"skipping MCP server {name!r}: {one_line(str(kind), 20)} servers "
                           "are not supported (stdio and HTTP are)")
    return tuple(defs), skipped


class TurnPlan:
    """The kernel's steps of one turn as ACP plan entries (content, status), built from the
    events as they come, so only steps that happened or are happening appear, in order:
    locate → attempt 1 → baseline tests → tests of attempt 1 → attempt 2 → ...

    The events say when a step ends better than when it starts: the baseline tests are told
    once they ran (so they appear completed), an attempt's tests start at `DiffProposed`
    (shown only when the repository has a test command), and a refinement attempt appears
    when the kernel says why it sends the change back (`Phase("refining", reason)`), or at
    the model's first output after the tests when nothing said so. A turn that changed nothing shows its
    model step as an answer, with no test step. A step still running when the turn ends
    (cancelled, failed) is marked completed with "(stopped: STATUS)" in its content: ACP
    has no status for a step that ended unfinished. Not shown: the reproduction check after
    the last attempt (no event tells it), and the first turn's workspace set-up.
    """

    def __init__(self) -> None:
        self.entries: list[list[str]] = []
        self.tests: bool | None = None
        """The repository has a test command (None: not told yet)."""
        self._attempts = 0
        self._after_tests = False  # an attempt's tests are told, the next has not shown yet

    def see(self, event: Event) -> list[tuple[str, str]] | None:
        """The whole plan when `event` changed it, else None."""
        before = [tuple(e) for e in self.entries]
        if isinstance(event, SessionStarted):
            self.entries, self._attempts, self._after_tests = [], 0, False
        elif isinstance(event, TestCommandChosen):
            self.tests = bool(event.argv)
        elif isinstance(event, Phase) and event.name == "locating":
            self.entries.append(["Locate the code and history the request concerns",
                                 "in_progress"])
        elif isinstance(event, Phase) and event.name == "model_call":
            self._end_running()
            self._attempt("work on the request")
        elif isinstance(event, Phase) and event.name == "baseline_tests" and self.tests:
            self._end_running()
            self.entries.append([f"Baseline tests, without the change: {event.detail}",
                                 "completed"])
        elif isinstance(event, DiffProposed):
            self._end_running()
            if self.tests:
                self.entries.append([f"Tests of attempt {self._attempts}", "in_progress"])
        elif isinstance(event, TestResult):
            self._end_running()
            line = (f"could not run: {event.not_run}" if event.not_run else
                    f"{event.passed} passed, {event.failed} failed, {event.errors} errors")
            self.entries.append([one_line(f"Tests of attempt {self._attempts}: {line}", 200),
                                 "completed"])
            self._after_tests = True
        elif isinstance(event, Phase) and event.name == "refining":
            self._end_running()
            self._after_tests = False
            self._attempt(one_line(f"refine, since {event.detail}", 160) if event.detail
                          else "refine the change after the tests")
        elif isinstance(event, (MessageDelta, Message, ToolCall)) and self._after_tests:
            self._after_tests = False
            self._attempt("refine the change after the tests")
        elif isinstance(event, Finished):
            self._finish(event.status)
        after = [tuple(e) for e in self.entries]
        return after if after != before and after else None

    def _attempt(self, what: str) -> None:
        self._attempts += 1
        self.entries.append([f"Attempt {self._attempts}: {what}", "in_progress"])

    def _end_running(self) -> None:
        """The step in progress is done; a tests entry still open is replaced by its result."""
        for entry in list(self.entries):
            if entry[1] == "in_progress":
                if entry[0].startswith("Tests of attempt"):
                    self.entries.remove(entry)
                else:
                    entry[1] = "completed"

    def _finish(self, status: str) -> None:
        running = [e for e in self.entries if e[1] == "in_progress"]
        if status == "answered" and running and running[-1][0].startswith("Attempt "):
            running[-1][:] = ["Answer the request (nothing changed, so nothing to test)",
                              "completed"]
            running.pop()
        for entry in running:
            entry[:] = [f"{entry[0]} (stopped: {status})", "completed"]


def _approval_kind(action: str) -> str:
    return "execute" if action == "command" else "edit"


def permission_title(action: str, detail: str) -> str:
    """"edit src/app.py" for an edit (its diff's files), "command: pytest -q" otherwise."""
    files = re.findall(r"^\+\+\+ b/(.+)$", detail or "", re.MULTILINE)
    if action == "edit" and files:
        return f"edit {', '.join(dict.fromkeys(files))}"
    first = detail.splitlines()[0] if detail else ""
    return f"{action}: {first}"


def fenced(text: str, info: str = "") -> str:
    """`text` as a Markdown code block (clients render tool content as Markdown: a diff's
    `-`/`+` lines would become bullets), fenced by more backticks than it holds in a row."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}{'' if text.endswith(chr(10)) else chr(10)}{fence}"


def code(text: str, info: str = "") -> Any:
    """A tool call's text content as a code block (`fenced`)."""
    return _text(fenced(text, info))


def _text(text: str) -> Any:
    import acp

    return acp.tool_content(acp.text_block(text))
