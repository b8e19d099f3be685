"""`.evoagent/`: created idempotently, found from anywhere in the repo, never seen by git."""

from __future__ import annotations

import os

import pytest
from evoagent.agent.errors import NotARepository
from evoagent.agent.state import EXCLUDE_LINE, RepoState, find_repo_root, open_repo


def exclude_lines(repo) -> list[str]:
    return (repo.path / ".git" / "info" / "exclude").read_text().splitlines()


def test_ensure_creates_the_layout(git_repo):
    state = RepoState(git_repo.path).ensure()
    assert state.dir == git_repo.path / ".evoagent"
    for folder in (state.dir, state.memory_dir, state.runs_dir, state.cache_dir):
        assert folder.is_dir()
    assert state.config_file.is_file()


def test_ensure_is_idempotent_and_keeps_edits(git_repo):
    state = RepoState(git_repo.path).ensure()
    state.config_file.write_text('model = "mine"\n')
    (state.runs_dir / "r1").mkdir()
    RepoState(git_repo.path).ensure()
    assert state.config_file.read_text() == 'model = "mine"\n'
    assert (state.runs_dir / "r1").is_dir()
    assert exclude_lines(git_repo).count(EXCLUDE_LINE) == 1


def test_state_is_invisible_to_git(git_repo):
    git_repo.commit("start", {"a.py": "x = 1\n"})
    state = RepoState(git_repo.path).ensure()
    (state.runs_dir / "r1" / "report.json").parent.mkdir(parents=True)
    (state.runs_dir / "r1" / "report.json").write_text("{}")
    assert git_repo.git("status", "--porcelain", "--untracked-files=all") == ""
    assert git_repo.git("check-ignore", ".evoagent/config.toml") == ".evoagent/config.toml"


def test_existing_user_line_is_respected(git_repo):
    exclude = git_repo.path / ".git" / "info" / "exclude"
    exclude.write_text("*.log\n.evoagent/\n")
    RepoState(git_repo.path).ensure()
    assert exclude.read_text() == "*.log\n.evoagent/\n"


def test_exclude_without_trailing_newline(git_repo):
    exclude = git_repo.path / ".git" / "info" / "exclude"
    exclude.write_text("*.log")
    RepoState(git_repo.path).ensure()
    assert exclude.read_text() == f"*.log\n{EXCLUDE_LINE}\n"


def test_missing_info_dir(git_repo):
    info = git_repo.path / ".git" / "info"
    for child in info.iterdir():
        child.unlink()
    info.rmdir()
    RepoState(git_repo.path).ensure()
    assert exclude_lines(git_repo) == [EXCLUDE_LINE]


def test_linked_worktree(git_repo, tmp_path):
    git_repo.commit("start", {"a.py": "x = 1\n"})
    linked = tmp_path / "linked"
    git_repo.git("worktree", "add", "-q", str(linked), "-b", "other")
    state = open_repo(linked)
    assert state.root == linked
    assert (linked / ".evoagent" / "config.toml").is_file()
    status = git_repo.git("-C", str(linked), "status", "--porcelain", "--untracked-files=all")
    assert status == ""


def test_find_repo_root_from_a_subdirectory(git_repo):
    deep = git_repo.path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_repo_root(deep) == git_repo.path
    assert open_repo(deep).dir == git_repo.path / ".evoagent"
    assert not (deep / ".evoagent").exists()


def test_not_a_repository(tmp_path, monkeypatch):
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    with pytest.raises(NotARepository) as info:
        open_repo(plain)
    assert info.value.code == 2
    assert info.value.message.startswith("not a git repository")
    assert str(plain) in info.value.message
    assert not (plain / ".evoagent").exists()


def test_find_repo_root_defaults_to_cwd(git_repo, monkeypatch):
    monkeypatch.chdir(git_repo.path)
    assert find_repo_root() == git_repo.path
    assert os.path.samefile(find_repo_root(), git_repo.path)
