"""A session's runs, one per request, under `.evoagent/runs/<id>/`: what a request returns,
past runs listed and shown again, a run's change (all of it or some hunks, optionally
committed) applied to the working tree, and the person's decision noted in its report.json.
What the conversation makes of a decision (its rebase, what `undo()` restores) stays in
`session.Session`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import patches
from .errors import EvoError
from .knowledge_capture import read_run, resolve_run
from .patches import AppliedChange, FileAccess, FilePatch, NotWritableThrough

if TYPE_CHECKING:
    from .conversation import TurnOutcome


@dataclass
class RequestOutcome:
    run_id: str
    run_dir: Path
    status: str
    """fixed | not_fixed | not_verified | tests_did_not_run | budget_exhausted | answered
    (a reply without a change) | cancelled | error"""
    patch: str
    """The whole pending change of the conversation ("" when there is none)."""
    files: list[FilePatch]
    """`patch` parsed into files and hunks (ids for `accept`)."""
    tests: dict[str, Any] | None
    """`report["tests"]`: {"before": counts, "after": counts, "reproduction": ...}."""
    summary: str
    """The agent's final summary."""
    report: dict[str, Any] = field(default_factory=dict)
    """The whole report.json."""
    answer: str = ""
    """The model's reply when `status` is "answered"."""
    conversation_id: str = ""

    @classmethod
    def from_turn(cls, outcome: TurnOutcome, conversation_id: str) -> RequestOutcome:
        """What `Session.ask` returns for one turn of its conversation."""
        return cls(
            run_id=outcome.run_id,
            run_dir=outcome.run_dir,
            status=outcome.status,
            patch=outcome.patch,
            files=patches.parse(outcome.patch),
            tests=outcome.report.get("tests"),
            summary=str(outcome.report.get("summary") or ""),
            report=outcome.report,
            answer=outcome.answer,
            conversation_id=conversation_id,
        )


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    title: str
    """The request's first line."""
    status: str
    cost_usd: float | None
    cost_label: str
    patch_path: Path | None
    """patch.diff when it exists and is not empty."""
    started: float
    """Unix time the run folder was created (sort key)."""
    model: str


@dataclass
class ResumedRun:
    run_id: str
    request: str
    patch: str
    files: list[FilePatch]
    report: dict[str, Any]


@dataclass
class AcceptResult:
    run_id: str
    paths: list[str]
    """Files the accepted hunks changed in the working tree."""
    commit_sha: str | None = None
    knowledge_id: str | None = None
    knowledge_error: str | None = None
    """Set when keeping the fix as knowledge failed (the change itself stays applied)."""
    written_by: str = "git apply"
    """"git apply", or "editor" when `accept(files=...)` wrote it through them."""
    not_through_editor: str = ""
    """Why `files` were given but `git apply` wrote it (a deletion, a rename, ...)."""


def list_runs(runs_dir: Path) -> list[RunSummary]:
    """Past runs under `runs_dir` (those with a report.json), newest first."""
    runs = []
    for run_dir in runs_dir.iterdir() if runs_dir.is_dir() else []:
        try:
            report, patch = read_run(run_dir)
        except EvoError:
            continue  # still running, or not a run folder
        cost = report.get("cost_usd")
        patch_path = run_dir / "patch.diff"
        runs.append(RunSummary(
            run_id=run_dir.name,
            title=(str(report.get("issue") or "").splitlines() or [""])[0],
            status=str(report.get("status") or "unknown"),
            cost_usd=cost if isinstance(cost, (int, float)) else None,
            cost_label=str(report.get("cost") or ("unknown" if cost is None else f"${cost:.4f}")),
            patch_path=patch_path if patch.strip() else None,
            started=(run_dir / "trajectory.jsonl").stat().st_mtime
            if (run_dir / "trajectory.jsonl").exists() else run_dir.stat().st_mtime,
            model=str(report.get("model") or ""),
        ))
    # Run ids start with a timestamp, so the name breaks ties within one second.
    return sorted(runs, key=lambda r: (r.run_id[:15], r.started, r.run_id), reverse=True)


def resume_run(runs_dir: Path, run_id: str) -> ResumedRun:
    """A past run's request and patch (a unique id prefix works), to show it again."""
    run_dir = resolve_run(runs_dir, run_id)
    report, patch = read_run(run_dir)
    return ResumedRun(run_dir.name, str(report.get("issue") or ""), patch,
                      patches.parse(patch), report)


def apply_run(root: Path, run_dir: Path, report: dict[str, Any], chosen: str, commit: bool,
              files: FileAccess | None) -> tuple[AcceptResult, AppliedChange]:
    """Apply `chosen` (the run's patch, or the hunks the person picked) to the working tree
    at `root`: through `files` when given and every file allows it, else with `git apply`;
    then commit exactly those files when `commit`, with the run's request as the title."""
    applied, fallback = None, ""
    if files is not None and not commit:
        try:
            applied = patches.apply_through(root, chosen, files)
        except NotWritableThrough as exc:
            fallback = exc.message
    if applied is None:
        applied = patches.apply_to_worktree(root, chosen)
    result = AcceptResult(run_dir.name, applied.paths,
                          written_by="editor" if applied.through is not None else "git apply",
                          not_through_editor=fallback)
    if commit:
        title = (str(report.get("issue") or "").strip().splitlines() or ["evoagent change"])[0]
        message = f"{title.strip()[:68]}\n\n{report.get('summary') or ''}".rstrip()
        result.commit_sha = patches.commit(root, applied,
                                           f"{message}\n\nEvoagent-Run: {run_dir.name}\n")
    return result, applied


def note_accepted(run_dir: Path, hunk_ids: list[str] | None, result: AcceptResult) -> None:
    """Note in the run's report what the person accepted, how it was written, and its commit."""
    update_report(run_dir, {"accepted": {
        "hunks": hunk_ids, "paths": result.paths, "commit_sha": result.commit_sha,
        "written_by": result.written_by,
    }, **({"commit_sha": result.commit_sha} if result.commit_sha else {})})


def update_report(run_dir: Path, changes: dict[str, Any]) -> None:
    """Merge `changes` into the run's report.json, atomically; a missing or unreadable
    report is left as it is (the decision itself already happened)."""
    path = run_dir / "report.json"
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    report.update(changes)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=2, default=str))
    tmp.replace(path)
