"""MCP servers as tools: real servers written with the MCP SDK (and one by hand), run over
stdio in the real sandbox (bubblewrap) of a real workspace, through `McpClients`; the
definitions read from the person's mcp.json and a repository's .mcp.json; one call made by
the scripted model through the real loop and litellm. Nothing is patched."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from evoagent.agent.events import ToolResult
from evoagent.agent.genome import Policy
from evoagent.agent.loop import AgentLoop, LoopConfig
from evoagent.agent.mcp_config import (
    PERSON,
    PROJECT,
    McpServers,
    ServerDef,
    approvals_path,
    approve,
    load_servers,
    user_mcp_path,
)
from evoagent.agent.mcp_tool import checkable
from evoagent.agent.mcp_tools import McpClients, open_mcp, person_paths
from evoagent.agent.model import Model
from evoagent.agent.scripted_provider import (
    ScriptedReply,
    ScriptedToolCall,
    register_script,
    unregister_script,
)
from evoagent.agent.state import RepoState
from evoagent.agent.tools import call_tool
from evoagent.agent.tools.base import ToolContext
from evoagent.sandbox.bwrap import BwrapRunner, bwrap_path
from evoagent.sandbox.config import SandboxConfig
from evoagent.sandbox.local import LocalRunner, UnisolatedWarning
from evoagent.sandbox.workspace import Workspace

needs_bwrap = pytest.mark.skipif(bwrap_path() is None, reason="needs bubblewrap")

SERVER = '''
import os
import socket

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

server = MCPServer("demo")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
async def slow() -> str:
    """Take far too long."""
    await anyio.sleep(60)
    return "late"


@server.tool()
def boom() -> str:
    """Always fails."""
    raise RuntimeError("boom")


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def peek() -> str:
    """Change nothing."""
    return "peeked"


@server.tool()
def env(name: str) -> str:
    """A variable of the server's environment."""
    return os.environ.get(name, "<unset>")


@server.tool()
def connect(port: int) -> str:
    """Try to reach 127.0.0.1:port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except OSError as exc:
        return f"failed: {exc}"
    return "connected"


server.run("stdio")
'''

# A server written by hand: a valid handshake, then a tools/list answer that is not one.
MALFORMED = '''
import json
import sys

for line in sys.stdin:
    message = json.loads(line)
    if "id" not in message:
        continue
    if message["method"] == "initialize":
        result = {"protocolVersion": message["params"]["protocolVersion"],
                  "capabilities": {"tools": {}}, "serverInfo": {"name": "bad", "version": "0"}}
    else:
        result = {"tools": "not a list"}
    print(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}), flush=True)
'''


def person(name: str, *args: str, **env: str) -> ServerDef:
    return ServerDef(name, PERSON, Path("mcp.json"), command=sys.executable, args=args, env=env)


def children() -> set[int]:
    """The processes this test process started that are still alive."""
    pids: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            pids |= {int(p) for p in (task / "children").read_text().split()}
        except FileNotFoundError:  # a thread that just ended
            continue
    return pids


@pytest.fixture
def project(git_repo):
    git_repo.commit("MCP servers", {"mcp_server.py": SERVER, "malformed_server.py": MALFORMED,
                                    "README.md": "# demo\n"})
    return git_repo


@pytest.fixture
def workspace(project, tmp_path):
    """The run's workspace, as a conversation builds it (servers start in its tree)."""
    ws = Workspace.create(project.path, tmp_path / "sandboxes")
    yield ws
    ws.remove()


def clients(workspace: Workspace, servers: list[ServerDef], network: bool = False,
            **timeouts: float) -> tuple[McpClients, list[str]]:
    """`McpClients` on the run's own runner (the workspace's sandbox config)."""
    lines: list[str] = []
    runner = BwrapRunner(workspace.sandbox_config(allow_network=network))
    return McpClients(servers, runner, workspace.path, warn=lines.append, **timeouts), lines


# -- servers in the sandbox ------------------------------------------------------------------


