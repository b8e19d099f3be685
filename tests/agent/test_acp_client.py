"""`evoagent acp` and what the client brings: its file system (an accepted change written
into the editor's buffers, undone there), evoagent's memory as commands (/recall, /locate,
/mine), authentication when no model is there, and the client's own MCP servers. The same
harness as test_acp.py: the real command in a subprocess, the SDK's client side, a real
repository, the real sandbox, the scripted model; every update validated by the SDK."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import acp
import pytest
import test_acp
from acp.schema import (
    ClientCapabilities,
    EnvVariable,
    FileSystemCapabilities,
    McpServerStdio,
    ReadTextFileResponse,
    SseMcpServer,
    WriteTextFileResponse,
)
from evoagent.sandbox.bwrap import bwrap_path
from test_acp import (
    CALC,
    FIX_EDIT,
    FIXED,
    REQUEST,
    Recorder,
    call,
    drive,
    messages,
    of_kind,
    prompt,
    scripted,
)
from test_mcp_tools import SERVER

pytestmark = pytest.mark.slow  # each test starts `evoagent acp`
project = test_acp.project  # the calc repository with one failing test

USAGE = "# Usage\n\nclamp(value, low, high) keeps value inside [low, high].\n"


class Editor(Recorder):
    """A client with the fs capability, like an editor with open buffers: a read gives the
    buffer when one is open, else the file on disk; a write goes to the buffer only (not
    saved), so nothing written through it reaches the disk unless the test saves it."""

    capabilities = ClientCapabilities(fs=FileSystemCapabilities(read_text_file=True,
                                                                write_text_file=True))

    def __init__(self, answers: list[str] = ()):
        super().__init__(answers)
        self.buffers: dict[str, str] = {}
        self.reads: list[str] = []
        self.writes: list[tuple[str, str]] = []

    async def read_text_file(self, session_id: str, path: str, line: int | None = None,
                             limit: int | None = None, **kwargs: Any) -> ReadTextFileResponse:
        self.reads.append(path)
        text = self.buffers[path] if path in self.buffers else Path(path).read_text()
        return ReadTextFileResponse(content=text)

    async def write_text_file(self, session_id: str, path: str, content: str,
                              **kwargs: Any) -> WriteTextFileResponse:
        self.writes.append((path, content))
        self.buffers[path] = content
        return WriteTextFileResponse()


def unfenced(content: Any) -> str:
    """A tool call's text content, which clients render as Markdown: results come as one
    fenced code block (so a diff's lines or indented results keep their shape)."""
    text = content.content.text
    lines = text.splitlines()
    assert lines[0] == "```" and lines[-1] == "```", text
    return "\n".join(lines[1:-1])


def tree_status(repo) -> str:
    return repo.git("status", "--porcelain", "--untracked-files=all")


def test_accept_and_undo_go_through_the_editors_buffers_and_a_deletion_through_git_apply(
        project, tmp_path):
    project.commit("notes", {"notes.txt": "old notes\n"})
    model = scripted(tmp_path, [
        call("edit", "c1", **FIX_EDIT),
        call("write", "c2", path="docs/usage.md", content=USAGE),
        call("finish", "c3", summary="clamp returns high; usage documented"),
        call("run", "d1", command="rm notes.txt"),
        call("finish", "d2", summary="notes removed"),
    ])
    client = Editor()
    calc, usage = str(project.path / "calc.py"), str(project.path / "docs" / "usage.md")
    seen: dict[str, Any] = {}

    async def body(conn):
        session = await conn.new_session(cwd=str(project.path), mcp_servers=[])
        sid = session.session_id
        seen["turn"] = await prompt(conn, sid, REQUEST)
        await client.take()
        # An unsaved edit above the change: the hunk no longer fits the buffer.
        client.buffers[calc] = "# the person's unsaved line\n" + CALC
        await prompt(conn, sid, "/accept")
        seen["stale"] = messages(await client.take())
        seen["stale writes"] = list(client.writes)
        del client.buffers[calc]  # the person reverted it
        await prompt(conn, sid, "/accept")
        seen["accepted"] = messages(await client.take())
        seen["status after accept"] = tree_status(project)
        seen["buffers after accept"] = dict(client.buffers)
        seen["report"] = json.loads(next(project.path.glob(".evoagent/runs/*/report.json"))
                                    .read_text())
        # Edited after the accept: undo refuses and writes nothing.
        client.buffers[calc] = FIXED + "# more\n"
        await prompt(conn, sid, "/undo")
        seen["undo refused"] = messages(await client.take())
        seen["writes before undo"] = len(client.writes)
        client.buffers[calc] = FIXED
        Path(usage).write_text(client.buffers[usage])  # the person saved the new file
        await prompt(conn, sid, "/undo")
        seen["undone"] = messages(await client.take())
        seen["undo writes"] = client.writes[seen["writes before undo"]:]
        seen["usage after undo"] = os.path.lexists(usage)
        seen["turn 2"] = await prompt(conn, sid, "remove the notes file")
        await client.take()
        await prompt(conn, sid, "/accept")
        seen["deleted"] = messages(await client.take())

    drive(project.path, tmp_path, client, body, "--model", model, "--mode", "full_auto")

    assert seen["turn"] == seen["turn 2"] == "end_turn"
    assert seen["stale"].startswith("calc.py: your editor holds a text the change no longer")
    assert "save or revert it, then /accept again. Nothing was written." in seen["stale"]
    assert seen["stale writes"] == []
    # Written into the buffers only: the person's tree on disk is untouched by evoagent.
    assert seen["accepted"] == ("Written through your editor: calc.py, docs/usage.md. "
                                "/undo puts them back.")
    assert client.writes[:2] == [(calc, FIXED), (usage, USAGE)]
    assert seen["status after accept"] == ""
    assert (project.path / "calc.py").read_text() == CALC
    assert seen["buffers after accept"] == {calc: FIXED, usage: USAGE}
    assert seen["report"]["accepted"]["written_by"] == "editor"
    assert seen["undo refused"].startswith("evoagent: cannot undo: calc.py changed in your "
                                           "editor")
    assert seen["undo writes"] == [(calc, CALC)]  # and the new file removed on disk
    assert seen["undone"] == "Put back calc.py, docs/usage.md."
    assert not seen["usage after undo"] and not (project.path / "docs").exists()
    # A deletion is nothing an editor's fs methods can do: git apply, and the reply says so.
    assert seen["deleted"] == ("Applied to your files with git apply, not through your editor "
                               "(notes.txt: a deletion): notes.txt. /undo puts it back.")
    assert not (project.path / "notes.txt").exists()
    assert len(client.writes) == 3
    assert tree_status(project) == "D notes.txt"  # (git's leading space stripped)


def test_without_a_model_auth_is_offered_and_memory_commands_answer_as_tool_calls(
        project, tmp_path):
    project.commit("Fix clamp upper bound returning the lower bound", {"calc.py": FIXED})
    # No provider key and no Ollama (a closed local port): no model anywhere.
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["OLLAMA_HOST"] = "127.0.0.1:9"
    client = Recorder()
    seen: dict[str, Any] = {}

    async def body(conn):
        with pytest.raises(acp.RequestError) as refused:
            await conn.authenticate(method_id="model")
        seen["auth"] = refused.value
        session = await conn.new_session(cwd=str(project.path), mcp_servers=[])
        sid = session.session_id
        await client.take()
        for command in ("/recall clamp", "/locate clamp upper bound", "/mine",
                        "/recall clamp upper bound", "/mine"):
            await prompt(conn, sid, command)
            seen[command] = seen.get(command, []) + [await client.take()]
        with pytest.raises(acp.RequestError) as no_model:
            await prompt(conn, sid, REQUEST)
        seen["prompt"] = no_model.value

    drive(project.path, tmp_path, client, body, env=env)

    [method] = client.initialized.auth_methods
    assert method.id == "model" and method.description.startswith("no model configured: set ")
    assert "ANTHROPIC_API_KEY" in method.description
    assert str(seen["auth"]).startswith("no model configured") and seen["auth"].code == -32000
    assert str(seen["prompt"]).startswith("no model configured")

    [before_mining] = seen["/recall clamp"]
    assert messages(before_mining) == ("No memory yet: run /mine to mine this repository's "
                                       "history first.")
    assert not of_kind(before_mining, "tool_call")

    [located] = seen["/locate clamp upper bound"]
    [started] = of_kind(located, "tool_call")
    [done] = of_kind(located, "tool_call_update")
    assert (started.kind, started.title, done.status) == (
        "search", "locate: clamp upper bound", "completed")
    text = unfenced(done.content[0])
    assert text.startswith("(no memory yet: ranked from the code alone")
    assert " 1. calc.py  (" in text

    first, again = seen["/mine"]
    [mine_call] = of_kind(first, "tool_call")
    assert (mine_call.kind, mine_call.status) == ("other", "in_progress")
    progress = [u.content[0].content.text for u in of_kind(first, "tool_call_update")
                if u.status is None]
    assert progress[0] == "mining: 0/2 new commits" and progress[-1] == "mining: 2/2 new commits"
    final = of_kind(first, "tool_call_update")[-1]
    assert final.status == "completed"
    assert final.content[0].content.text.startswith(
        "stored 2 new commit(s), 0 already known, 2 in history")
    assert of_kind(again, "tool_call_update")[-1].content[0].content.text.startswith(
        "stored 0 new commit(s), 2 already known")

    [recalled] = seen["/recall clamp upper bound"]
    [started] = of_kind(recalled, "tool_call")
    [done] = of_kind(recalled, "tool_call_update")
    assert (started.kind, done.status) == ("search", "completed")
    lines = unfenced(done.content[0]).splitlines()
    assert lines[0].endswith("Fix clamp upper bound returning the lower bound")
    assert lines[1].strip() == "calc.py"


@pytest.mark.skipif(bwrap_path() is None, reason="MCP servers run only under bubblewrap")
def test_the_clients_mcp_servers_are_offered_and_their_tools_called(project, tmp_path):
    project.commit("an MCP server", {"mcp_server.py": SERVER})
    model = scripted(tmp_path, [
        call("demo__add", "m1", a=20, b=22),
        {"text": "", "tool_calls": [{"name": "demo__env", "arguments": {"name": "DEMO_TOKEN"},
                                     "id": "m2"}]},
        call("finish", "m3", summary="20 + 22 is 42"),
    ])
    client = Recorder()
    seen: dict[str, Any] = {}
    servers = [
        McpServerStdio(name="demo", command=sys.executable, args=["mcp_server.py"],
                       env=[EnvVariable(name="DEMO_TOKEN", value="from-the-editor")]),
        SseMcpServer(type="sse", name="web", url="http://127.0.0.1:9/sse", headers=[]),
        McpServerStdio(name="my server", command=sys.executable, args=[], env=[]),
    ]

    async def body(conn):
        session = await conn.new_session(cwd=str(project.path), mcp_servers=servers)
        seen["stop"] = await prompt(conn, session.session_id, "what is 20 + 22?")
        seen["turn"] = await client.take()

    drive(project.path, tmp_path, client, body, "--model", model, "--mode", "full_auto")

    turn = seen["turn"]
    assert seen["stop"] == "end_turn"
    thoughts = "".join(u.content.text for u in of_kind(turn, "agent_thought_chunk"))
    assert "· mcp: skipping MCP server 'web': sse servers are not supported" in thoughts
    assert "· mcp: skipping MCP server 'my server': a name is 1-32 letters" in thoughts
    results = {u.tool_call_id.split(":")[-1]: u for u in of_kind(turn, "tool_call_update")
               if u.status}
    assert results["m1"].status == "completed"
    assert unfenced(results["m1"].content[0]) == "42"
    assert unfenced(results["m2"].content[0]) == "from-the-editor"
    assert "20 + 22 is 42" in messages(turn)
    plans = of_kind(turn, "plan")
    assert [(e.content, e.status) for e in plans[-1].entries] == [
        ("Locate the code and history the request concerns", "completed"),
        ("Answer the request (nothing changed, so nothing to test)", "completed"),
    ]
