"""Turn a finished run into a knowledge record once a person approves it.

A run folder (`.evoagent/runs/<id>/`, written by the headless `fix` command) holds
`report.json` and `patch.diff`. The record takes its intent from the issue's first
paragraph, its solution from the agent's final summary, its files from the diff, and its
tests from the test files the diff touched plus the passing tests that live in them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evoagent.memory.commit_names import (
    is_test_path,
    path_from_diff_header,
    strip_prefix,
    unquote_path,
)

from .errors import EvoError

if TYPE_CHECKING:
    from evoagent.memory.knowledge import Knowledge, KnowledgeStore

REPORT = "report.json"
PATCH = "patch.diff"
INTENT_CHARS = 500


def resolve_run(runs_dir: Path, run_id: str) -> Path:
    """The run folder named RUN_ID or uniquely starting with it."""
    run_id = run_id.strip()
    if not run_id or "/" in run_id or run_id in (".", ".."):
        raise EvoError(f"unknown run: {run_id!r}")
    exact = runs_dir / run_id
    if exact.is_dir():
        return exact
    matches = sorted(p for p in runs_dir.glob("*") if p.is_dir() and p.name.startswith(run_id))
    if not matches:
        raise EvoError(f"unknown run: {run_id} (no folder in {runs_dir})")
    if len(matches) > 1:
        shown = ", ".join(p.name for p in matches[:5])
        raise EvoError(f"run id {run_id} is ambiguous: {shown}")
    return matches[0]


def default_approver(repo: Path) -> str:
    """`git config user.name` of the repository, else $USER."""
    proc = subprocess.run(
        ["git", "-C", str(repo), "config", "user.name"], capture_output=True, text=True, check=False
    )
    name = proc.stdout.strip()
    return name or os.environ.get("USER", "") or "unknown"


def intent_of(issue: str) -> str:
    """The issue's first paragraph on one line (a Markdown heading mark dropped)."""
    for paragraph in re.split(r"\n\s*\n", issue.strip()):
        text = " ".join(paragraph.split()).lstrip("#").strip()
        if text:
            return text if len(text) <= INTENT_CHARS else text[: INTENT_CHARS - 1] + "…"
    return ""


def files_of(diff: str) -> list[str]:
    """Paths a unified diff touches, in order (new path; old path for deletions)."""
    seen: dict[str, None] = {}
    header = ""
    old = ""
    for line in diff.splitlines():
        if line.startswith("diff --git "):
            if header:
                seen.setdefault(header, None)
            header = path_from_diff_header(line[len("diff --git ") :].encode())
            old = ""
        elif line.startswith("--- "):
            old = _diff_path(line[4:])
        elif line.startswith("+++ "):
            new = _diff_path(line[4:])
            path = new or old
            if path:
                seen.setdefault(path, None)
            header = ""
    if header:
        seen.setdefault(header, None)
    return list(seen)


def _diff_path(raw: str) -> str:
    raw = raw.split("\t", 1)[0].rstrip()
    if raw == "/dev/null":
        return ""
    return strip_prefix(unquote_path(raw.encode()))


def tests_of(files: list[str], passed: list[str]) -> list[str]:
    """Test files the diff touched, then the passing test ids that live in touched files."""
    touched = set(files)
    out: dict[str, None] = {f: None for f in files if is_test_path(f)}
    for test_id in passed:
        if isinstance(test_id, str) and test_id.split("::", 1)[0] in touched:
            out.setdefault(test_id, None)
    return list(out)


def read_run(run_dir: Path) -> tuple[dict[str, Any], str]:
    """(report, patch) of a run folder, with one-line errors for what is missing or broken."""
    if not run_dir.is_dir():
        raise EvoError(f"unknown run: {run_dir.name} (no folder {run_dir})")
    report_file = run_dir / REPORT
    try:
        report = json.loads(report_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EvoError(f"run {run_dir.name} has no {REPORT}") from None
    except (OSError, ValueError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise EvoError(f"run {run_dir.name}: unreadable {REPORT}: {first}") from None
    if not isinstance(report, dict):
        raise EvoError(f"run {run_dir.name}: {REPORT} is not a JSON object")
    try:
        patch = (run_dir / PATCH).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        patch = ""
    return report, patch


def build_knowledge(report: dict[str, Any], patch: str, approved_by: str, note: str) -> Knowledge:
    from evoagent.memory.knowledge import Knowledge

    files = files_of(patch)
    tests = report.get("tests") if isinstance(report.get("tests"), dict) else {}
    after = tests.get("after") if isinstance(tests.get("after"), dict) else {}
    return Knowledge(
        intent=intent_of(str(report.get("issue") or "")),
        root_cause=str(report.get("root_cause") or ""),
        solution=str(report.get("summary") or "").strip(),
        diff=patch,
        files=files,
        tests=tests_of(files, list(after.get("passed") or [])),
        note=note.strip(),
        approved_by=approved_by,
        run_id=str(report.get("run_id") or ""),
        base_sha=str(report.get("base_sha") or ""),
        commit_sha=str(report.get("commit_sha") or ""),
    )


def capture_from_run(
    run_dir: Path,
    approved_by: str,
    note: str,
    store: KnowledgeStore,
    force: bool = False,
    patch: str | None = None,
) -> Knowledge:
    """Keep the run's fix as an active knowledge record; refuse runs that proved nothing.

    `patch` is what the person accepted when it was only part of the run's patch. A run
    that did not end "fixed" needs `force`; an empty patch, a run already kept as active
    knowledge, or a report without a base commit is refused.
    """
    report, proposed = read_run(run_dir)
    patch = proposed if patch is None else patch
    name = str(report.get("run_id") or run_dir.name)
    report.setdefault("run_id", run_dir.name)
    status = report.get("status")
    if status != "fixed" and not force:
        raise EvoError(f"run {name} is not fixed (status: {status}): pass --force to keep it anyway")
    if not patch.strip() or not files_of(patch):
        raise EvoError(f"run {name} has an empty patch: nothing to keep")
    if not report.get("base_sha"):
        raise EvoError(f"run {name}: {REPORT} has no base_sha")
    kept = [k for k in store.for_run(str(report["run_id"])) if k.active]
    if kept:
        raise EvoError(f"run {name} is already knowledge {kept[0].id}")
    return store.add(build_knowledge(report, patch, approved_by, note))