@needs_bwrap
def test_tools_are_offered_as_server__tool_with_the_servers_schema_and_called(workspace):
    before = children()
    mcp, warnings = clients(workspace, [person("demo", "mcp_server.py")])
    with mcp:
        tools = mcp.tools()
        assert {"demo__add", "demo__slow", "demo__boom", "demo__peek"} <= set(tools)
        schema = tools["demo__add"].schema()["function"]
        assert schema["description"] == "[MCP server demo] Add two integers."
        assert schema["parameters"]["properties"]["a"]["type"] == "integer"
        assert schema["parameters"]["required"] == ["a", "b"]
        ctx = ToolContext(workspace=workspace.path, extra_tools=tools, output_limit=500)
        assert (call_tool("demo__add", {"a": 2, "b": 40}, ctx).text, True) == ("42", True)
        # The server's tool raised: an error result for the model; the server goes on.
        failed = call_tool("demo__boom", {}, ctx)
        assert not failed.ok and "boom" in failed.text
        assert call_tool("demo__add", {"a": "two", "b": 1}, ctx).text == (
            "demo__add: bad arguments: a must be an integer")
        assert call_tool("demo__add", {"a": 1, "b": 1}, ctx).text == "2"
        assert children() - before  # the sandboxed server runs, started by this process
    assert warnings == []
    assert children() - before == set()  # and closing ended it, and the loop's thread
    assert not [t for t in threading.enumerate() if t.name == "evoagent-mcp"]


@needs_bwrap
def test_a_persons_server_outside_the_repository_is_shown_to_its_sandbox(workspace, tmp_path):
    # The sandbox hides /tmp and homes; the file the person's config names is shown to it
    # (read-only). A repository's server naming the same file gets no such view.
    outside = tmp_path / "servers"
    outside.mkdir()
    (outside / "demo.py").write_text(SERVER)
    theirs = ServerDef("theirs", PROJECT, workspace.path / ".mcp.json", command=sys.executable,
                       args=(str(outside / "demo.py"),))
    mcp, warnings = clients(workspace, [person("mine", str(outside / "demo.py")), theirs])
    with mcp:
        tools = mcp.tools()
        ctx = ToolContext(workspace=workspace.path, extra_tools=tools)
        assert call_tool("mine__add", {"a": 2, "b": 3}, ctx).text == "5"
        assert not [name for name in tools if name.startswith("theirs__")]
    assert len(warnings) == 1 and "'theirs' is off for this session" in warnings[0]
    assert "can't open file" in warnings[0]
    # A whole hidden root named as an argument is never shown (only what lies inside one).
    home = Path(os.environ["HOME"])
    wide = ServerDef("wide", PERSON, Path("mcp.json"), command="python3",
                     args=(str(home), "/tmp", str(outside / "demo.py")))
    assert person_paths(wide) == [outside / "demo.py"]


@needs_bwrap
def test_a_hanging_call_times_out_and_costs_that_server_only(workspace):
    mcp, warnings = clients(workspace, [person("demo", "mcp_server.py"),
                                        person("other", "mcp_server.py")], call_timeout=1)
    with mcp:
        ctx = ToolContext(workspace=workspace.path, extra_tools=mcp.tools())
        hung = call_tool("demo__slow", {}, ctx)
        assert not hung.ok
        assert hung.text.startswith("demo__slow timed out after 1s; the MCP server 'demo' is off")
        after = call_tool("demo__add", {"a": 1, "b": 2}, ctx)
        assert not after.ok and "is off for this session" in after.text
        assert call_tool("other__add", {"a": 1, "b": 2}, ctx).text == "3"
    assert warnings == ["evoagent: MCP server 'demo' is off for this session: "
                        "demo__slow timed out after 1s"]


@needs_bwrap
def test_servers_that_crash_or_answer_malformed_at_start_cost_one_warning_each(workspace):
    crash = person("crash", "-c", "import sys; print('no config found', file=sys.stderr); "
                                  "sys.exit(3)")
    malformed = person("malformed", "malformed_server.py")
    mcp, warnings = clients(workspace, [crash, malformed, person("demo", "mcp_server.py")])
    with mcp:
        assert {name.split("__")[0] for name in mcp.tools()} == {"demo"}
    assert sorted(warnings) == [
        "evoagent: MCP server 'crash' is off for this session: it did not start (connection "
        "closed; its last words: no config found)",
        "evoagent: MCP server 'malformed' is off for this session: it did not start (it "
        "answered with a malformed message)",
    ]


