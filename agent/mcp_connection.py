"""One MCP server's connection: its command line in the run's sandbox, its stderr tail,
and the SDK session held open as one task on the run's event loop (agent/mcp_tools.py owns
the loop and the run's servers).

The command line is the run's own bubblewrap command line (same binds, scrubbed environment,
network only when the policy allows it, the unprivileged user), built by `sandboxed_command`
without running it, since the SDK spawns the process itself and keeps its pipes.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from evoagent.sandbox.bwrap import BwrapRunner, call_settings, ro_bind_plan

from .mcp_config import ServerDef
from .terminal_text import one_line

log = logging.getLogger(__name__)

MAX_TOOLS = 128
"""Tools taken from one server at most (more would crowd the model's context)."""
MAX_PAGES = 20
STDERR_TAIL = 4_096


class ServerOff(Exception):
    """A server can no longer be used; the message is one line saying why."""


# -- the sandboxed command line ------------------------------------------------------------


def sandboxed_command(runner: Any, command: Sequence[str], cwd: Path,
                      named: Mapping[str, str] = {},  # noqa: B006 (read only)
                      literal: Mapping[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) that run `command` under the run's bubblewrap sandbox, for a
    caller that starts the process itself. `literal` variables pass the sandbox's secret
    filter like any command's; `named` ones (the person's config named them) are added as
    they are. Mirrors `BwrapRunner.run` up to the spawn: the ACL grant and the switch to the
    unprivileged user, the address-space limit (through prlimit), no wall-time limit (the
    server lives as long as the run)."""
    if not isinstance(runner, BwrapRunner):
        raise ServerOff("servers run only in the bubblewrap sandbox, which is not available here")
    env, limits = call_settings(runner.config, None, dict(literal or {}))
    env.update(named)
    inner = list(command)
    prlimit = shutil.which("prlimit")
    if prlimit and limits.memory_bytes is not None:
        inner = [prlimit, f"--as={limits.memory_bytes}", "--core=0", "--", *inner]
    for note in ro_bind_plan(runner.config.ro_binds)[1]:
        log.warning("sandbox: %s", note.strip("[]"))
    user, setpriv = runner.drop_to()
    return runner.argv(inner, Path(cwd), (), user, setpriv or "setpriv"), env


class StderrTail:
    """A server's stderr: read on a thread, only the last few KB kept (for the warning line
    of a server that fails), so a chatty server neither blocks nor fills a disk or a screen."""

    def __init__(self, keep: int = STDERR_TAIL):
        read_fd, write_fd = os.pipe()
        self.file = os.fdopen(write_fd, "w")
        self.keep = keep
        self.data = b""
        self._thread = threading.Thread(target=self._drain, args=(read_fd,), daemon=True)
        self._thread.start()

    def _drain(self, fd: int) -> None:
        with os.fdopen(fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(1 << 14):
                self.data = (self.data + chunk)[-self.keep:]

    def last_line(self) -> str:
        lines = [line for line in self.data.decode("utf-8", "replace").splitlines() if line.strip()]
        return one_line(lines[-1], 200) if lines else ""

    def close(self) -> None:
        self.file.close()
        self._thread.join(1.0)


# -- one server's connection ---------------------------------------------------------------


class Connection:
    """One server: a task on the run's loop that holds the SDK session open until `stop`."""

    def __init__(self, server: ServerDef, open_transport: Callable[[], Any],
                 stderr: StderrTail | None):
        self.server = server
        self.open_transport = open_transport
        self.stderr = stderr
        self.listed: concurrent.futures.Future[list[dict[str, Any]]] = concurrent.futures.Future()
        self.off: str | None = None
        """Why the server is off (None: usable); set with its one warning line."""
        self.ended: str | None = None
        """Why the session ended by itself after the tools were listed (the server exited)."""
        self._session: Any = None
        self._scope: Any = None
        self._stopping = False
        self.task: concurrent.futures.Future[None] | None = None

    async def serve(self) -> None:
        import anyio
        from mcp import ClientSession
        from mcp.types import Implementation

        with anyio.CancelScope() as scope:
            self._scope = scope
            if self._stopping:
                scope.cancel()
            try:
                async with contextlib.AsyncExitStack() as stack:
                    read, write = await stack.enter_async_context(self.open_transport())
                    session = await stack.enter_async_context(ClientSession(
                        read, write, client_info=Implementation(name="evoagent", version="1")))
                    await session.initialize()
                    tools = await list_tools(session)
                    self._session = session
                    self.listed.set_result(tools)
                    await anyio.sleep_forever()
            except Exception as exc:  # whatever the server did, it costs this server only
                why = reason(exc)
                if not self.listed.done():
                    self.listed.set_exception(ServerOff(self._with_stderr(why)))
                else:
                    self.ended = self._with_stderr(why)
        if not self.listed.done():
            self.listed.set_exception(ServerOff("stopped before it listed its tools"))

    async def call(self, name: str, arguments: dict[str, Any], timeout: float) -> dict[str, Any]:
        import anyio

        with anyio.fail_after(timeout):
            result = await self._session.call_tool(name, arguments)
        return result.model_dump(mode="json", by_alias=True, exclude_none=True)

    def stop(self, loop: Any) -> None:
        """Leave the session (the SDK closes stdin, then kills the server's process group)."""
        self._stopping = True
        if self._scope is not None:
            loop.call_soon_threadsafe(self._scope.cancel)

    def _with_stderr(self, reason: str) -> str:
        said = self.stderr.last_line() if self.stderr else ""
        return f"{reason}; its last words: {said}" if said else reason


async def list_tools(session: Any) -> list[dict[str, Any]]:
    """Every tool the server lists (following its pages), as plain JSON dicts."""
    from mcp.types import PaginatedRequestParams

    tools: list[dict[str, Any]] = []
    cursor = None
    for _ in range(MAX_PAGES):
        params = PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        tools += [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in page.tools]
        cursor = page.next_cursor
        if not cursor or len(tools) >= MAX_TOOLS:
            break
    return tools


def reason(exc: BaseException) -> str:
    """One line for what went wrong (the innermost of anyio's exception groups). The text
    may come from the server, so it is made terminal-safe and bounded."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, TimeoutError):
        return "timed out"
    if type(exc).__name__ == "ValidationError":  # pydantic: the server's answer did not parse
        return "it answered with a malformed message"
    if type(exc).__name__ == "MCPError":  # the protocol's own error: its message says it
        return one_line(str(exc), 200).lower() or "an MCP error"
    text = one_line(str(exc), 200)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
