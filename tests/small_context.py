"""A scripted model with a small context window: what the compaction tests (the kernel's and
the app's) drive. The window is sized at the first call to that call's prompt plus about
three reads of `BIG_MODULE`, so reading it five times makes the kernel trim and summarize."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from evoagent.agent.scripted_provider import ScriptedReply, ScriptedToolCall, get_script

BIG_MODULE = {"big.py": "".join(f"X{i} = {i}\n" for i in range(3000))}
"""A commit's files: one module far bigger than the window."""
READ_BIG = ScriptedReply(tool_calls=[ScriptedToolCall("read", {"path": "big.py", "start_line": 1,
                                                                "end_line": 300})])
HEADROOM = 3_000
"""Tokens of the window beyond the first prompt: about three reads of 300 lines."""


def small_context_model(script: Callable[[list[Any]], str], replies: Iterable[Any],
                        summary: str, summaries: list[str] | None = None) -> tuple[str, Any]:
    """(model name, its script handle): answers a summary request with `summary` (and keeps
    the request's text in `summaries`), any other call with the next of `replies`."""
    replies = iter(replies)
    handle: Any = None

    def respond(messages, tools):
        if "<transcript>" in str(messages[-1].get("content")):  # a summary request
            if summaries is not None:
                summaries.append(messages[-1]["content"])
            return summary
        if handle.context_limit is None:  # first call: size the window to this prompt
            handle.context_limit = ((len(json.dumps(messages)) + len(json.dumps(tools))) // 4
                                    + HEADROOM)
        return next(replies)

    name = script([respond] * 20)
    handle = get_script(name.removeprefix("scripted/"))
    return name, handle
