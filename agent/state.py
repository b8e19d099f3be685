"""Per-repo state: the `.evoagent/` directory and finding the repository it belongs to.

`.evoagent/` is listed in `.git/info/exclude` so it is never committed to the user's repo
and never shows up in `git status`. A repository that commits it anyway does not get to choose
evoagent's state: a committed genome would pick the agent's prompts, policy (network!) and
code, a committed store what it remembers, and a committed `.evoagent` symlink where all of it
is written. Only a committed `config.toml` is tolerated (config.py treats it as the
repository's, with the repository's narrow rights).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import EvoError, NotARepository

STATE_DIR = ".evoagent"
EXCLUDE_LINE = "/.evoagent/"

DEFAULT_CONFIG = """\
# evoagent settings for this repository. Precedence: CLI flag > EVOAGENT_* environment >
# this file > [tool.evoagent] in pyproject.toml > ~/.config/evoagent/config.toml > defaults.
# This file is yours while git does not track it; model, embedding and store are read from it
# only then (a committed copy is the repository's, which may not choose them).

# model = "anthropic/claude-sonnet-4-5"   # any litellm model name
# embedding = "none"                      # none | litellm:MODEL | st:/path/to/local/model
# store = ".evoagent/memory"              # or any LanceDB URI (s3://..., db://...)
# test_command = "pytest -q"
"""


@dataclass(frozen=True)
class RepoState:
    root: Path

    @property
    def dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def config_file(self) -> Path:
        return self.dir / "config.toml"

    @property
    def memory_dir(self) -> Path:
        return self.dir / "memory"

    @property
    def runs_dir(self) -> Path:
        return self.dir / "runs"

    @property
    def cache_dir(self) -> Path:
        return self.dir / "cache"

    def ensure(self) -> RepoState:
        """Create the state layout (idempotent) and keep it out of git."""
        self._refuse_committed_state()
        for folder in (self.dir, self.memory_dir, self.runs_dir, self.cache_dir):
            folder.mkdir(parents=True, exist_ok=True)
        if not self.config_file.exists():
            self.config_file.write_text(DEFAULT_CONFIG)
        self._exclude_from_git()
        return self

    def _refuse_committed_state(self) -> None:
        if self.dir.is_symlink() or (self.dir.exists() and not self.dir.is_dir()):
            raise EvoError(f"{self.dir} is not a directory (a committed link?): evoagent will "
                           "not write its state where the repository points; remove it")
        tracked = subprocess.run(
            ["git", "-C", str(self.root), "ls-files", "-z", "--", STATE_DIR],
            capture_output=True, check=False,
        ).stdout.decode("utf-8", "replace").split("\0")
        chosen = [p for p in tracked if p and p != f"{STATE_DIR}/config.toml"]
        if chosen:
            shown = ", ".join(chosen[:3]) + (f" and {len(chosen) - 3} more" if len(chosen) > 3 else "")
            raise EvoError(f"this repository commits evoagent state ({shown}): evoagent will "
                           "not use a genome, memory or runs the repository chose; untrack it "
                           f"(git rm -r --cached {STATE_DIR}) or work in another checkout")

    def _exclude_from_git(self) -> None:
        out = subprocess.run(
            ["git", "-C", str(self.root), "rev-parse", "--git-path", "info/exclude"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        exclude = Path(out) if Path(out).is_absolute() else self.root / out
        exclude.parent.mkdir(parents=True, exist_ok=True)
        lines = exclude.read_text().splitlines() if exclude.exists() else []
        if EXCLUDE_LINE not in lines and ".evoagent/" not in lines:
            text = exclude.read_text() if exclude.exists() else ""
            with exclude.open("a") as handle:
                if text and not text.endswith("\n"):
                    handle.write("\n")
                handle.write(EXCLUDE_LINE + "\n")


def find_repo_root(start: Path | None = None) -> Path:
    """The top of the git work tree containing `start` (default: cwd)."""
    where = Path(start or Path.cwd())
    proc = subprocess.run(
        ["git", "-C", str(where), "rev-parse", "--show-toplevel"],
        capture_output=True, text=True, check=False,
    )
    top = proc.stdout.strip()
    if proc.returncode != 0 or not top:
        raise NotARepository(str(where))
    return Path(top)


def open_repo(start: Path | None = None) -> RepoState:
    """Find the repo and make sure its `.evoagent/` exists (every command's first step)."""
    return RepoState(find_repo_root(start)).ensure()