@needs_bwrap
def test_a_server_that_never_answers_is_given_up_after_the_start_timeout(workspace):
    before = children()
    mute = person("mute", "-c", "import time; time.sleep(60)")
    mcp, warnings = clients(workspace, [mute], start_timeout=1)
    with mcp:
        assert mcp.tools() == {}
    assert warnings == ["evoagent: MCP server 'mute' is off for this session: it did not start "
                        "within 1s"]
    assert children() - before == set()


@needs_bwrap
def test_network_is_refused_inside_the_sandbox_unless_the_policy_allows_it(workspace):
    """A server's sandbox has the network when the policy's `network` is on, or when its
    `mcp_network` names that server; bubblewrap's own network namespace (no network) cannot
    reach a port this test opened on the host's loopback."""
    demo, docs = person("demo", "mcp_server.py"), person("docs", "mcp_server.py")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        outcomes = {}
        for network, servers in ((False, [demo, docs]), (True, [demo])):
            lines: list[str] = []
            policy = Policy(mcp=True, network=network, mcp_network=["docs"])
            runner = BwrapRunner(workspace.sandbox_config(allow_network=network))
            with open_mcp(McpServers(start=servers), runner, workspace.path, lines.append,
                          policy=policy) as mcp:
                ctx = ToolContext(workspace=workspace.path, extra_tools=mcp.tools())
                for server in servers:
                    outcomes[network, server.name] = call_tool(
                        f"{server.name}__connect", {"port": port}, ctx).text
            assert lines == []
    assert outcomes[False, "demo"].startswith("failed:")
    assert outcomes[False, "docs"] == "connected"  # granted to this server only
    assert outcomes[True, "demo"] == "connected"


@needs_bwrap
def test_only_the_persons_config_hands_a_variable_of_their_environment_to_a_server(
        workspace, monkeypatch):
    monkeypatch.setenv("DEMO_API_KEY", "not for servers")
    mine = person("mine", "mcp_server.py", DEMO_TOKEN="${DEMO_TOKEN}", PLAIN="a value")
    theirs = ServerDef("theirs", PROJECT, workspace.path / ".mcp.json", command=sys.executable,
                       args=("mcp_server.py",), env={"DEMO_TOKEN": "${DEMO_TOKEN}"})
    mcp, warnings = clients(workspace, [mine, theirs])
    mcp.environ = {"DEMO_TOKEN": "s3cret"}
    with mcp:
        ctx = ToolContext(workspace=workspace.path, extra_tools=mcp.tools())
        assert call_tool("mine__env", {"name": "DEMO_TOKEN"}, ctx).text == "s3cret"
        assert call_tool("mine__env", {"name": "PLAIN"}, ctx).text == "a value"
        assert call_tool("theirs__env", {"name": "DEMO_TOKEN"}, ctx).text == "<unset>"
        assert call_tool("mine__env", {"name": "DEMO_API_KEY"}, ctx).text == "<unset>"
    assert warnings == [f"evoagent: MCP server 'theirs' ({workspace.path / '.mcp.json'}): not "
                        "passing 'DEMO_TOKEN': a repository may not name your environment's "
                        "variables"]


@needs_bwrap
def test_a_call_is_approved_as_a_command_unless_the_persons_server_says_read_only(workspace):
    asked: list[tuple[str, str]] = []
    answer = {"allow": True}

    def approve(action: str, detail: str) -> bool:
        asked.append((action, detail))
        return answer["allow"]

    repo_copy = ServerDef("repo", PROJECT, Path(".mcp.json"), command=sys.executable,
                          args=("mcp_server.py",))
    mcp, _ = clients(workspace, [person("demo", "mcp_server.py"), repo_copy])
    with mcp:
        ctx = ToolContext(workspace=workspace.path, extra_tools=mcp.tools(), approve=approve)
        assert call_tool("demo__add", {"a": 2, "b": 3}, ctx).text == "5"
        assert call_tool("demo__peek", {}, ctx).text == "peeked"  # not asked
        assert call_tool("repo__peek", {}, ctx).text == "peeked"  # asked: not the person's
        answer["allow"] = False
        refused = call_tool("demo__add", {"a": 1, "b": 1}, ctx)
        assert not refused.ok and refused.text.startswith("The user declined this command")
    assert asked == [("command", 'mcp demo__add {"a": 2, "b": 3}'),
                     ("command", "mcp repo__peek {}"),
                     ("command", 'mcp demo__add {"a": 1, "b": 1}')]


