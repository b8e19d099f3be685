"""Per-repo state: the `.evoagent/` directory and finding the repository it belongs to.

`.evoagent/` is listed in `.git/info/exclude` so it is never committed to the user's repo
and never shows up in `git status`.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import NotARepository

STATE_DIR = ".evoagent"
EXCLUDE_LINE = "/.evoagent/"

DEFAULT_CONFIG = """\
# evoagent settings for this repository. Precedence: CLI flag > EVOAGENT_* environment >
# this file > [tool.evoagent] in pyproject.toml > ~/.config/evoagent/config.toml > defaults.

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
        for folder in (self.dir, self.memory_dir, self.runs_dir, self.cache_dir):
            folder.mkdir(parents=True, exist_ok=True)
        if not self.config_file.exists():
            self.config_file.write_text(DEFAULT_CONFIG)
        self._exclude_from_git()
        return self

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
