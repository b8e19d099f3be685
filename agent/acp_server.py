"""`evoagent acp`: the Agent Client Protocol on stdio, so an editor (Zed, or any ACP client)
drives the same `Session` the app drives.

One evoagent `Session` per ACP session, opened on the session's `cwd` (its repository). The
ACP session id is the conversation's id: a new session pins a fresh id on its conversation
before the first turn, so `session/load` of that id (here or in a later process) resumes
the saved conversation with `Session.resume_conversation`, replaying its turns as message
chunks and its pending change as a diff.

A prompt turn is `Session.ask` in a worker thread; its events become session updates
(agent/acp_updates.py) sent in order by one pump task, and the turn ends `end_turn`,
`cancelled` (after `session/cancel`, which is `Session.cancel`) or `max_turn_requests` (a
budget). An `ApprovalNeeded` becomes `session/request_permission` with allow once / allow
always (when a rule may be remembered) / reject; the answer goes back through
`event.answer`. Session modes are the approval modes (ask, auto_edits, full_auto).

What reaches the person's files is only what they accept. A turn never applies its change:
the pending change is shown as a completed edit tool call with one diff per file (old text
= the file now, new text = with the change, computed in memory: agent/acp_diffs.py), and
the person applies it with the `/accept [HUNK_ID ...]` command (`Session.accept`, through
`git apply` in their tree, not through the client's fs methods), drops it with `/reject`
and takes back the last accepted change with `/undo`. `/ask QUESTION` is a read-only turn,
`/compact` summarizes the conversation's older turns. These are advertised as available
commands.

The protocol owns stdout: the ACP streams use private copies of fds 0 and 1, and fd 1 then
points at stderr (fd 0 at /dev/null), so a stray print or a child process cannot corrupt
the JSON-RPC stream. Not done yet: MCP servers (ignored), images and audio in prompts,
the client's fs/terminal methods, `session/list`, per-hunk review in the client, plans.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .acp_updates import ALLOW_ALWAYS, ALLOW_ONCE, UpdateMapper
from .approval import ApprovalMode
from .errors import EvoError
from .events import ApprovalNeeded, Event
from .terminal_text import one_line

STDIO_LIMIT = 50 << 20
"""Bytes one JSON-RPC line may have (an embedded file in a prompt can be large)."""

MODE_NAMES = {
    ApprovalMode.ASK: ("Ask", "Ask before every edit and command"),
    ApprovalMode.AUTO_EDITS: ("Auto edits", "Edit the sandbox freely; ask before commands"),
    ApprovalMode.FULL_AUTO: ("Full auto", "Never ask: the sandbox is the safety"),
}

COMMANDS = {
    "accept": ("Apply the pending change to your files (all, or the hunk ids given)",
               "hunk ids, e.g. 0:1 2 (optional)"),
    "reject": ("Drop the pending change", None),
    "undo": ("Put back the files of the last accepted change", None),
    "compact": ("Summarize the conversation's older turns", None),
    "ask": ("Ask a question: a read-only turn that changes nothing", "your question"),
}
"""Slash commands a prompt may start with: name -> (description, input hint)."""

STOP_REASONS = {"cancelled": "cancelled", "budget_exhausted": "max_turn_requests"}
"""A turn's status -> ACP stop reason; every other status ends the turn `end_turn`."""

CLOSE_WAIT = 30.0
"""Seconds a closing session waits for its cancelled turn to unwind (a model call in flight
ends at its next step boundary)."""

log = logging.getLogger("evoagent.acp")