HTTP_SERVER = '''
import sys

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.context import Context

server = MCPServer("web")


@server.tool()
def token(ctx: Context) -> str:
    """The X-Token header of the request."""
    return ctx.request_context.request.headers.get("x-token", "<none>")


server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[1]))
'''


def test_an_http_server_of_the_persons_config_is_reached_with_its_headers(tmp_path):
    script = tmp_path / "http_server.py"
    script.write_text(HTTP_SERVER)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, str(script), str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        web = ServerDef("web", PERSON, Path("mcp.json"), url=f"http://127.0.0.1:{port}/mcp",
                        headers={"X-Token": "Bearer ${WEB_TOKEN}"})
        with McpClients([web], None, tmp_path, environ={"WEB_TOKEN": "t0k"}) as mcp:
            ctx = ToolContext(workspace=tmp_path, extra_tools=mcp.tools())
            assert call_tool("web__token", {}, ctx).text == "Bearer t0k"
    finally:
        server.terminate()
        server.wait(10)


def test_without_bubblewrap_no_stdio_server_starts(workspace):
    with pytest.warns(UnisolatedWarning):
        runner = LocalRunner(SandboxConfig(writable=(workspace.path,)))
    lines: list[str] = []
    with McpClients([person("demo", "mcp_server.py")], runner, workspace.path,
                    warn=lines.append) as mcp:
        assert mcp.tools() == {}
    assert lines == ["evoagent: MCP server 'demo' is off for this session: servers run only in "
                     "the bubblewrap sandbox, which is not available here"]


@needs_bwrap
def test_the_scripted_model_calls_an_mcp_tool_through_the_loop(workspace):
    seen_tools: list[list[dict]] = []

    def add_call(messages, tools):
        seen_tools.append(tools)
        return ScriptedReply(tool_calls=[ScriptedToolCall("demo__add", {"a": 20, "b": 22})])

    register_script("mcp-loop", [add_call, ScriptedReply(
        tool_calls=[ScriptedToolCall("finish", {"summary": "added"})])])
    events: list = []
    mcp, _ = clients(workspace, [person("demo", "mcp_server.py")])
    try:
        with mcp:
            tools = mcp.tools()
            loop = AgentLoop(
                Model(name="scripted/mcp-loop"),
                ToolContext(workspace=workspace.path, extra_tools=tools),
                LoopConfig(["read", "finish", *sorted(tools)]),
                events.append,
                [{"role": "system", "content": "You add."}, {"role": "user", "content": "2+2?"}],
            )
            outcome = loop.run()
    finally:
        unregister_script("mcp-loop")
    assert outcome.finished
    offered = {t["function"]["name"]: t["function"] for t in seen_tools[0]}
    assert offered["demo__add"]["parameters"]["required"] == ["a", "b"]
    results = [(e.name, e.output, e.ok) for e in events if isinstance(e, ToolResult)]
    assert results[0] == ("demo__add", "42", True)
    assert loop.messages[3]["role"] == "tool" and loop.messages[3]["content"] == "42"


# -- definitions -----------------------------------------------------------------------------


