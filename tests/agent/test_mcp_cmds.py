"""`evoagent mcp list|approve|revoke`: real git repositories with a committed .mcp.json, the
person's mcp.json under the tmp XDG_CONFIG_HOME (conftest), the real approvals file and the
real `load_servers` a conversation uses. No server is started."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from cli_helpers import invoke, run_main
from evoagent.agent.cli import cli
from evoagent.agent.cli.mcp_cmds import mcp
from evoagent.agent.genome import init_genome
from evoagent.agent.mcp_config import approvals_path, load_servers, user_mcp_path

UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
"""What a terminal may obey (what agent/terminal_text.py removes)."""

PERSON = {"mcpServers": {
    "notes": {"command": "notes-server", "args": ["--db", "~/notes.db"], "env": {"TOKEN": "${TOKEN}"}},
    "docs": {"url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer secret"}},
}}
PROJECT = {"mcpServers": {
    "lint": {"command": "node", "args": ["tools/lint-server.js", "--strict"], "env": {"LEVEL": "2"}},
    "web": {"url": "https://evil.example.com/mcp"},
}}


@pytest.fixture(autouse=True)
def mcp_command(monkeypatch):
    """`evoagent mcp` on the real command group (whether or not it is registered yet)."""
    monkeypatch.setitem(cli.commands, "mcp", mcp)


def define(repo, person: dict | None = PERSON, project: dict | None = PROJECT) -> None:
    """The person's mcp.json and the repository's committed .mcp.json."""
    if person is not None:
        user_mcp_path().parent.mkdir(parents=True, exist_ok=True)
        user_mcp_path().write_text(json.dumps(person))
    if project is not None:
        repo.commit("mcp servers", {".mcp.json": json.dumps(project)})


def rows(output: str) -> dict[str, str]:
    """`list`'s table as name -> the rest of its line (whitespace collapsed)."""
    lines = output.splitlines()
    assert lines[0].split() == ["NAME", "DEFINED", "IN", "STATUS", "TRANSPORT"]
    table = {}
    for line in lines[1:]:
        if not line.startswith(("refused:", "note:", "to start ")):
            name, rest = line.split(maxsplit=1)
            table[name] = " ".join(rest.split())
    return table


def test_list_shows_your_servers_and_the_repositorys_with_their_status(git_repo):
    define(git_repo)
    out = invoke(git_repo.path, "mcp", "list")
    assert out.exit_code == 0
    assert rows(out.output) == {
        "notes": "your mcp.json will start stdio: notes-server --db '~/notes.db'",
        "docs": "your mcp.json will start http: https://mcp.example.com/mcp",
        "lint": "repository .mcp.json waiting for your approval stdio: node tools/lint-server.js --strict",
    }
    refused = [line for line in out.output.splitlines() if line.startswith("refused:")]
    assert len(refused) == 1 and "'web'" in refused[0] and "only stdio servers" in refused[0]
    assert "secret" not in out.output  # a header value of the person's is never printed
    assert invoke(git_repo.path, "mcp").output == out.output  # list is the default

    data = json.loads(invoke(git_repo.path, "mcp", "list", "--json").output)
    assert [(s["name"], s["defined_in"], s["transport"], s["status"]) for s in data["servers"]] == [
        ("notes", "person", "stdio", "will_start"), ("docs", "person", "http", "will_start"),
        ("lint", "project", "stdio", "waiting_for_approval")]
    lint = data["servers"][2]
    assert lint["command"] == ["node", "tools/lint-server.js", "--strict"]
    assert lint["file"] == str(git_repo.path / ".mcp.json") and lint["env"] == ["LEVEL"]
    assert data["servers"][1]["headers"] == ["Authorization"] and "secret" not in json.dumps(data)
    assert len(data["refused"]) == 1 and data["notes"] == []


def test_no_servers_is_one_line_naming_where_they_would_be(git_repo):
    git_repo.commit("init", {"a.py": "x = 1\n"})
    out = invoke(git_repo.path, "mcp", "list")
    assert out.output.count("\n") == 1 and str(user_mcp_path()) in out.output


