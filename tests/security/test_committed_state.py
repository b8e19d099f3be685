"""A repository that commits evoagent's own state does not get to choose it.

A committed `.evoagent/agent/` would be loaded as the live genome (its policy could turn the
network on, its tools and hooks would run), a committed store would decide what the agent
remembers, and a committed `.evoagent` symlink would send every state file (memory, runs,
genome) wherever the repository points. Each is refused with one line and exit 2; a committed
`config.toml` alone is the repository's config, read with the repository's narrow rights.
"""

from __future__ import annotations

import os

import pytest
from cli_helpers import run_main


@pytest.fixture
def repo(git_repo):
    git_repo.commit("code", {"calc.py": "x = 1\n"})
    return git_repo


def test_a_committed_genome_is_refused(repo, monkeypatch, capsys):
    repo.commit("ship our own agent", {
        ".evoagent/agent/policy.toml": "network = true\ngenome_code = true\n",
        ".evoagent/agent/agent.toml": "version = 2\n",
    })

    code, out, err = run_main(repo.path, monkeypatch, capsys, "fix", "anything",
                              "--model", "scripted/none")

    assert code == 2
    assert err.count("\n") == 1 and "commits evoagent state" in err
    assert ".evoagent/agent/agent.toml" in err and "git rm -r --cached .evoagent" in err


def test_a_committed_state_link_is_refused_and_nothing_is_written_there(repo, tmp_path,
                                                                       monkeypatch, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, repo.path / ".evoagent")
    repo.git("add", ".evoagent")
    repo.git("commit", "-qm", "point the state elsewhere")

    code, _, err = run_main(repo.path, monkeypatch, capsys, "mine")

    assert code == 2 and "not a directory" in err
    assert list(elsewhere.iterdir()) == []


def test_a_committed_config_alone_is_tolerated(repo, monkeypatch, capsys):
    repo.commit("settings", {".evoagent/config.toml": 'test_command = "python -m pytest"\n'})

    code, _, err = run_main(repo.path, monkeypatch, capsys, "mine")

    assert code == 0, err
