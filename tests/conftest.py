"""Shared fixtures: real git repositories built in tmp dirs, and isolated evoagent state."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(autouse=True)
def isolated_user_state(tmp_path_factory, monkeypatch):
    """No test reads or writes the real user's config, keys or git identity."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test Author")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "author@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test Committer")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "committer@example.com")
    for key in list(os.environ):
        if key.startswith("EVOAGENT_") or key.endswith("_API_KEY"):
            monkeypatch.delenv(key, raising=False)
    yield


class GitRepo:
    """A real git repository in a tmp dir with helpers to write files and commit."""

    def __init__(self, path: Path):
        self.path = path
        self._tick = 0
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str, input: bytes | None = None) -> str:
        env = dict(os.environ)
        # Deterministic, strictly increasing commit times so ordering tests are stable.
        stamp = f"{1_700_000_000 + self._tick * 60} +0000"
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = stamp
        out = subprocess.run(
            ["git", *args], cwd=self.path, env=env, input=input, capture_output=True, check=True
        )
        return out.stdout.decode("utf-8", "replace").strip()

    def write(self, rel: str, content: str | bytes) -> Path:
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
        return target

    def commit(self, message: str, files: dict[str, str | bytes | None] | None = None) -> str:
        """Write (or delete, for None) the given files, stage everything, commit, return sha."""
        for rel, content in (files or {}).items():
            if content is None:
                (self.path / rel).unlink()
            else:
                self.write(rel, content)
        self.git("add", "-A")
        self._tick += 1
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def git_repo(tmp_path) -> GitRepo:
    return GitRepo(tmp_path / "repo")


@pytest.fixture
def make_repo(tmp_path):
    def factory(name: str = "repo") -> GitRepo:
        return GitRepo(tmp_path / name)

    return factory


@pytest.fixture
def script():
    """Register scripted-model replies under a fresh name; returns the model name
    (`scripted/<name>`). Every script registered by the test is removed after it."""
    from evoagent.agent.scripted_provider import register_script, unregister_script

    names: list[str] = []

    def register(steps) -> str:
        names.append(f"test-{uuid.uuid4().hex[:10]}")
        register_script(names[-1], steps)
        return f"scripted/{names[-1]}"

    yield register
    for name in names:
        unregister_script(name)