@dataclass
class AcpSession:
    session: Any
    """The evoagent `Session`."""
    mapper: UpdateMapper
    pending_run: str | None = None
    """The run whose patch is the conversation's pending change (what /accept applies)."""
    turn_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class EvoAcpAgent:
    """The ACP `Agent`: see the module docstring. `model` None means the repository's
    configured model; `mode` is each new session's approval mode."""

    def __init__(self, model: str | None = None, mode: str = ApprovalMode.ASK):
        self.model = model
        self.mode = ApprovalMode(mode)
        self.sessions: dict[str, AcpSession] = {}
        self._conn: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[tuple[str, Any]] | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def on_connect(self, conn: Any) -> None:
        """Called by the SDK on the event loop, before any message is read."""
        self._conn = conn
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._pump_task = asyncio.create_task(self._pump())

    # -- protocol methods ---------------------------------------------------------------

    async def initialize(self, protocol_version: int, client_capabilities: Any = None,
                         client_info: Any = None, **kwargs: Any) -> Any:
        from importlib.metadata import PackageNotFoundError, version

        import acp
        from acp.schema import AgentCapabilities, Implementation, PromptCapabilities

        try:
            ours = version("evoagent")
        except PackageNotFoundError:
            ours = "0"
        return acp.InitializeResponse(
            protocol_version=acp.PROTOCOL_VERSION,
            agent_capabilities=AgentCapabilities(
                load_session=True, prompt_capabilities=PromptCapabilities(embedded_context=True)),
            auth_methods=[],
            agent_info=Implementation(name="evoagent", title="evoagent", version=ours),
        )

    async def authenticate(self, method_id: str, **kwargs: Any) -> Any:
        return None  # no auth methods: model keys come from the person's environment

    async def new_session(self, cwd: str, mcp_servers: list[Any] | None = None,
                          **kwargs: Any) -> Any:
        import acp

        from .run_record import new_run_id

        session_id = new_run_id("acp")
        state = await self._open(session_id, cwd)
        # The ACP session id names the conversation, so `session/load` finds it later.
        state.session.new_conversation(session_id)
        self._after_response(session_id, self._commands_update())
        return acp.NewSessionResponse(session_id=session_id, modes=self._modes(state))

    async def load_session(self, cwd: str, session_id: str, mcp_servers: list[Any] | None = None,
                           **kwargs: Any) -> Any:
        import acp

        old = self.sessions.pop(session_id, None)
        if old is not None:  # reloaded in this process: its workspace goes first
            await asyncio.to_thread(_close_session, old.session)
        state = await self._open(session_id, cwd)
        try:
            saved = await asyncio.to_thread(state.session.resume_conversation, session_id)
        except EvoError as exc:
            self.sessions.pop(session_id, None)
            raise _request_error(exc, invalid=True) from None
        for turn in saved.turns:
            self._send(session_id, acp.update_user_message_text(turn.request))
            if turn.reply:
                self._send(session_id, acp.update_agent_message_text(turn.reply))
        if saved.pending.strip() and saved.turns:
            state.pending_run = saved.turns[-1].run_id
            self._send(session_id, state.mapper.change(state.pending_run, saved.pending))
        self._send(session_id, self._commands_update())
        await self._flush()
        return acp.LoadSessionResponse(modes=self._modes(state))

    async def set_session_mode(self, mode_id: str, session_id: str, **kwargs: Any) -> Any:
        import acp

        state = self._state(session_id)
        try:
            state.session.set_mode(mode_id)
        except ValueError:
            known = ", ".join(m.value for m in ApprovalMode)
            raise _invalid(f"unknown mode {one_line(mode_id, 40)!r} (known: {known})") from None
        return acp.SetSessionModeResponse()

    async def cancel(self, session_id: str, **kwargs: Any) -> None:
        state = self.sessions.get(session_id)
        if state is not None:
            state.session.cancel()

    async def prompt(self, prompt: list[Any], session_id: str, **kwargs: Any) -> Any:
        import acp

        state = self._state(session_id)
        text = prompt_text(prompt)
        name, rest = split_command(text)
        async with state.turn_lock:
            if name == "ask":
                stop = await self._turn(session_id, state, rest, read_only=True)
            elif name in COMMANDS:
                await self._command(session_id, state, name, rest)
                stop = "end_turn"
            else:
                stop = await self._turn(session_id, state, text)
        return acp.PromptResponse(stop_reason=stop)

    # -- turns and commands -------------------------------------------------------------

    async def _turn(self, session_id: str, state: AcpSession, text: str,
                    read_only: bool = False) -> str:
        import acp

        try:
            outcome = await asyncio.to_thread(state.session.ask, text, read_only)
        except EvoError as exc:
            await self._flush()
            raise _request_error(exc) from None
        await self._flush()  # every update of the turn goes before its response
        if outcome.status == "cancelled":
            return "cancelled"
        if outcome.patch.strip() and outcome.status != "answered":
            state.pending_run = outcome.run_id
            self._send(session_id, state.mapper.change(outcome.run_id, outcome.patch))
            self._send(session_id, acp.update_agent_message_text(_closing_line(outcome)))
            await self._flush()
        return STOP_REASONS.get(outcome.status, "end_turn")

    async def _command(self, session_id: str, state: AcpSession, name: str, rest: str) -> None:
        import acp

        session = state.session
        try:
            if name == "accept":
                reply = await self._accept(state, rest.split())
            elif name == "reject":
                if state.pending_run is None:
                    reply = "There is no pending change to reject."
                else:
                    await asyncio.to_thread(session.discard, state.pending_run)
                    state.pending_run = None
                    reply = "Dropped the pending change; your files are as they were."
            elif name == "undo":
                paths = await asyncio.to_thread(session.undo)
                reply = f"Put back {', '.join(paths)}."
            else:  # compact
                done = await asyncio.to_thread(session.compact)
                reply = ("Nothing to compact yet." if done is None else
                         f"Compacted the conversation: about {done.tokens_before} → "
                         f"{done.tokens_after} tokens.")
        except EvoError as exc:
            reply = f"evoagent: {exc.message}"
        await self._flush()
        self._send(session_id, acp.update_agent_message_text(reply))
        await self._flush()

    async def _accept(self, state: AcpSession, hunk_ids: list[str]) -> str:
        if state.pending_run is None:
            return "There is no pending change to accept."
        result = await asyncio.to_thread(state.session.accept, state.pending_run,
                                         hunk_ids or None)
        state.pending_run = None
        return (f"Applied to your files: {', '.join(result.paths)}. /undo puts them back.")

    # -- sessions -------------------------------------------------------------------------

    async def _open(self, session_id: str, cwd: str) -> AcpSession:
        from .repo_context import RepoContext
        from .session import Session

        def emit(event: Event) -> None:
            self._from_thread(session_id, event)

        try:
            ctx = await asyncio.to_thread(RepoContext.open, Path(cwd))
            session = await asyncio.to_thread(Session.open, ctx, self.model, self.mode, emit)
        except EvoError as exc:
            raise _request_error(exc, invalid=True) from None
        state = self.sessions[session_id] = AcpSession(session, UpdateMapper(ctx.root))
        return state

    def _state(self, session_id: str) -> AcpSession:
        state = self.sessions.get(session_id)
        if state is None:
            raise _invalid(f"no session {one_line(session_id, 80)!r}: create or load it first")
        return state

    def _modes(self, state: AcpSession) -> Any:
        from acp.schema import SessionMode, SessionModeState

        return SessionModeState(
            current_mode_id=state.session.approver.mode.value,
            available_modes=[SessionMode(id=mode.value, name=name, description=about)
                             for mode, (name, about) in MODE_NAMES.items()])

    def _commands_update(self) -> Any:
        from acp.helpers import update_available_commands
        from acp.schema import AvailableCommand, AvailableCommandInput, UnstructuredCommandInput

        return update_available_commands(
            AvailableCommand(name=name, description=about,
                             input=AvailableCommandInput(root=UnstructuredCommandInput(hint=hint))
                             if hint else None)
            for name, (about, hint) in COMMANDS.items())

    async def close(self) -> None:
        """The client went away: stop running turns, remove the workspaces."""
        states, self.sessions = list(self.sessions.values()), {}
        await asyncio.gather(*(asyncio.to_thread(_close_session, s.session) for s in states))
        if self._pump_task is not None:
            self._pump_task.cancel()

    # -- ordered delivery of updates ----------------------------------------------------

    def _from_thread(self, session_id: str, event: Event) -> None:
        """`emit` of a session: called on the worker thread of its turn."""
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed: the client is gone
            loop.call_soon_threadsafe(self._send, session_id, event)

    def _send(self, session_id: str, item: Any) -> None:
        """Queue an evoagent event or a ready ACP update (loop thread only)."""
        assert self._queue is not None, "on_connect comes first"
        self._queue.put_nowait((session_id, item))

    def _after_response(self, session_id: str, update: Any) -> None:
        """Send `update` once the current request has been answered (a new session's
        commands must not arrive before the client knows the session)."""
        loop = asyncio.get_running_loop()
        loop.call_soon(self._send, session_id, update)

    async def _flush(self) -> None:
        if self._queue is not None:
            await self._queue.join()

    async def _pump(self) -> None:
        assert self._queue is not None
        while True:
            session_id, item = await self._queue.get()
            try:
                await self._deliver(session_id, item)
            except Exception:  # a closed connection, a bug in a mapping: log, keep going
                log.exception("could not send an update to the client")
                if isinstance(item, ApprovalNeeded):
                    item.answer(False)  # never leave the turn waiting on a lost question
            finally:
                self._queue.task_done()

    async def _deliver(self, session_id: str, item: Any) -> None:
        state = self.sessions.get(session_id)
        if not isinstance(item, Event):
            await self._conn.session_update(session_id=session_id, update=item)
            return
        if state is None:
            if isinstance(item, ApprovalNeeded):
                item.answer(False)
            return
        if isinstance(item, ApprovalNeeded):
            before, tool_call, options = state.mapper.permission(item)
            for update in before:
                await self._conn.session_update(session_id=session_id, update=update)
            # Asked beside the pump: the turn is blocked until the answer, and a cancel
            # (which refuses the approval) must not wait for the client to reply.
            task = asyncio.create_task(self._ask(session_id, item, tool_call, options))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        for update in state.mapper.updates(item):
            await self._conn.session_update(session_id=session_id, update=update)

    async def _ask(self, session_id: str, event: ApprovalNeeded, tool_call: Any,
                   options: list[Any]) -> None:
        from acp.schema import AllowedOutcome

        try:
            response = await self._conn.request_permission(
                session_id=session_id, tool_call=tool_call, options=options)
        except Exception:
            log.exception("the permission request failed; refusing")
            event.answer(False)
            return
        outcome = response.outcome
        if isinstance(outcome, AllowedOutcome):
            chosen = outcome.option_id
            event.answer(chosen in (ALLOW_ONCE, ALLOW_ALWAYS), always=chosen == ALLOW_ALWAYS)
        else:  # cancelled
            event.answer(False)


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


