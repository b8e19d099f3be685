"""MCP servers in a conversation, as the app and ACP open one: the genome's policy and
settings decide which servers start and which tools are offered, a repository's server
waiting for approval is one phase line naming the command that approves it, and /ask offers
the tools a person's server declares read-only. A real git repository, real servers (the
MCP SDK) in the real sandbox, the scripted model through the real loop and litellm."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from evoagent.agent.approval import ApprovalMode
from evoagent.agent.events import Phase, ToolResult
from evoagent.agent.genome import init_genome
from evoagent.agent.mcp_config import PERSON, PROJECT, ServerDef, user_mcp_path
from evoagent.agent.mcp_connection import Connection
from evoagent.agent.mcp_tool import McpTool
from evoagent.agent.mcp_tools import McpClients
from evoagent.agent.repo_context import RepoContext
from evoagent.agent.scripted_provider import ScriptedReply
from evoagent.agent.session import Session
from evoagent.agent.state import RepoState
from evoagent.sandbox.bwrap import bwrap_path
from test_fix_e2e import call
from test_mcp_cmds import UNSAFE
from test_mcp_tools import SERVER, children
from test_session import Recorder

needs_bwrap = pytest.mark.skipif(bwrap_path() is None, reason="needs bubblewrap")

DEMO = {"command": sys.executable, "args": ["mcp_server.py"]}


@pytest.fixture
def project(git_repo):
    git_repo.commit("an MCP server", {"mcp_server.py": SERVER, "README.md": "# demo\n"})
    RepoState(git_repo.path).ensure()
    return git_repo


def define(project, person: dict, repository: dict | None = None) -> None:
    user_mcp_path().parent.mkdir(parents=True, exist_ok=True)
    user_mcp_path().write_text(json.dumps({"mcpServers": person}))
    if repository is not None:
        project.commit("the repository's servers",
                       {".mcp.json": json.dumps({"mcpServers": repository})})


def tune_genome(project, policy: dict[str, str], tools: str = "") -> None:
    """Edit the live genome's policy.toml lines (`key = value`) and agent.toml's [tools]."""
    genome = project.path / ".evoagent" / "agent"
    init_genome(genome)
    text = (genome / "policy.toml").read_text()
    for key, value in policy.items():
        assert f"\n{key} = " in text
        text = "\n".join(f"{key} = {value}" if line.startswith(f"{key} = ") else line
                         for line in text.split("\n"))
    (genome / "policy.toml").write_text(text)
    if tools:
        agent = genome / "agent.toml"
        agent.write_text(agent.read_text().replace("[tools]\n", f"[tools]\n{tools}\n"))


def offered_names(tools) -> list[str]:
    return sorted(t["function"]["name"] for t in tools or [])


@needs_bwrap
def test_the_genome_decides_which_servers_start_and_ask_offers_the_read_only_tools(
        project, script):
    """One conversation (its servers start once): a first turn, then /ask."""
    define(project, {"demo": DEMO, "blocked": DEMO, "off": DEMO},
           {"waiting": {"command": "node\x1b]0;pwned\x07", "args": ["srv.js", "a\nb"]}})
    tune_genome(project, {"mcp_servers": '["demo", "off", "waiting"]'},
                tools='mcp_disabled = ["off", "demo__add"]')
    offered: list[list[str]] = []

    def recording(step):
        def respond(messages, tools):
            offered.append(offered_names(tools))
            return step
        return respond

    steps = [ScriptedReply(text="Nothing to change."), call("demo__peek"),
             ScriptedReply(text="It says peeked.")]
    emit, before = Recorder(), children()
    session = Session.open(RepoContext.open(project.path),
                           script([recording(step) for step in steps]),
                           ApprovalMode.FULL_AUTO, emit)
    try:
        first = session.ask("look around")
        asked = session.ask("what does peek say?", read_only=True)
    finally:
        session.close()
    assert children() - before == set()  # closing the conversation ended its servers
    assert first.status == asked.status == "answered"

    names = offered[0]
    assert {"demo__peek", "demo__boom", "demo__connect", "edit", "run"} <= set(names)
    assert "demo__add" not in names  # disabled by the genome, alone of its server
    assert not [n for n in names if n.startswith(("blocked__", "off__", "waiting__"))]
    lines = [e.detail for e in emit.of(Phase) if e.name == "mcp"]
    assert lines == [
        "MCP server 'blocked' is not started: the agent's policy (policy.toml "
        "mcp_servers) does not allow it",
        "MCP server 'off' is not started: the agent disables it (agent.toml [tools] "
        "mcp_disabled)",
        f"MCP server 'waiting' of {project.path / '.mcp.json'} waits for your "
        "approval (stdio: 'node' srv.js 'a b'): run `evoagent mcp approve waiting` to start it",
    ]
    assert not any(UNSAFE.search(line) for line in lines)

    # /ask: the reading tools, and of the MCP tools only the one its server declares read-only
    assert offered[1] == offered[2] == sorted([
        "demo__peek", "finish", "load_skill", "locate", "outline", "read", "recall", "repo_map",
        "search"])
    assert [(e.name, e.output, e.ok) for e in emit.of(ToolResult)] == [
        ("demo__peek", "peeked", True)]


@pytest.mark.parametrize(("origin", "believed"), [(PERSON, True), (PROJECT, False)])
def test_a_read_only_hint_is_believed_of_the_persons_servers_only(origin, believed):
    """What makes an MCP tool a reading tool in /ask (`Tool.read_only`); no process needed."""
    server = ServerDef("demo", origin, Path("mcp.json"), command="demo-server")
    connection = Connection(server, lambda: None, None)
    clients = McpClients([], runner=None, workspace=Path("."))
    spec = {"name": "peek", "inputSchema": {"type": "object"},
            "annotations": {"readOnlyHint": True}}
    assert McpTool(clients, connection, spec).read_only is believed
    assert McpTool(clients, connection, {**spec, "annotations": {}}).read_only is False