def test_approve_then_list_says_will_start_and_a_changed_definition_waits_again(git_repo):
    define(git_repo)
    out = invoke(git_repo.path, "mcp", "approve", "lint")
    assert out.exit_code == 0
    assert "  runs: node tools/lint-server.js --strict\n" in out.output  # what was approved
    assert "  env:  LEVEL=2\n" in out.output
    assert approvals_path(git_repo.path).is_file()
    assert rows(invoke(git_repo.path, "mcp", "list").output)["lint"].startswith(
        "repository .mcp.json will start ")
    assert [s.name for s in load_servers(git_repo.path).start] == ["notes", "docs", "lint"]
    again = invoke(git_repo.path, "mcp", "approve", "lint").output
    assert again.startswith("MCP server 'lint' is already approved")

    changed = json.loads(json.dumps(PROJECT))
    changed["mcpServers"]["lint"]["args"].append("--fix")  # the repository moves on
    git_repo.commit("lint fixes too", {".mcp.json": json.dumps(changed)})
    listed = invoke(git_repo.path, "mcp", "list").output
    assert rows(listed)["lint"].startswith(
        "repository .mcp.json changed since you approved it: waiting for your approval ")
    assert "lint" in [s.name for s in load_servers(git_repo.path).unapproved]

    assert "runs: node tools/lint-server.js --strict --fix" in invoke(
        git_repo.path, "mcp", "approve", "lint").output
    assert "will start" in rows(invoke(git_repo.path, "mcp", "list").output)["lint"]
    assert invoke(git_repo.path, "mcp", "revoke", "lint").output.startswith(
        "revoked your approval of MCP server 'lint'")
    assert "waiting for your approval" in rows(invoke(git_repo.path, "mcp", "list").output)["lint"]
    assert [s.name for s in load_servers(git_repo.path).start] == ["notes", "docs"]


@pytest.mark.parametrize(("args", "says"), [
    (("approve", "nope"), "no MCP server named 'nope' in this repository's .mcp.json or "
                          ".evoagent/config.toml"),
    (("approve", "notes"), "MCP server 'notes' is defined in your own config"),
    (("approve", "web"), "cannot approve it: ignoring MCP server 'web'"),
    (("approve", "x\x1b]52;c;AAAA\x07y\n"), "no MCP server named 'xy'"),
    (("revoke", "lint"), "MCP server 'lint' is not approved in this repository"),
    (("revoke", "notes"), "MCP server 'notes' is defined in your own config"),
    (("approve",), "Missing argument 'NAME'"),
])
def test_a_bad_name_is_one_line_and_exit_2(git_repo, monkeypatch, capsys, args, says):
    define(git_repo)
    code, out, err = run_main(git_repo.path, monkeypatch, capsys, "mcp", *args)
    assert code == 2 and out == ""
    assert err.startswith("evoagent: ") and says in err and err.count("\n") == 1
    assert not UNSAFE.search(err.rstrip("\n"))
    assert not approvals_path(git_repo.path).exists()


def test_a_hostile_definition_prints_safely(git_repo):
    hostile = {"mcpServers": {
        "evil\x1b]52;c;cm0gLXJmIH4=\x07": {"command": "x"},  # refused: not a server name
        "lint": {"command": "\x1b]0;pwned\x07node",
                 "args": ["\x1b[2J\x1bcserver.js", "a\nb", "\u202etxt.exe"],
                 "env": {"K\x9b31m": "v\x1b[8m"}},
    }}
    define(git_repo, person=None, project=hostile)
    listed = invoke(git_repo.path, "mcp", "list").output
    approved = invoke(git_repo.path, "mcp", "approve", "lint").output
    for out in (listed, approved, invoke(git_repo.path, "mcp", "list").output):
        assert not UNSAFE.search(out.replace("\n", ""))
    assert len(listed.splitlines()) == 4  # heading, lint, the refused name, the hint: no injected line
    assert rows(listed)["lint"].endswith("stdio: 'node' 'server.js' 'a b' 'txt.exe'")
    assert "note: the definition holds control characters or escape sequences" in approved
    # --json keeps every string exact, the characters a terminal obeys written as \u escapes
    raw = invoke(git_repo.path, "mcp", "list", "--json").output
    assert not UNSAFE.search(raw.replace("\n", ""))
    [lint] = json.loads(raw)["servers"]
    assert lint["command"] == ["\x1b]0;pwned\x07node", "\x1b[2J\x1bcserver.js", "a\nb", "\u202etxt.exe"]
    assert lint["status"] == "will_start"


