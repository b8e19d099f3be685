"""Fixtures for the app's tests: a real git repo with a failing test, the scripted model,
and the app built on them. Nothing under test is patched."""

from __future__ import annotations

import asyncio
import inspect

import pytest
from clamp_project import FILES
from evoagent.agent.scripted_provider import (
    ScriptedReply,
    ScriptedToolCall,
)

BUGGY = "    if value > high:\n        return low\n"
FIXED = "    if value > high:\n        return high\n"
REQUEST = "clamp returns the lower bound above the upper bound"
SIZE = (100, 32)


def call(name: str, text: str = "", **arguments) -> ScriptedReply:
    return ScriptedReply(text=text, tool_calls=[ScriptedToolCall(name, arguments)])


def fix_steps() -> list[ScriptedReply]:
    """Read, answer in Markdown, edit calc.py, finish: one proposed hunk."""
    block = {"path": "calc.py", "search": BUGGY, "replace": FIXED}
    return [
        call("read", path="calc.py"),
        ScriptedReply(text="The **upper** branch returns `low`; it should return `high`.",
                      tool_calls=[ScriptedToolCall("edit", {"edits": [block]})]),
        call("finish", summary="clamp returns high above the upper bound"),
    ]


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Run `async def` tests in a fresh event loop (no async plugin needed)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    asyncio.run(pyfuncitem.obj(**{n: pyfuncitem.funcargs[n] for n in names}))
    return True


@pytest.fixture(autouse=True)
def no_model_probe(monkeypatch):
    """No test asks a real Ollama server: a closed local port refuses at once."""
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9")


@pytest.fixture
def project(git_repo):
    git_repo.commit("Add clamp with tests", {**FILES, "README.md": "# calc\n"})
    git_repo.commit("Document the clamp parser bounds (#12)", {
        "README.md": "# calc\n\nclamp(value, low, high) keeps value within bounds.\n",
    })
    return git_repo


