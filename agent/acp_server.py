"""`evoagent acp`: the Agent Client Protocol on stdio, so an editor (Zed, or any ACP client)
drives the same `Session` the app drives (docs/acp.md is the person's guide).

One evoagent `Session` per ACP session, on the session's `cwd`; the ACP session id is the
conversation's id, so `session/load` (here or in a later process) resumes the saved
conversation (`Session.resume_conversation`), replaying its turns and its pending change.
The client's `mcpServers` are the person's own (their editor's config): stdio and HTTP
servers join that session's MCP servers; SSE ones and names a `server__tool` name cannot
carry are skipped with one line shown to the client.

A prompt turn is `Session.ask` in a worker thread; its events become session updates
(agent/acp_updates.py: messages, tool calls, live output, the kernel's steps as a plan) sent
in order by one pump task. `session/cancel` is `Session.cancel`; approvals become
`session/request_permission`; session modes are the approval modes and `read_only` (every
prompt an /ask turn).

What reaches the person's files is only what they accept. A turn makes and tests its change
in the sandbox and shows it as diffs (agent/acp_diffs.py); `/accept [HUNK_ID ...]` applies
it (`Session.accept`), and who writes follows one rule:

- the client said `fs.readTextFile` and `fs.writeTextFile`: each file is read through the
  client (its buffer, unsaved edits included), the chosen hunks are applied in memory by
  the strict parser the patch policy uses, and the result is written with
  `fs/write_text_file` (agent/acp_files.py). A hunk that does not fit the buffer writes
  nothing, and the reply names the file to save or revert. A change holding anything else
  than modifications and creations of UTF-8 text files (a deletion, rename, mode change,
  binary file, symlink) goes whole through `git apply`, and the reply says so;
- otherwise evoagent writes the accepted hunks itself with `git apply`.

`/undo` goes back the way the change came: through the client only when every file still
holds exactly what was written (else one line, nothing written, still undoable); a file the
accept created is then removed on disk by evoagent (ACP has no delete). `/reject`, `/ask`,
`/compact`, `/recall`, `/locate` and `/mine` are the other advertised commands
(agent/acp_commands.py).

initialize lists no auth method when a model is available (the --model flag, the person's
config, a provider key, a local Ollama); otherwise one whose description says which key to
set, and `authenticate` checks again.

The protocol owns stdout (agent/acp_stdio.py runs this agent on private copies of fds 0
and 1). Not done yet: images and audio in prompts, the client's terminal methods,
`session/list`, per-hunk review in the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .acp_commands import COMMANDS, commands_update, run_command, split_command, unknown_command
from .acp_updates import (
    ALLOW_ALWAYS,
    ALLOW_ONCE,
    UpdateMapper,
    client_mcp_servers,
    closing_line,
    prompt_text,
)
from .approval import ApprovalMode
from .errors import EvoError
from .events import ApprovalNeeded, Event
from .terminal_text import one_line

MODE_NAMES = {
    ApprovalMode.ASK: ("Ask", "Ask before every edit and command"),
    ApprovalMode.AUTO_EDITS: ("Auto edits", "Edit the sandbox freely; ask before commands"),
    ApprovalMode.FULL_AUTO: ("Full auto", "Never ask: the sandbox is the safety"),
}
READ_ONLY = "read_only"
"""The session mode in which every prompt is a read-only turn (as `/ask`): questions and
exploration, never a change. Beside the approval modes, not one of them: switching back
restores the approval mode the session had."""
READ_ONLY_NAME = ("Read only", "Answer and explore only: every prompt is an /ask turn")

MODEL_AUTH = "model"
"""The auth method offered when no model is available (its description says what to set)."""

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
    read_only: bool = False
    """The session is in the READ_ONLY mode."""


class EvoAcpAgent:
    """The ACP `Agent`: see the module docstring. `model` None means the repository's
    configured model; `mode` is each new session's approval mode."""

    def __init__(self, model: str | None = None, mode: str = ApprovalMode.ASK):
        self.model = model
        self.read_only = mode == READ_ONLY
        self.mode = ApprovalMode.ASK if self.read_only else ApprovalMode(mode)
        self.sessions: dict[str, AcpSession] = {}
        self.client_fs = False
        """The client reads and writes text files for us (initialize's fs capabilities)."""
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
        from acp.schema import (
            AgentCapabilities,
            AuthMethodAgent,
            Implementation,
            McpCapabilities,
            PromptCapabilities,
        )

        fs = getattr(client_capabilities, "fs", None)
        self.client_fs = bool(fs and fs.read_text_file and fs.write_text_file)
        try:
            ours = version("evoagent")
        except PackageNotFoundError:
            ours = "0"
        hint = await asyncio.to_thread(model_hint, self.model)
        return acp.InitializeResponse(
            protocol_version=acp.PROTOCOL_VERSION,
            agent_capabilities=AgentCapabilities(
                load_session=True, prompt_capabilities=PromptCapabilities(embedded_context=True),
                mcp_capabilities=McpCapabilities(http=True, sse=False)),
            auth_methods=[AuthMethodAgent(id=MODEL_AUTH, name="Configure a model",
                                          description=hint)] if hint else [],
            agent_info=Implementation(name="evoagent", title="evoagent", version=ours),
        )

    async def authenticate(self, method_id: str, **kwargs: Any) -> Any:
        """Nothing to log in to: check again whether a model is available now."""
        import acp

        hint = await asyncio.to_thread(model_hint, self.model)
        if hint:
            raise acp.RequestError(-32000, one_line(hint, 500))
        return acp.AuthenticateResponse()

    async def new_session(self, cwd: str, mcp_servers: list[Any] | None = None,
                          **kwargs: Any) -> Any:
        import acp

        from .run_record import new_run_id

        session_id = new_run_id("acp")
        servers, skipped = client_mcp_servers(mcp_servers or [])
        state = await self._open(session_id, cwd, servers)
        # The ACP session id names the conversation, so `session/load` finds it later.
        state.session.new_conversation(session_id)
        for line in skipped:
            self._after_response(session_id, acp.update_agent_thought_text(f"· mcp: {line}\n"))
        self._after_response(session_id, commands_update())
        return acp.NewSessionResponse(session_id=session_id, modes=self._modes(state))

    async def load_session(self, cwd: str, session_id: str, mcp_servers: list[Any] | None = None,
                           **kwargs: Any) -> Any:
        import acp

        old = self.sessions.pop(session_id, None)
        if old is not None:  # reloaded in this process: its workspace goes first
            await asyncio.to_thread(_close_session, old.session)
        servers, skipped = client_mcp_servers(mcp_servers or [])
        state = await self._open(session_id, cwd, servers)
        for line in skipped:
            self.send(session_id, acp.update_agent_thought_text(f"· mcp: {line}\n"))
        try:
            saved = await asyncio.to_thread(state.session.resume_conversation, session_id)
        except EvoError as exc:
            self.sessions.pop(session_id, None)
            raise _request_error(exc, invalid=True) from None
        for turn in saved.turns:
            self.send(session_id, acp.update_user_message_text(turn.request))
            if turn.reply:
                self.send(session_id, acp.update_agent_message_text(turn.reply))
        if saved.pending.strip() and saved.turns:
            state.pending_run = saved.turns[-1].run_id
            self.send(session_id, state.mapper.change(state.pending_run, saved.pending))
        self.send(session_id, commands_update())
        await self.flush()
        return acp.LoadSessionResponse(modes=self._modes(state))

    async def set_session_mode(self, mode_id: str, session_id: str, **kwargs: Any) -> Any:
        import acp

        state = self._state(session_id)
        if mode_id == READ_ONLY:
            state.read_only = True
            return acp.SetSessionModeResponse()
        try:
            state.session.set_mode(mode_id)
        except ValueError:
            known = ", ".join([*(m.value for m in ApprovalMode), READ_ONLY])
            raise _invalid(f"unknown mode {one_line(mode_id, 40)!r} (known: {known})") from None
        state.read_only = False
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
                await run_command(self, session_id, state, name, rest)
                stop = "end_turn"
            elif (typo := unknown_command(text)) is not None:
                self.send(session_id, acp.update_agent_message_text(typo))
                await self.flush()
                stop = "end_turn"
            else:
                stop = await self._turn(session_id, state, text, read_only=state.read_only)
        return acp.PromptResponse(stop_reason=stop)

    # -- turns and commands -------------------------------------------------------------

    async def _turn(self, session_id: str, state: AcpSession, text: str,
                    read_only: bool = False) -> str:
        import acp

        try:
            outcome = await asyncio.to_thread(state.session.ask, text, read_only)
        except EvoError as exc:
            await self.flush()
            raise _request_error(exc) from None
        await self.flush()  # every update of the turn goes before its response
        if outcome.status == "cancelled":
            return "cancelled"
        answer = outcome.answer.strip()
        if outcome.status == "answered" and answer and answer not in state.mapper.said:
            # The answer came as finish's summary, not as text the client has seen.
            self.send(session_id, acp.update_agent_message_text(outcome.answer))
            await self.flush()
        if outcome.patch.strip() and outcome.status != "answered":
            state.pending_run = outcome.run_id
            self.send(session_id, state.mapper.change(outcome.run_id, outcome.patch))
            self.send(session_id, acp.update_agent_message_text(closing_line(outcome)))
            await self.flush()
        return STOP_REASONS.get(outcome.status, "end_turn")

    # -- sessions -------------------------------------------------------------------------

    async def _open(self, session_id: str, cwd: str, mcp_servers: tuple[Any, ...]) -> AcpSession:
        from .repo_context import RepoContext
        from .session import Session

        def emit(event: Event) -> None:
            self.send_threadsafe(session_id, event)

        try:
            ctx = await asyncio.to_thread(RepoContext.open, Path(cwd))
            session = await asyncio.to_thread(Session.open, ctx, self.model, self.mode, emit,
                                              mcp_servers)
        except EvoError as exc:
            raise _request_error(exc, invalid=True) from None
        state = self.sessions[session_id] = AcpSession(session, UpdateMapper(ctx.root),
                                                       read_only=self.read_only)
        return state

    def _state(self, session_id: str) -> AcpSession:
        state = self.sessions.get(session_id)
        if state is None:
            raise _invalid(f"no session {one_line(session_id, 80)!r}: create or load it first")
        return state

    def _modes(self, state: AcpSession) -> Any:
        from acp.schema import SessionMode, SessionModeState

        modes = [(mode.value, name, about) for mode, (name, about) in MODE_NAMES.items()]
        return SessionModeState(
            current_mode_id=READ_ONLY if state.read_only else state.session.approver.mode.value,
            available_modes=[SessionMode(id=mode, name=name, description=about)
                             for mode, name, about in [*modes, (READ_ONLY, *READ_ONLY_NAME)]])

    async def close(self) -> None:
        """The client went away: stop running turns, remove the workspaces."""
        states, self.sessions = list(self.sessions.values()), {}
        await asyncio.gather(*(asyncio.to_thread(_close_session, s.session) for s in states))
        if self._pump_task is not None:
            self._pump_task.cancel()

    # -- ordered delivery of updates ----------------------------------------------------

    def send_threadsafe(self, session_id: str, item: Any) -> None:
        """`send` from a worker thread (a turn's events, a command's progress)."""
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed: the client is gone
            loop.call_soon_threadsafe(self.send, session_id, item)

    def send(self, session_id: str, item: Any) -> None:
        """Queue an evoagent event or a ready ACP update (loop thread only)."""
        assert self._queue is not None, "on_connect comes first"
        self._queue.put_nowait((session_id, item))

    def _after_response(self, session_id: str, update: Any) -> None:
        """Send `update` once the current request has been answered (a new session's
        commands must not arrive before the client knows the session)."""
        loop = asyncio.get_running_loop()
        loop.call_soon(self.send, session_id, update)

    def client_files(self, session_id: str, root: Path) -> Any:
        """The client's fs methods as a `patches.FileAccess` (None: it offers none)."""
        if not self.client_fs or self._loop is None:
            return None
        from .acp_files import ClientFiles

        return ClientFiles(self._conn, self._loop, session_id, root)

    async def flush(self) -> None:
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


def model_hint(model: str | None) -> str:
    """"" when a model is available (the flag, the person's config, a provider key in the
    environment, a local Ollama), else the line saying how to configure one."""
    from .model_select import NoModelAvailable, select_model
    from .repo_context import RepoContext

    configured = model
    if configured is None:  # the person's config, as the repository of the cwd reads it
        with contextlib.suppress(EvoError):
            configured = RepoContext.open(Path.cwd()).settings.model
    try:
        select_model(configured or None)
    except NoModelAvailable as exc:
        return exc.message
    except EvoError:
        return ""  # a bad model name: a session says so, it is no matter of authentication
    return ""


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
