"""`evoagent fix`: issue in, sandboxed fix proven by the repo's tests out.

Wires the parts together for one session (`run_request`): the genome, the model, a sandbox
workspace, memory (locate/recall as evidence), the tools, the solver, and the run record.
Front ends pass an `emit` callable and get every event; `run_fix` (headless) and the app's
`Session.ask` both run through `run_request`, differing only in their `RunControls`.

The user's working tree is written only with `apply=True`; `commit=True` makes a branch
from HEAD without touching the working tree or the index.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .conversation import (
    Conversation,
    RunControls,
    TurnOutcome,
)
from .errors import EvoError
from .events import Event
from .repo_context import RepoContext
from .run_record import RunRecord
from .solve import SolveResult


@dataclass
class FixOptions:
    issue: str
    model: str | None = None
    apply: bool = False
    commit: bool = False
    strict: bool = False
    """Refuse to run without bubblewrap isolation."""


FixOutcome = TurnOutcome
"""What `run_request` returns (the turn's run id, folder, status, exit code, report, patch,
usage)."""


def read_github_event(path: Path) -> str:
    """The issue text of a GitHub Actions `issues`/`issue_comment` event payload."""
    try:
        payload = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise EvoError(f"cannot read GitHub event {path}: {exc}") from exc
    issue = payload.get("issue") if isinstance(payload, dict) else None
    if not isinstance(issue, dict) or not (issue.get("title") or issue.get("body")):
        raise EvoError(f"{path}: not a GitHub issue event (no issue.title/body)")
    number = issue.get("number")
    head = f"{issue.get('title', '').strip()}" + (f" (#{number})" if number else "")
    return f"{head}\n\n{issue.get('body') or ''}".strip()


def run_fix(
    ctx: RepoContext, options: FixOptions, emit: Callable[[Event], None] = lambda e: None
) -> FixOutcome:
    def deliver(result: SolveResult, record: RunRecord, report: dict[str, Any]) -> None:
        if result.status == "fixed" and result.patch.strip():
            if options.apply:
                report["applied"] = _apply(ctx.root, record.patch_path)
            if options.commit:
                report["branch"] = _commit_branch(ctx.root, result, record.run_id, options.issue)

    return run_request(ctx, options.issue, options.model, emit,
                       RunControls(strict=options.strict, after_solve=deliver))


def run_request(
    ctx: RepoContext,
    request: str,
    model: str | None,
    emit: Callable[[Event], None],
    controls: RunControls | None = None,
) -> FixOutcome:
    """One fix run end to end in a fresh sandbox: a conversation of one turn (the task
    prompt, the baseline tests first), its workspace removed at the end. The user's tree is
    touched only by `controls.after_solve`."""
    conversation = Conversation(ctx, model, emit, controls or RunControls(),
                                conversational=False)
    try:
        return conversation.turn(request)
    finally:
        conversation.close()


def _apply(root: Path, patch: Path) -> bool:
    check = subprocess.run(["git", "-C", str(root), "apply", "--check", str(patch)],
                           capture_output=True, text=True)
    if check.returncode != 0:
        raise EvoError(f"the patch does not apply to the working tree: {check.stderr.strip()}")
    subprocess.run(["git", "-C", str(root), "apply", str(patch)], check=True)
    return True


def _commit_branch(root: Path, result: SolveResult, run_id: str, issue: str) -> str:
    """Commit the patch on `evoagent/fix-<slug>` from HEAD via a private index."""
    slug = run_id.split("-", 2)[-1].rsplit("-", 1)[0] or "issue"
    branch = f"evoagent/fix-{slug}"
    with tempfile.TemporaryDirectory(prefix="evoagent-commit-") as tmp:
        env = {**os.environ, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        patch = Path(tmp) / "patch.diff"
        patch.write_text(result.patch)

        def git(*args: str, stdin: str | None = None) -> str:
            return subprocess.run(["git", "-C", str(root), *args], env=env, input=stdin,
                                  capture_output=True, text=True, check=True).stdout.strip()

        git("read-tree", "HEAD")
        try:
            git("apply", "--cached", str(patch))
        except subprocess.CalledProcessError as exc:
            # The patch was proven on HEAD plus the user's uncommitted changes and touches them.
            reason = (exc.stderr.strip().splitlines() or ["does not apply"])[0]
            raise EvoError(f"cannot commit the patch on HEAD, it needs your uncommitted "
                           f"changes ({reason}); commit them first, or use --apply") from exc
        tree = git("write-tree")
        title = issue.splitlines()[0].strip()[:68] or "Fix issue"
        message = f"{title}\n\n{result.best.outcome.summary if result.best else ''}\n\nEvoagent-Run: {run_id}\n"
        sha = git("commit-tree", tree, "-p", "HEAD", stdin=message)
        # A second run on the same issue gets its own branch instead of moving the first.
        taken = git("for-each-ref", "--format=%(refname:short)", f"refs/heads/{branch}*").split()
        if branch in taken:
            branch = f"{branch}-{run_id.rsplit('-', 1)[-1]}"
        # The empty old value makes update-ref refuse to overwrite an existing ref.
        git("update-ref", f"refs/heads/{branch}", sha, "")
    return branch