def split_command(text: str) -> tuple[str | None, str]:
    """("accept", "0:1 2") for "/accept 0:1 2"; (None, text) when it is no known command."""
    if not text.startswith("/"):
        return None, text
    head, _, rest = text[1:].partition(" ")
    name = head.strip().lower()
    return (name, rest.strip()) if name in COMMANDS else (None, text)


def _closing_line(outcome: Any) -> str:
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


def _close_session(session: Any) -> None:
    """Cancel a running turn, wait for it to unwind (bounded), remove the workspace."""
    session.close()
    deadline = time.monotonic() + CLOSE_WAIT
    while session.running and time.monotonic() < deadline:
        time.sleep(0.05)
    session.close()


def _request_error(exc: EvoError, invalid: bool = False) -> Exception:
    """A JSON-RPC error whose message is evoagent's one line (what a client shows)."""
    import acp

    return acp.RequestError(-32602 if invalid else -32603, one_line(exc.message, 500))


def _invalid(message: str) -> Exception:
    import acp

    return acp.RequestError(-32602, message)


async def _private_stdio() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Streams on private copies of stdin and stdout; fd 1 becomes stderr, fd 0 /dev/null."""
    in_fd, out_fd = os.dup(0), os.dup(1)
    os.dup2(2, 1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=STDIO_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                 os.fdopen(in_fd, "rb", buffering=0))
    transport, protocol = await loop.connect_write_pipe(
        lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()),
        os.fdopen(out_fd, "wb", buffering=0))
    return reader, asyncio.StreamWriter(transport, protocol, None, loop)


async def _serve(model: str | None, mode: str) -> None:
    import acp

    agent = EvoAcpAgent(model, mode)
    reader, writer = await _private_stdio()
    try:
        await acp.run_agent(agent, writer, reader)
    finally:
        await agent.close()


def serve(model: str | None = None, mode: str = ApprovalMode.ASK) -> None:
    """Serve ACP on stdin/stdout until the client closes the stream."""
    try:
        import acp  # noqa: F401
    except ImportError:
        raise EvoError("evoagent acp needs the agent-client-protocol package: "
                       "pip install agent-client-protocol") from None
    from .warmup import start_warmup

    start_warmup()  # litellm and LanceDB load while the client initializes
    asyncio.run(_serve(model, mode))