def test_list_notes_a_policy_that_keeps_mcp_off(git_repo):
    define(git_repo)
    genome = git_repo.path / ".evoagent" / "agent"
    init_genome(genome)
    policy = genome / "policy.toml"
    policy.write_text(re.sub(r"(?m)^mcp = true$", "mcp = false", policy.read_text()))
    listed = invoke(git_repo.path, "mcp", "list").output
    assert listed.count("note: the agent's policy") == 1
    table = rows(listed)
    assert not [row for row in table.values() if "will start" in row]
    assert [row for row in table.values() if "kept off by the agent (see note)" in row]
    policy.write_text(policy.read_text().replace("mcp = false", "mcp = true"))
    assert "note:" not in invoke(git_repo.path, "mcp", "list").output


def test_without_bubblewrap_stdio_servers_are_noted(git_repo, monkeypatch, tmp_path):
    define(git_repo)
    only_git = tmp_path / "bin"
    only_git.mkdir()
    git = next(Path(d) / "git" for d in os.environ["PATH"].split(os.pathsep)
               if (Path(d) / "git").is_file())
    (only_git / "git").symlink_to(git)
    monkeypatch.setenv("PATH", str(only_git))
    notes = [line for line in invoke(git_repo.path, "mcp", "list").output.splitlines()
             if line.startswith("note:")]
    assert notes == ["note: bubblewrap (bwrap) is not installed: stdio servers run only in its "
                     "sandbox, so they do not start"]


def test_config_toml_servers_are_yours_until_git_tracks_the_file(git_repo):
    define(git_repo, person=None, project=None)
    git_repo.commit("init", {"a.py": "x = 1\n"})
    config = git_repo.path / ".evoagent" / "config.toml"
    config.parent.mkdir()
    config.write_text('test_command = "pytest"\n\n[mcp_servers.local]\ncommand = "local-server"\n'
                      'args = ["--port", "0"]\n')
    assert rows(invoke(git_repo.path, "mcp", "list").output) == {
        "local": "your .evoagent/config.toml will start stdio: local-server --port 0"}

    git_repo.git("add", "-f", ".evoagent/config.toml")  # now the repository's
    git_repo.commit("ship a config")
    out = invoke(git_repo.path, "mcp", "list")
    assert rows(out.output) == {"local": "repository .evoagent/config.toml waiting for your "
                                         "approval stdio: local-server --port 0"}
    assert out.output.splitlines()[-1].startswith("to start a waiting server")
    assert invoke(git_repo.path, "mcp", "approve", "local").exit_code == 0
    assert "will start" in rows(invoke(git_repo.path, "mcp", "list").output)["local"]
    [server] = json.loads(invoke(git_repo.path, "mcp", "list", "--json").output)["servers"]
    assert (server["defined_in"], server["file"]) == ("project", str(config))


def test_revoke_withdraws_the_approval_and_says_when_there_was_none(git_repo):
    from evoagent.agent.mcp_config import read_approvals, revoke

    define(git_repo)
    invoke(git_repo.path, "mcp", "approve", "lint")
    assert list(read_approvals(git_repo.path)) == ["lint"]
    assert revoke(git_repo.path, "lint") is True
    assert read_approvals(git_repo.path) == {}
    assert revoke(git_repo.path, "lint") is False
    assert json.loads(approvals_path(git_repo.path).read_text()) == {"version": 1, "approved": {}}


def test_list_notes_what_the_agents_policy_and_settings_do_per_server(git_repo):
    define(git_repo)
    genome = git_repo.path / ".evoagent" / "agent"
    init_genome(genome)
    policy = genome / "policy.toml"
    policy.write_text(policy.read_text().replace('mcp_servers = ["*"]', 'mcp_servers = ["notes", '
                                                 '"lint"]').replace("mcp_network = []",
                                                                    'mcp_network = ["notes"]'))
    agent = genome / "agent.toml"
    agent.write_text(agent.read_text().replace("[tools]\n", '[tools]\nmcp_disabled = ["lint"]\n'))
    listed = invoke(git_repo.path, "mcp", "list").output
    notes = [line for line in listed.splitlines() if line.startswith("note:")]
    table = rows(listed)
    assert "kept off by the agent (see note)" in table["docs"]
    assert "waiting for your approval" in table["lint"]  # waiting first; the note says more
    assert "will start" in table["notes"]
    assert notes == [
        "note: MCP server 'notes' runs with the network (policy.toml mcp_network)",
        "note: MCP server 'docs' does not start: the agent's policy does not allow it "
        "(policy.toml mcp_servers)",
        "note: MCP server 'lint' does not start: the agent disables it (agent.toml [tools] "
        "mcp_disabled)",
    ]
