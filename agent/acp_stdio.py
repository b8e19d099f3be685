"""The process side of `evoagent acp`: the protocol's streams on private copies of stdin and
stdout, the agent (agent/acp_server.py) run on them until the client closes the stream.

stdout belongs to the protocol: after the copies are made, fd 1 points at stderr and fd 0 at
/dev/null, so a stray print, a library's warning or a child process cannot corrupt the
JSON-RPC stream or read the client's messages."""

from __future__ import annotations

import asyncio
import os

from .acp_server import EvoAcpAgent
from .approval import ApprovalMode
from .errors import EvoError

STDIO_LIMIT = 50 << 20
"""Bytes one JSON-RPC line may have (an embedded file in a prompt can be large)."""


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
