"""`.evoagent/config.toml` as a source of MCP servers: `[mcp_servers.NAME]` tables, the
person's while git does not track the file and the repository's (stdio only, no `${VAR}`,
approval needed) when it does; who wins a name two sources define. Real git repositories,
the real `load_servers` a conversation uses; no server is started."""

from __future__ import annotations

import json

import pytest
from evoagent.agent.config import load_settings
from evoagent.agent.mcp_config import PERSON, PROJECT, approve, load_servers, user_mcp_path
from evoagent.agent.state import RepoState

CONFIG = '''test_command = "pytest -q"

[mcp_servers.notes]
command = "notes-server"
args = ["--db", "notes.db"]
env = { NOTES_TOKEN = "${NOTES_TOKEN}" }

[mcp_servers.web]
url = "https://mcp.example.com/mcp"
headers = { Authorization = "Bearer ${WEB_TOKEN}" }
'''


@pytest.fixture
def repo(git_repo):
    git_repo.commit("init", {"a.py": "x = 1\n"})
    RepoState(git_repo.path).ensure()  # .evoagent/ kept out of git, as in every repository
    return git_repo


def config_file(repo):
    return RepoState(repo.path).config_file


def commit_config(repo, text: str) -> None:
    config_file(repo).write_text(text)
    repo.git("add", "-f", ".evoagent/config.toml")
    repo.commit("ship an evoagent config")


def test_an_untracked_config_toml_defines_the_persons_servers_and_settings_still_load(repo):
    config_file(repo).write_text(CONFIG)
    lines: list[str] = []
    found = load_servers(repo.path, warn=lines.append)
    assert [(s.name, s.origin, s.source) for s in found.start] == [
        ("notes", PERSON, config_file(repo)), ("web", PERSON, config_file(repo))]
    notes, web = found.start
    assert (notes.command, notes.args) == ("notes-server", ("--db", "notes.db"))
    assert notes.environment({"NOTES_TOKEN": "t0k"}, lines.append) == ({"NOTES_TOKEN": "t0k"}, {})
    assert web.header_values({"WEB_TOKEN": "w"}, lines.append) == {"Authorization": "Bearer w"}
    assert lines == [] and found.unapproved == []
    assert load_settings(RepoState(repo.path)).test_command == "pytest -q"


def test_a_config_toml_git_tracks_is_the_repositorys_like_its_mcp_json(repo, monkeypatch):
    commit_config(repo, CONFIG)
    lines: list[str] = []
    found = load_servers(repo.path, warn=lines.append)
    assert found.start == []
    [notes] = found.unapproved
    assert (notes.name, notes.origin) == ("notes", PROJECT)
    assert lines == [f"evoagent: ignoring MCP server 'web' of {config_file(repo)}: a repository "
                     "may define only stdio servers (a URL decides where data goes)"]
    lines.clear()
    assert notes.environment({"NOTES_TOKEN": "t0k"}, lines.append) == ({}, {})
    assert "a repository may not name your environment's variables" in lines[0]

    approve(repo.path, notes)
    assert [s.name for s in load_servers(repo.path, warn=lines.append).start] == ["notes"]
    assert load_settings(RepoState(repo.path)).test_command == "pytest -q"


def test_who_wins_a_name_two_sources_define(repo):
    user_mcp_path().parent.mkdir(parents=True, exist_ok=True)
    user_mcp_path().write_text(json.dumps({"mcpServers": {
        "notes": {"command": "global-notes"}, "docs": {"command": "docs-server"}}}))
    repo.commit("servers", {".mcp.json": json.dumps({"mcpServers": {
        "notes": {"command": "repo-notes"}, "lint": {"command": "lint-server"}}})})
    config_file(repo).write_text(CONFIG)
    lines: list[str] = []
    found = load_servers(repo.path, warn=lines.append)
    # the person's most specific file wins silently; the repository's loses with a line
    assert [(s.name, s.command or s.url) for s in found.start] == [
        ("notes", "notes-server"), ("web", "https://mcp.example.com/mcp"),
        ("docs", "docs-server")]
    assert [s.name for s in found.unapproved] == ["lint"]
    assert lines == [f"evoagent: ignoring MCP server 'notes' of {repo.path / '.mcp.json'}: your "
                     f"{config_file(repo)} defines it"]

    commit_config(repo, '[mcp_servers.lint]\ncommand = "other-lint"\n')
    lines.clear()
    found = load_servers(repo.path, warn=lines.append)
    assert [(s.name, s.command) for s in found.unapproved] == [("lint", "lint-server")]
    assert lines == [f"evoagent: ignoring MCP server 'lint' of {config_file(repo)}: "
                     f"{repo.path / '.mcp.json'} defines it too",
                     f"evoagent: ignoring MCP server 'notes' of {repo.path / '.mcp.json'}: your "
                     f"{user_mcp_path()} defines it"]


@pytest.mark.parametrize(("text", "says"), [
    ('mcp_servers = "notes"\n', "mcp_servers must be a table of servers ([mcp_servers.NAME])"),
    ("[mcp_servers.notes]\nargs = []\n", 'give either "command" (stdio) or "url" (HTTP)'),
    ("[mcp_servers\n", "invalid TOML"),
])
def test_a_bad_table_costs_one_line(repo, text, says):
    config_file(repo).write_text(text)
    lines: list[str] = []
    found = load_servers(repo.path, warn=lines.append)
    assert found.start == found.unapproved == []
    assert len(lines) == 1 and says in lines[0] and str(config_file(repo)) in lines[0]
