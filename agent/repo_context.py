"""Everything a command needs about the repository it runs in, built lazily.

The heavy parts (LanceDB, embeddings, the code index) are created on first use so that
commands which do not need them stay fast.
"""

from __future__ import annotations

import subprocess
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Settings, load_settings, store_uri, tracked_by_git, warn_once
from .errors import EvoError
from .state import RepoState, open_repo

if TYPE_CHECKING:
    from evoagent.memory.revisions import AsOf
    from evoagent.memory.store import MemoryStore


class RepoContext:
    def __init__(self, state: RepoState, settings: Settings):
        self.state = state
        self.settings = settings

    @classmethod
    def open(cls, start: Path | None = None, **overrides: Any) -> RepoContext:
        state = open_repo(start)
        return cls(state, load_settings(state, overrides))

    @property
    def root(self) -> Path:
        return self.state.root

    @cached_property
    def store(self) -> MemoryStore:
        from evoagent.memory.embeddings import EmbeddingSpecError, make_embedder
        from evoagent.memory.store import MemoryStore

        try:
            embedder = make_embedder(self.settings.embedding)
        except EmbeddingSpecError as exc:
            raise EvoError(str(exc)) from exc
        return MemoryStore(store_uri(self.state, self.settings), embedder)

    @cached_property
    def knowledge(self):
        from evoagent.memory.knowledge import KnowledgeStore

        return KnowledgeStore(self.store)

    @property
    def venv(self) -> Path | None:
        """The repo's virtualenv, activated in the sandbox for its tests (None: the tools on
        PATH, evoagent's own Python included)."""
        if self.settings.venv:
            path = Path(self.settings.venv)
            path = path if path.is_absolute() else self.root / path
            if not (path / "bin" / "python").exists():
                raise EvoError(f"venv {path} has no bin/python")
            return path.resolve()
        default = self.root / ".venv"
        if not (default / "bin" / "python").exists():
            return None
        found = default.resolve()
        # A `.venv` the repository commits is its content: one leading outside the checkout
        # (a symlink to ~/.local, say) would have the sandbox show that directory. The
        # person's own untracked link is theirs to make.
        if not found.is_relative_to(self.root.resolve()) and tracked_by_git(self.root, ".venv"):
            warn_once("evoagent: ignoring .venv: the repository commits it and it leads outside "
                      "the repository; set venv in your own config to use a virtualenv there")
            return None
        return found

    def has_commits(self) -> bool:
        proc = subprocess.run(
            ["git", "-C", str(self.root), "rev-parse", "--verify", "--quiet", "HEAD"],
            capture_output=True, check=False,
        )
        return proc.returncode == 0

    def as_of(self, rev: str | None) -> AsOf | None:
        if not rev:
            return None
        from evoagent.memory.revisions import AsOf, RevisionError

        try:
            return AsOf.resolve(self.root, rev)
        except RevisionError as exc:
            raise EvoError(str(exc)) from exc
