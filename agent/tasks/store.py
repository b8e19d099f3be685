"""Replay tasks mined from the repository's history, and where they are kept.

A `Task` is one validated fail→pass commit: the agent starts at `base_commit` with the
problem statement only; the kernel later applies `test_patch` and runs `fail_to_pass` and
`pass_to_pass`. A `Reject` is a commit that was looked at and not kept, with its reason.

Storage (`.evoagent/tasks/`, see docs/architecture.md):

    tasks.jsonl     one Task per line (JSON of `Task.to_json`)
    rejects.jsonl   one Reject per line: commit, reason, detail, stage
    split.json      the train/val/test ratios (`{"train": 0.6, "val": 0.2, "test": 0.2}`)

Both JSONL files grow by appends: each record is one `write` of one line under an
exclusive lock on `.lock` (a file of its own, so the lock survives `update` replacing
tasks.jsonl), and a concurrent miner or a kill loses at most the record in flight.
`update` (a model-written statement added later) rewrites tasks.jsonl to a temporary file
and renames it over the old one under the same lock: readers see the old file or the new
one, never half of each. A commit found in either file is decided and never validated again
(incremental mining); an approved fix is keyed `knowledge:<record id>` in that place.
The split is a pure function of the task id and the ratios (sha256 of the id → [0, 1)), so
it never changes for a task unless the ratios do, and every reader agrees on it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

TASKS_FILE = "tasks.jsonl"
REJECTS_FILE = "rejects.jsonl"
SPLIT_FILE = "split.json"
LOCK_FILE = ".lock"
SPLITS = ("train", "val", "test")
DEFAULT_RATIOS = {"train": 0.6, "val": 0.2, "test": 0.2}
TASK_FORMAT = 1


class TaskStoreError(ValueError):
    """A task-store request that cannot be served (unknown id, bad ratios)."""


def split_of(task_id: str, ratios: dict[str, float]) -> str:
    """train / val / test from a hash of the id: deterministic, stable across runs."""
    digest = hashlib.sha256(task_id.encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64
    edge = 0.0
    for name in SPLITS:
        edge += ratios[name]
        if point < edge:
            return name
    return SPLITS[-1]


def parse_ratios(text: str) -> dict[str, float]:
    """ "0.6,0.2,0.2" (train,val,test; normalized to sum 1)."""
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError as exc:
        raise TaskStoreError(
            f"split ratios must be three numbers like 0.6,0.2,0.2: {text!r}"
        ) from exc
    if len(values) != 3 or any(v < 0 for v in values) or sum(values) <= 0:
        raise TaskStoreError(f"split ratios must be three non-negative numbers: {text!r}")
    total = sum(values)
    return {name: value / total for name, value in zip(SPLITS, values, strict=True)}


@dataclass
class Task:
    id: str
    repo: str
    base_commit: str
    """P: the commit the agent starts from (C's first parent)."""
    commit: str
    """C: the commit whose change is the gold solution; `knowledge:<record id>` for an
    approved fix (C is then P plus the approved patch, which may never have been committed)."""
    patch: str
    """The code part of C's diff against P (what an agent should produce)."""
    test_patch: str
    """The test part, hidden from the agent and applied by the kernel before scoring."""
    fail_to_pass: list[str]
    pass_to_pass: list[str]
    test_command: str
    test_files: list[str]
    """The touched test files that were run (the only ones F2P/P2P ids come from)."""
    created_at: str
    """C's committer date, ISO 8601."""
    problem_statement: str
    statement_sources: list[str] = field(default_factory=lambda: ["commit message"])
    """What the statement was built from: commit message, knowledge intent, issue texts."""
    issue_refs: list[str] = field(default_factory=list)
    diff_tests: list[str] = field(default_factory=list)
    """FAIL_TO_PASS tests the diff itself added or changed (kept apart from collateral)."""
    cascade: bool = False
    """FAIL_TO_PASS looks inflated (one failure breaking many tests); see `cascade_reason`."""
    cascade_reason: str = ""
    flaky: list[str] = field(default_factory=list)
    """Tests excluded because runs on one side disagreed (see `runs`)."""
    runs: dict[str, int] = field(default_factory=dict)
    """How many times the touched tests ran at P+tests and at C when the task was validated
    (`{"parent": 3, "commit": 3}`): every kept test held in each run. Empty in tasks mined
    before it was recorded."""
    source: str = "history"
    """history | knowledge"""
    knowledge_id: str = ""
    """The approved knowledge record a `knowledge` task was made from."""
    fail_lines: dict[str, str] = field(default_factory=dict)
    """FAIL_TO_PASS test → the first line of its failure at P+tests (what a reporter sees)."""
    rewritten_statement: str = ""
    """A model-written issue-style statement (kept beside the original); empty if none."""
    rewrite_model: str = ""
    """The model that wrote `rewritten_statement` (it is model-written, never the author's)."""
    rewrite_rejected: str = ""
    """Why the latest model rewrite was refused (it leaked the fix); empty when it was kept."""
    mined_at: float = 0.0
    seconds: float = 0.0
    format: int = TASK_FORMAT

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Task:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_swebench(self) -> dict[str, Any]:
        """A SWE-bench instance (FAIL_TO_PASS / PASS_TO_PASS JSON-encoded, as SWE-bench
        ships them) plus `environment_setup_commit`-free extras other harnesses ignore."""
        return {
            "instance_id": self.id,
            "repo": self.repo,
            "base_commit": self.base_commit,
            "patch": self.patch,
            "test_patch": self.test_patch,
            "problem_statement": self.problem_statement,
            "hints_text": "",
            "created_at": self.created_at,
            "version": "",
            "FAIL_TO_PASS": json.dumps(self.fail_to_pass),
            "PASS_TO_PASS": json.dumps(self.pass_to_pass),
            "environment_setup_commit": self.base_commit,
        }


@dataclass
class Reject:
    commit: str
    reason: str
    """One of REASONS (validate.py)."""
    detail: str = ""
    """The evidence: an error's first line, the failing tests, the patch error."""
    stage: str = "validate"
    """filter (never a candidate) | validate (ran in the sandbox)"""
    subject: str = ""
    seconds: float = 0.0
    decided_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reject:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


class TaskStore:
    """Tasks and rejects as append-only JSONL under one directory."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @property
    def tasks_file(self) -> Path:
        return self.path / TASKS_FILE

    @property
    def rejects_file(self) -> Path:
        return self.path / REJECTS_FILE

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The store's exclusive lock. It is held on a file of its own: a lock on tasks.jsonl
        itself would be lost to a writer still waiting on the inode `update` renamed away."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / LOCK_FILE, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _append(self, file: Path, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._locked(), open(file, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()

    @staticmethod
    def _read(file: Path) -> Iterator[dict[str, Any]]:
        if not file.is_file():
            return
        with open(file, encoding="utf-8") as handle:
            for line in handle:
                line = line.strip()
                if not line:
                    continue
                try:
                    yield json.loads(line)
                except ValueError:  # a line cut by a kill mid-write: skip it
                    continue

    def add_task(self, task: Task) -> None:
        self._append(self.tasks_file, task.to_json())

    def add_reject(self, reject: Reject) -> None:
        self._append(self.rejects_file, reject.to_json())

    def update(self, task: Task) -> None:
        """Replace the stored task for `task.commit` by `task` (every copy of it, so the file
        keeps one), atomically: a temporary file renamed over tasks.jsonl under the lock."""
        with self._locked():
            lines = []
            found = False
            if self.tasks_file.is_file():
                lines = self.tasks_file.read_text(encoding="utf-8").splitlines()
            out = []
            for line in lines:
                try:
                    commit = json.loads(line).get("commit") if line.strip() else None
                except ValueError:  # a line cut by a kill: unreadable either way, dropped
                    continue
                if commit == task.commit:
                    if not found:
                        out.append(json.dumps(task.to_json(), ensure_ascii=False))
                    found = True
                elif line.strip():
                    out.append(line)
            if not found:
                raise TaskStoreError(f"no task {task.id!r} to update (see `evoagent tasks list`)")
            handle, temp = tempfile.mkstemp(prefix=".tasks-", suffix=".tmp", dir=self.path)
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as file:
                    file.write("".join(line + "\n" for line in out))
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(temp, self.tasks_file)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise

    def tasks(self) -> list[Task]:
        """Every task, newest commit first as mined; a commit stored twice keeps its last."""
        by_commit: dict[str, Task] = {}
        for data in self._read(self.tasks_file):
            task = Task.from_json(data)
            by_commit[task.commit] = task
        return list(by_commit.values())

    def rejects(self) -> list[Reject]:
        by_commit: dict[str, Reject] = {}
        for data in self._read(self.rejects_file):
            reject = Reject.from_json(data)
            by_commit[reject.commit] = reject
        return list(by_commit.values())

    def decided(self) -> set[str]:
        """Commits already kept or rejected: mining never looks at them again."""
        shas = {d.get("commit", "") for d in self._read(self.tasks_file)}
        shas |= {d.get("commit", "") for d in self._read(self.rejects_file)}
        shas.discard("")
        return shas

    def get(self, id: str) -> Task:
        """A task by id, unique id prefix, or commit sha prefix."""
        tasks = self.tasks()
        exact = [t for t in tasks if t.id == id]
        if exact:
            return exact[0]
        found = [
            t for t in tasks if t.id.startswith(id) or (len(id) >= 4 and t.commit.startswith(id))
        ]
        if not found:
            raise TaskStoreError(f"no task {id!r} (see `evoagent tasks list`)")
        if len(found) > 1:
            raise TaskStoreError(
                f"task id {id!r} is ambiguous: {', '.join(t.id for t in found[:5])}"
            )
        return found[0]

    # -- split ------------------------------------------------------------------------

    def ratios(self) -> dict[str, float]:
        file = self.path / SPLIT_FILE
        if not file.is_file():
            return dict(DEFAULT_RATIOS)
        try:
            data = json.loads(file.read_text())
            return {name: float(data[name]) for name in SPLITS}
        except (ValueError, KeyError, TypeError) as exc:
            raise TaskStoreError(f"{file}: invalid split ratios: {exc}") from exc

    def set_ratios(self, ratios: dict[str, float]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / SPLIT_FILE).write_text(json.dumps(ratios, indent=2) + "\n")

    def split_of(self, task: Task) -> str:
        return split_of(task.id, self.ratios())

    def in_split(self, split: str | None) -> list[Task]:
        tasks = self.tasks()
        if split is None:
            return tasks
        if split not in SPLITS:
            raise TaskStoreError(f"unknown split {split!r}: choose from {', '.join(SPLITS)}")
        ratios = self.ratios()
        return [t for t in tasks if split_of(t.id, ratios) == split]