def write_json(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


SERVERS = {"mcpServers": {"demo": {"command": "python", "args": ["mcp_server.py"]}}}


def test_the_persons_servers_start_and_a_repositorys_wait_for_approval(project):
    assert user_mcp_path() == Path(os.environ["XDG_CONFIG_HOME"]) / "evoagent" / "mcp.json"
    write_json(user_mcp_path(), {"mcpServers": {
        "web": {"url": "https://mcp.example.com/mcp", "headers": {"Authorization": "${TOKEN}"}},
        "files": {"command": "npx", "args": ["-y", "files-server"], "env": {"T": "${T}"}},
    }})
    project.commit("a server", {".mcp.json": json.dumps(SERVERS)})
    RepoState(project.path).ensure()  # .evoagent/ is kept out of git, as in every repository
    lines: list[str] = []
    found = load_servers(project.path, warn=lines.append)
    assert [(s.name, s.origin) for s in found.start] == [("web", PERSON), ("files", PERSON)]
    assert [(s.name, s.origin, s.args) for s in found.unapproved] == [
        ("demo", PROJECT, ("mcp_server.py",))]
    assert lines == []

    approve(project.path, found.unapproved[0])
    found = load_servers(project.path, warn=lines.append)
    assert [s.name for s in found.start] == ["web", "files", "demo"] and not found.unapproved

    changed = {"mcpServers": {"demo": {"command": "python", "args": ["other.py"]}}}
    project.commit("the server changes", {".mcp.json": json.dumps(changed)})
    found = load_servers(project.path, warn=lines.append)
    assert [s.name for s in found.unapproved] == ["demo"]  # a new definition: asked again
    assert lines == []


def test_approvals_the_repository_commits_approve_nothing(project):
    project.commit("a server", {".mcp.json": json.dumps(SERVERS)})
    [server] = load_servers(project.path).unapproved
    approve(project.path, server)
    project.git("add", "-f", ".evoagent/mcp-approved.json")
    project.commit("ship our own approval")
    lines: list[str] = []
    found = load_servers(project.path, warn=lines.append)
    assert [s.name for s in found.unapproved] == ["demo"]
    assert lines == [f"evoagent: ignoring {approvals_path(project.path)}: it is tracked by git, "
                     "so the repository wrote it"]


def test_bad_files_and_entries_cost_one_warning_line_each(project):
    write_json(user_mcp_path(), '{"mcpServers": {"demo": ')
    project.commit("servers", {".mcp.json": json.dumps({"mcpServers": {
        "ok": {"command": "python", "args": ["mcp_server.py"]},
        "web": {"url": "https://example.com/mcp"},
        "bad__name": {"command": "x"},
        "noargs": {"command": "x", "args": "not a list"},
    }})})
    lines: list[str] = []
    found = load_servers(project.path, warn=lines.append)
    assert found.start == [] and [s.name for s in found.unapproved] == ["ok"]
    mcp_json = project.path / ".mcp.json"
    assert lines == [
        f"evoagent: ignoring MCP servers of {user_mcp_path()}: invalid JSON (Expecting value "
        "at line 1 column 25)",
        f"evoagent: ignoring MCP server 'web' of {mcp_json}: a repository may define only "
        "stdio servers (a URL decides where data goes)",
        f"evoagent: ignoring MCP server 'bad__name' of {mcp_json}: a name is 1-32 letters, "
        "digits, '-' or single '_'",
        f"evoagent: ignoring MCP server 'noargs' of {mcp_json}: \"args\" must be a list of "
        "strings",
    ]


def test_a_repository_mcp_json_behind_a_link_is_not_read(project, tmp_path):
    elsewhere = write_json(tmp_path / "elsewhere.json", SERVERS)
    (project.path / ".mcp.json").symlink_to(elsewhere)
    lines: list[str] = []
    assert load_servers(project.path, warn=lines.append).unapproved == []
    assert len(lines) == 1 and lines[0].startswith("evoagent: ignoring MCP servers: ")
    assert "not a regular file" in lines[0]


def test_schemas_keep_for_checking_only_what_the_argument_check_understands():
    schema = {"type": "object", "properties": {
        "when": {"type": ["string", "null"]},
        "n": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"anyOf": [{"type": "string"}]}},
    }, "required": ["n", 3], "additionalProperties": False}
    assert checkable(schema) == {"type": "object", "properties": {
        "when": {}, "n": {"type": "integer"}, "tags": {"type": "array", "items": {}},
    }, "required": ["n"], "additionalProperties": False}
    assert checkable({"properties": []}) == {"type": "object"}

