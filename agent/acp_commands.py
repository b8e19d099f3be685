"""The slash commands `evoagent acp` advertises as ACP available commands.

| command          | what it does                                                          |
|------------------|-----------------------------------------------------------------------|
| /accept [IDS]    | `Session.accept` of the pending change (through the editor's fs       |
|                  | methods when it offers them: agent/acp_files.py), or of some hunks    |
| /reject, /undo   | `Session.discard`, `Session.undo` (through the writer that applied)   |
| /compact         | `Session.compact`                                                     |
| /recall QUERY    | memory's `recall` and `recall_knowledge`, as `evoagent recall` shows  |
| /locate QUERY    | memory's `locate`, as `evoagent locate` shows (code only, unmined)    |
| /mine            | memory's `mine` of the new history, as `evoagent mine`; progress live |

(/ask is a turn, not a command: acp_server.py runs it.) Recall, locate and mine answer as a
tool call (kind search, search, other) whose content is their result as text; the others
answer with one message line. Everything slow runs in a worker thread, so other sessions go
on meanwhile; a failure is one line (`evoagent: ...`), never a traceback.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from evoagent.memory.errors import MemoryUserError

from .acp_updates import code
from .errors import EvoError
from .memory_text import locate_lines, recall_lines
from .patches import FileAccess, StaleFile
from .terminal_text import one_line

COMMANDS = {
    "accept": ("Apply the pending change to your files (all, or the hunk ids given)",
               "hunk ids, e.g. 0:1 2 (optional)"),
    "reject": ("Drop the pending change", None),
    "undo": ("Put back the files of the last accepted change", None),
    "compact": ("Summarize the conversation's older turns", None),
    "ask": ("Ask a question: a read-only turn that changes nothing", "your question"),
    "recall": ("Search the mined history for past commits like the query",
               "what to look for, e.g. clamp upper bound"),
    "locate": ("Rank the files and symbols a description most likely concerns (no model)",
               "an issue or a description"),
    "mine": ("Mine the repository's new git history into evoagent's memory", None),
}
"""Slash commands a prompt may start with: name -> (description, input hint)."""

RESULTS = 10
"""Results /recall and /locate show (the CLI's default -k)."""

PROGRESS_INTERVAL = 0.25
"""Least seconds between two progress updates of /mine."""

NO_MEMORY = "No memory yet: run /mine to mine this repository's history first."


class Outbox(Protocol):
    """What a command needs of the ACP agent (acp_server.EvoAcpAgent)."""

    def send(self, session_id: str, update: Any) -> None:
        """Queue an update (event loop thread)."""

    def send_threadsafe(self, session_id: str, update: Any) -> None:
        """Queue an update from a worker thread."""

    async def flush(self) -> None:
        """Wait until every queued update went out."""

    def client_files(self, session_id: str, root: Path) -> FileAccess | None:
        """The client's fs methods, when it offers reading and writing text files."""


def split_command(text: str) -> tuple[str | None, str]:
    """("accept", "0:1 2") for "/accept 0:1 2"; (None, text) when it is no known command."""
    if not text.startswith("/"):
        return None, text
    head, _, rest = text[1:].partition(" ")
    name = head.strip().lower()
    return (name, rest.strip()) if name in COMMANDS else (None, text)


def unknown_command(text: str) -> str | None:
    """The reply to "/name ..." when `name` is no command (a typo must not become a request
    the model acts on); None when `text` is a command or no command at all ("/usr/bin is
    missing" names a path, not a command)."""
    found = re.match(r"/([A-Za-z][A-Za-z0-9_-]*)(?=\s|$)", text)
    if found is None or found.group(1).lower() in COMMANDS:
        return None
    known = " ".join(f"/{name}" for name in COMMANDS)
    return (f"/{one_line(found.group(1), 40)} is not a command (commands: {known}); nothing "
            "was sent to the model. To ask it something, write it without the leading /.")


def commands_update() -> Any:
    from acp.helpers import update_available_commands
    from acp.schema import AvailableCommand, AvailableCommandInput, UnstructuredCommandInput

    return update_available_commands(
        AvailableCommand(name=name, description=about,
                         input=AvailableCommandInput(root=UnstructuredCommandInput(hint=hint))
                         if hint else None)
        for name, (about, hint) in COMMANDS.items())


async def run_command(out: Outbox, session_id: str, state: Any, name: str, rest: str) -> None:
    """Run `/name rest` for the session `state` (acp_server.AcpSession); its reply and
    updates are sent before this returns."""
    import acp

    handler = HANDLERS[name]
    try:
        reply = await handler(out, session_id, state, rest)
    except EvoError as exc:
        reply = f"evoagent: {exc.message}"
    except MemoryUserError as exc:
        reply = f"evoagent: {exc.one_line()}"
    await out.flush()
    if reply:
        out.send(session_id, acp.update_agent_message_text(reply))
        await out.flush()


# -- the pending change -----------------------------------------------------------------------


async def _accept(out: Outbox, session_id: str, state: Any, rest: str) -> str:
    if state.pending_run is None:
        return "There is no pending change to accept."
    files = out.client_files(session_id, state.session.ctx.root)
    try:
        result = await asyncio.to_thread(state.session.accept, state.pending_run,
                                         rest.split() or None, files=files)
    except StaleFile as exc:
        return (f"{exc.path}: your editor holds a text the change no longer fits (edited "
                "since it was proposed?): save or revert it, then /accept again. Nothing was "
                "written.")
    state.pending_run = None
    paths = ", ".join(result.paths)
    them = "it" if len(result.paths) == 1 else "them"
    if result.written_by == "editor":
        return f"Written through your editor: {paths}. /undo puts {them} back."
    if files is not None:
        return (f"Applied to your files with git apply, not through your editor "
                f"({result.not_through_editor}): {paths}. /undo puts {them} back.")
    return f"Applied to your files: {paths}. /undo puts {them} back."


async def _reject(out: Outbox, session_id: str, state: Any, rest: str) -> str:
    if state.pending_run is None:
        return "There is no pending change to reject."
    await asyncio.to_thread(state.session.discard, state.pending_run)
    state.pending_run = None
    return "Dropped the pending change; your files are as they were."


async def _undo(out: Outbox, session_id: str, state: Any, rest: str) -> str:
    paths = await asyncio.to_thread(state.session.undo)
    return f"Put back {', '.join(paths)}."


async def _compact(out: Outbox, session_id: str, state: Any, rest: str) -> str:
    done = await asyncio.to_thread(state.session.compact)
    return ("Nothing to compact yet." if done is None else
            f"Compacted the conversation: about {done.tokens_before} → {done.tokens_after} "
            "tokens.")


# -- memory -----------------------------------------------------------------------------------


async def _recall(out: Outbox, session_id: str, state: Any, rest: str) -> str:
    if not rest:
        return "Usage: /recall QUERY (words of what you look for)."
    if not await asyncio.to_thread(_mined, state.session):
        return NO_MEMORY
    ctx = state.session.ctx
    return await _as_tool_call(out, session_id, "recall", "search", rest,
                               lambda: recall_text(ctx, rest))


async def _locate(out: Outbox, session_id: str, state: Any, rest: str) -> str:
    if not rest:
        return "Usage: /locate QUERY (an issue, or a description of the change)."
    mined = await asyncio.to_thread(_mined, state.session)
    ctx = state.session.ctx
    return await _as_tool_call(out, session_id, "locate", "search", rest,
                               lambda: locate_text(ctx, rest, mined))


async def _mine(out: Outbox, session_id: str, state: Any, rest: str) -> str:
    import acp

    ctx = state.session.ctx
    call_id = f"mine-{uuid.uuid4().hex[:8]}"
    out.send(session_id, acp.start_tool_call(call_id, "mine the repository's history",
                                             kind="other", status="in_progress"))
    progress = _MineProgress(out, session_id, call_id)
    try:
        text = await asyncio.to_thread(mine_text, ctx, progress)
    except (EvoError, MemoryUserError) as exc:
        _failed(out, session_id, call_id, exc)
        return ""
    await out.flush()  # the last progress update goes before the result
    out.send(session_id, acp.update_tool_call(call_id, status="completed",
                                              content=[_text(text)]))
    return ""


def recall_text(ctx: Any, query: str, k: int = RESULTS) -> str:
    """What `evoagent recall QUERY` prints: past commits, then approved fixes."""
    from evoagent.memory.search import recall, recall_knowledge

    hits = recall(ctx.store, query, k=k)
    known = recall_knowledge(ctx.knowledge, query, k=k)
    return "\n".join([*([] if hits else ["no matching memories"]), *recall_lines(hits, known)])


def locate_text(ctx: Any, query: str, mined: bool, k: int = RESULTS) -> str:
    """What `evoagent locate QUERY` prints; without memory, from the code alone (said so)."""
    from evoagent.memory.locate import locate

    if not ctx.has_commits():
        raise EvoError("this repository has no commits yet: there is no code to locate in")
    result = locate(ctx.root, query, store=ctx.store if mined else None,
                    cache_dir=ctx.state.cache_dir, k=k,
                    knowledge=ctx.knowledge if mined else None)
    lines = [] if mined else ["(no memory yet: ranked from the code alone; /mine adds the "
                              "history's evidence)"]
    return "\n".join([*lines, *locate_lines(result, k)])


def mine_text(ctx: Any, progress: Callable[[int, int], None]) -> str:
    """`evoagent mine` (incremental: only commits the store lacks) and its closing line."""
    from evoagent.memory.mine import mine

    result = mine(ctx.root, ctx.store, progress=progress, batch_size=ctx.settings.mine_batch)
    if result.empty:
        return "no commits yet: nothing to mine"
    line = (f"stored {result.stored} new commit(s), {result.skipped} already known, "
            f"{result.total} in history ({result.seconds:.1f}s)")
    if result.shallow:
        line += "\nnote: this is a shallow clone; only the history present was mined"
    return line


class _MineProgress:
    """`mine`'s progress(done, todo) as tool_call_updates, at most one per interval (the
    first and the last always)."""

    def __init__(self, out: Outbox, session_id: str, call_id: str):
        self.out, self.session_id, self.call_id = out, session_id, call_id
        self.last = 0.0

    def __call__(self, done: int, todo: int) -> None:
        import acp

        now = time.monotonic()
        if 0 < done < todo and now - self.last < PROGRESS_INTERVAL:
            return
        self.last = now
        self.out.send_threadsafe(self.session_id, acp.update_tool_call(
            self.call_id, content=[_text(f"mining: {done}/{todo} new commits")]))


def _mined(session: Any) -> bool:
    return session.status().memory_count > 0


async def _as_tool_call(out: Outbox, session_id: str, name: str, kind: str, query: str,
                        compute: Callable[[], str]) -> str:
    """Show `compute()` (run in a worker thread) as one tool call's text content."""
    import acp

    call_id = f"{name}-{uuid.uuid4().hex[:8]}"
    out.send(session_id, acp.start_tool_call(call_id, one_line(f"{name}: {query}", 120),
                                             kind=kind, status="in_progress",
                                             raw_input={"query": query}))
    try:
        text = await asyncio.to_thread(compute)
    except (EvoError, MemoryUserError) as exc:
        _failed(out, session_id, call_id, exc)
        return ""
    out.send(session_id, acp.update_tool_call(call_id, status="completed",
                                              content=[code(text)]))
    return ""


def _failed(out: Outbox, session_id: str, call_id: str, exc: Exception) -> None:
    import acp

    line = exc.one_line() if isinstance(exc, MemoryUserError) else str(exc)
    if isinstance(exc, EvoError):
        line = exc.message
    out.send(session_id, acp.update_tool_call(call_id, status="failed",
                                              content=[_text(f"evoagent: {line}")]))


def _text(text: str) -> Any:
    import acp

    return acp.tool_content(acp.text_block(text))


Handler = Callable[[Outbox, str, Any, str], Awaitable[str]]
HANDLERS: dict[str, Handler] = {
    "accept": _accept, "reject": _reject, "undo": _undo, "compact": _compact,
    "recall": _recall, "locate": _locate, "mine": _mine,
}
"""Every command but /ask (a turn)."""
