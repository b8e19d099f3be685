"""Revisions and reachability: what `--as-of REV` means for history.

History "as of" a revision is exactly the commits that revision can reach; the commit
time is only a cheap prefilter before the exact reachability check.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .errors import MemoryUserError


class RevisionError(MemoryUserError, ValueError):
    pass


def git(repo: Path | str, *args: str, check: bool = True) -> str:
    proc = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, check=False
    )
    if check and proc.returncode != 0:
        raise RevisionError(proc.stderr.decode("utf-8", "replace").strip() or f"git {args[0]} failed")
    return proc.stdout.decode("utf-8", "replace")


@dataclass(frozen=True)
class AsOf:
    """A point in history: nothing committed after it, or unreachable from it, is visible."""

    repo: Path
    sha: str
    committed_at: int

    @classmethod
    def resolve(cls, repo: Path | str, rev: str) -> AsOf:
        out = git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
        sha = out.strip()
        if not sha:
            raise RevisionError(f"unknown revision: {rev}")
        stamp = git(repo, "show", "-s", "--format=%ct", sha).strip()
        return cls(Path(repo), sha, int(stamp))

    @cached_property
    def reachable(self) -> frozenset[str]:
        return frozenset(git(self.repo, "rev-list", self.sha).split())

    def where_clause(self) -> str:
        # Commit times are not monotonic (rebases, clock skew) but a commit reachable from
        # REV with a later committer time is rare; the exact filter is `visible`.
        return "true" if not self.committed_at else f"committed_at <= {self.committed_at + 86400 * 365}"

    def visible(self, sha: str) -> bool:
        return sha in self.reachable
