"""Approved fixes (knowledge records) as task candidates: the adapter to `validate`.

A person approved a run's patch; when that patch also brings a test that fails without the
fix, it is a task like a history commit, and it is validated the same way (`validate`):
P is the record's base commit, P + the patch's test part is the "before" side, P + the whole
patch the "after" side. The statement is what the person asked for: the run's full issue
text when its run folder is still there, else the record's intent (the issue's first
paragraph) — never the solution, root cause or diff.

Only active records are looked at (a retracted or superseded fix is no gold patch); each
decision is keyed `knowledge:<record id>` in the task store, so mining stays incremental.
A record whose commit is already a history task is not mined twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from evoagent.sandbox.workspace import GitError, git

from ..knowledge_capture import intent_of
from .candidates import (
    NO_RUNNABLE_TEST,
    NO_SOURCE_CHANGE,
    NO_TEST_CHANGE,
    Candidate,
    Commit,
    is_source,
)
from .patch_split import split_patch
from .store import Reject, TaskStore

if TYPE_CHECKING:
    from evoagent.memory.knowledge import Knowledge

PREFIX = "knowledge:"
# Rejection reasons of their own (stable strings, counted by `tasks mine --json`).
BASE_MISSING = "base commit missing"
PATCH_TRUNCATED = "patch truncated"
ALREADY_A_TASK = "already a history task"
_TRUNCATED = "... (diff truncated)\n"


def decision_key(record_id: str) -> str:
    """Where a record's decision lives in the store (a Task's `commit`, a Reject's `commit`)."""
    return PREFIX + record_id


def approved(records: Iterable[Knowledge]) -> tuple[list[Knowledge], int]:
    """Active records, oldest approval first, and how many others (retracted, superseded)
    were skipped."""
    records = list(records)
    active = sorted((r for r in records if r.active), key=lambda r: (r.approved_at, r.id))
    return active, len(records) - len(active)


def _run_file(runs_dir: Path | None, record: Knowledge, name: str) -> str | None:
    if runs_dir is None or record.run_id in ("", ".", "..") or "/" in record.run_id:
        return None
    try:
        return (runs_dir / record.run_id / name).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def statement_of(record: Knowledge, runs_dir: Path | None) -> tuple[str, str]:
    """(statement, where it came from): the run's issue when it is the one the record was
    made from (its first paragraph is the intent), else the intent."""
    text = _run_file(runs_dir, record, "report.json")
    try:
        issue = str(json.loads(text).get("issue") or "") if text else ""
    except (ValueError, AttributeError):
        issue = ""
    if issue.strip() and intent_of(issue) == record.intent:
        return issue.strip(), "run issue"
    return record.intent.strip(), "knowledge intent"


def full_patch(record: Knowledge, runs_dir: Path | None) -> str | None:
    """The approved patch. A record keeps at most DIFF_CHARS of it; when cut, the run's
    patch.diff is the whole of it only if cutting it gives the same record (a person may
    have approved part of a run's patch). None when the whole patch is gone."""
    from evoagent.memory.knowledge import bound_diff

    if not record.diff.endswith(_TRUNCATED):
        return record.diff
    proposed = _run_file(runs_dir, record, "patch.diff")
    if proposed is not None and bound_diff(proposed) == record.diff:
        return proposed
    return None


def _reject(record: Knowledge, reason: str, detail: str = "") -> Reject:
    return Reject(
        decision_key(record.id), reason, detail, "filter", record.intent[:200], 0.0, time.time()
    )


def _has_commit(repo: Path, sha: str) -> bool:
    try:
        git(repo, "cat-file", "-e", f"{sha}^{{commit}}")
    except GitError:
        return False
    return True


def to_candidate(
    repo: Path, record: Knowledge, runs_dir: Path | None, history_tasks: dict[str, str]
) -> Candidate | Reject:
    """The record as a Candidate for `validate`, or why it cannot be one."""
    if record.commit_sha and record.commit_sha in history_tasks:
        return _reject(record, ALREADY_A_TASK, history_tasks[record.commit_sha])
    if not record.base_sha or not _has_commit(repo, record.base_sha):
        return _reject(record, BASE_MISSING, record.base_sha or "the record names none")
    patch = full_patch(record, runs_dir)
    if patch is None:
        return _reject(record, PATCH_TRUNCATED, f"run {record.run_id} no longer holds it")
    split = split_patch(patch)
    if not split.test_files and not split.deleted_test_files:
        return _reject(record, NO_TEST_CHANGE, ", ".join(split.code_files[:5]))
    if not any(is_source(p) for p in split.code_files):
        return _reject(record, NO_SOURCE_CHANGE, ", ".join(split.test_files[:5]))
    if not split.runnable_test_files():
        return _reject(record, NO_RUNNABLE_TEST, ", ".join(split.test_files[:5]))
    statement, source = statement_of(record, runs_dir)
    date = datetime.fromtimestamp(record.approved_at, UTC).isoformat()
    stand_in = Commit(decision_key(record.id), [record.base_sha], date, statement)
    return Candidate(stand_in, patch, split, knowledge_id=record.id, statement_source=source)


def candidates(
    repo: Path, records: list[Knowledge], store: TaskStore, runs_dir: Path | None
) -> Iterator[Candidate | Reject]:
    """Each undecided record as a candidate or a filter-stage reject, lazily. The store is
    read when the first record is reached, so history tasks mined just before count."""
    decided = store.decided()
    history = {t.commit: t.id for t in store.tasks() if t.source == "history"}
    for record in records:
        if decision_key(record.id) not in decided:
            yield to_candidate(repo, record, runs_dir, history)
