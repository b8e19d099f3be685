"""`evoagent mine`: store every commit reachable from HEAD that the store does not hold yet.

Incremental (only missing shas are streamed through git), resumable (each batch is one
atomic append, so an interrupted run loses at most the batch in flight) and safe to run
twice at once (the whole run holds the store's write lock; the second run waits, then
finds nothing new). Appends happen on the calling thread: LanceDB
calls from a second thread while this one forks git subprocesses were seen to hang forever
(a mine of pytest's history after sympy's, in one process), so there is no write thread.

`rebuild` mines every commit into a new table and swaps it for the memories at the end
(`MemoryStore.begin_rebuild`): the way back from a damaged store, since git is the source
of truth for memories. An interrupted rebuild leaves the previous table in place.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .errors import MemoryUserError
from .gitlog import DIFF_UNAVAILABLE, iter_commits
from .records import Memory

# One batch is one atomic append (what an interruption can lose) and one LanceDB fragment.
DEFAULT_BATCH_SIZE = 2000


class MineError(MemoryUserError, RuntimeError):
    """The path is not a git repository, or git failed."""


class _Store(Protocol):
    def write_lock(self) -> contextlib.AbstractContextManager: ...
    def known_shas(self) -> set[str]: ...
    def add(self, memories: list[Memory]) -> int: ...
    def finish_write(self) -> None: ...
    def begin_rebuild(self) -> Any: ...  # a Rebuild: .staging (a _Store), .backup, .moved
    def finish_rebuild(self, rebuild: Any) -> Any: ...


@dataclass
class MineResult:
    stored: int  # memories added by this run
    skipped: int  # commits already in the store
    total: int  # commits reachable from HEAD
    seconds: float
    shallow: bool = False  # a shallow clone: history before the graft is not mined
    empty: bool = False  # no commits yet
    without_diff: int = 0  # stored with paths only: git could not read their objects
    rebuilt: bool = False  # every commit mined afresh into a table that replaced the memories
    backup: str | None = None  # the folder a rebuild moved unreadable tables into
    moved_aside: list[str] = field(default_factory=list)  # those tables, every byte kept


def mine(
    repo_path: str | Path,
    store: _Store,
    progress: Callable[[int, int], None] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    rebuild: bool = False,
) -> MineResult:
    """Mine the history of HEAD into `store`; `progress(done, todo)` after each batch.
    With `rebuild`, every commit goes into a new table that then replaces the memories."""
    started = time.monotonic()
    repo = Path(repo_path)
    _git(repo, "rev-parse", "--git-dir")  # fails with a clear message outside a repo
    shallow = _git(repo, "rev-parse", "--is-shallow-repository") == "true"
    with store.write_lock():
        job = store.begin_rebuild() if rebuild else None
        result = _mine_into(repo, job.staging if job else store, progress, batch_size)
        if job:
            store.finish_rebuild(job)
            result.rebuilt, result.moved_aside = True, list(job.moved)
            result.backup = str(job.backup) if job.backup else None
    result.seconds = time.monotonic() - started
    result.shallow = shallow
    return result


def _mine_into(
    repo: Path, store: _Store, progress: Callable[[int, int], None] | None, batch_size: int
) -> MineResult:
    """The commits of HEAD that `store` lacks, appended batch by batch (lock held)."""
    if not _has_head(repo):
        return MineResult(0, 0, 0, 0.0, empty=True)
    shas = _git(repo, "rev-list", "HEAD").split()
    known = store.known_shas()
    missing = [sha for sha in shas if sha not in known]
    if progress:
        progress(0, len(missing))
    stored = done = without_diff = 0
    batch: list[Memory] = []
    with contextlib.closing(iter_commits(repo, shas_stdin=missing)) as memories:
        for memory in memories:
            batch.append(memory)
            if memory.diff_excerpt.startswith(DIFF_UNAVAILABLE):
                without_diff += 1
            if len(batch) >= batch_size:
                stored += store.add(batch)
                done += len(batch)
                batch = []
                if progress:
                    progress(done, len(missing))
    if batch:
        stored += store.add(batch)
        if progress:
            progress(done + len(batch), len(missing))
    if stored:
        store.finish_write()
    return MineResult(
        stored=stored,
        skipped=len(shas) - len(missing),
        total=len(shas),
        seconds=0.0,
        without_diff=without_diff,
    )


def _has_head(repo: Path) -> bool:
    result = subprocess.run(
        ["git", "rev-parse", "--verify", "-q", "HEAD^{commit}"],
        cwd=repo,
        capture_output=True,
    )
    return result.returncode == 0


def _git(repo: Path, *args: str) -> str:
    try:
        result = subprocess.run(["git", *args], cwd=repo, capture_output=True, check=False)
    except FileNotFoundError as exc:  # no git binary, or repo dir missing
        raise MineError(f"cannot run git in {repo}: {exc}") from exc
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise MineError(message[-1] if message else f"git {args[0]} failed in {repo}")
    return result.stdout.decode("utf-8", "replace").strip()
