"""One benchmark task, end to end: the agent works at P with the problem statement only, then
the kernel — never the agent — decides whether the task is resolved.

The agent's run is an ordinary `run_request` pinned to P (`Baseline`): a workspace holding
P's tree and no history, memory as of P, the genome being scored. Its own tests and its own
report do not count. The kernel then takes the patch to a fresh workspace at P, refuses it
if it edits the hidden test files (test tampering), applies the hidden test part, runs the
touched test files once and reads FAIL_TO_PASS and PASS_TO_PASS from JUnit. Resolved means
every FAIL_TO_PASS test passes and every PASS_TO_PASS test still does.

The patch goes through the same patch policy as a fix (`patch_policy`): sections that may never
be delivered are dropped, and test infrastructure (a conftest.py that rewrites reports, say) is
left out of the scored run and listed, so the patch cannot decide its own score.
"""

from __future__ import annotations

import functools
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from evoagent.sandbox.local import make_runner
from evoagent.sandbox.testdetect import detect_test_command
from evoagent.sandbox.workspace import GitError, Workspace, git

from ..genome import Policy
from ..patch_policy import review_patch
from ..solve import base_reader
from ..tasks.patch_split import file_sections
from ..tasks.store import Task
from ..tasks.validate import ValidationConfig, _side, run_side

NO_PATCH = "no patch"
TAMPERED = "test tampering: the patch edits the hidden test files"
DOES_NOT_APPLY = "patch does not apply"
TESTS_DO_NOT_APPLY = "hidden tests do not apply over the patch"
TESTS_FAIL = "tests fail"
AGENT_ERROR = "agent error"


@dataclass
class Score:
    """The kernel's verdict on one patch for one task."""

    resolved: bool
    reason: str = ""
    """Why not resolved (empty when resolved)."""
    tampered: bool = False
    fail_to_pass: dict[str, str] = field(default_factory=dict)
    """FAIL_TO_PASS id -> pass | fail | skip | missing."""
    pass_to_pass: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    left_out: list[str] = field(default_factory=list)
    """Test-infrastructure changes of the patch left out of the scored run ("path: why")."""
    dropped: list[str] = field(default_factory=list)
    """Sections of the patch the policy never applies ("path: why")."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def touched_paths(patch: str) -> set[str]:
    return {section.path for section in file_sections(patch)}


def score_patch(
    repo: Path, sandboxes: Path, task: Task, patch: str, config: ValidationConfig
) -> Score:
    """Apply `patch` then the hidden test part at the task's base, run the task's test files
    once, and judge FAIL_TO_PASS / PASS_TO_PASS. The agent never runs here."""
    started = time.monotonic()
    if not patch.strip():
        return Score(False, NO_PATCH, seconds=0.0)
    hidden = touched_paths(task.test_patch)
    if touched_paths(patch) & hidden:
        return Score(False, TAMPERED, tampered=True, seconds=round(time.monotonic() - started, 3))
    review = review_patch(patch, Policy(),
                          *base_reader(functools.partial(git, repo), task.base_commit))
    left_out = [str(change) for change in review.infrastructure]
    dropped = [str(drop) for drop in review.dropped]
    patch = review.deciding
    ws = Workspace.create(repo, sandboxes, rev=task.base_commit, include_user_changes=False,
                          history=False)
    try:
        for text, failure in ((patch, DOES_NOT_APPLY), (task.test_patch, TESTS_DO_NOT_APPLY)):
            try:
                ws.apply(text)
            except GitError as exc:
                detail = (str(exc).split(": ", 1)[-1].splitlines() or [""])[0]
                return Score(False, f"{failure}: {detail}"[:300],
                             seconds=round(time.monotonic() - started, 3),
                             left_out=left_out, dropped=dropped)
        settings = {"venv": config.venv, "allow_network": config.allow_network,
                    "env": {"PYTHONDONTWRITEBYTECODE": "1"}}
        runner = make_runner(ws.sandbox_config(**settings), strict=config.strict)
        once = replace(config, runs_per_side=1)
        side = _side(run_side(runner, ws, once, task.test_files), task.test_files)
    finally:
        ws.remove()
    f2p = {t: side.status.get(t, "missing") for t in task.fail_to_pass}
    p2p = {t: side.status.get(t, "missing") for t in task.pass_to_pass}
    # A skipped PASS_TO_PASS test was skipped when the task was validated too; it still counts.
    resolved = all(v == "pass" for v in f2p.values()) and all(
        v in ("pass", "skip") for v in p2p.values()
    )
    reason = "" if resolved else _failing(f2p, p2p)
    return Score(resolved, reason, False, f2p, p2p, round(time.monotonic() - started, 3),
                 left_out, dropped)



def _failing(f2p: dict[str, str], p2p: dict[str, str]) -> str:
    still = [t for t, v in f2p.items() if v != "pass"]
    broken = [t for t, v in p2p.items() if v not in ("pass", "skip")]
    parts = []
    if still:
        parts.append(f"{len(still)} FAIL_TO_PASS not passing (e.g. {still[0]})")
    if broken:
        parts.append(f"{len(broken)} PASS_TO_PASS broken (e.g. {broken[0]})")
    return f"{TESTS_FAIL}: " + "; ".join(parts)


def scoring_config(command_text: str, venv: Path | None, strict: bool,
                   per_test_timeout: float = 60.0, run_timeout: float = 900.0) -> ValidationConfig:
    """The kernel's test settings for scoring, from the task's own test command."""
    command = detect_test_command(Path("."), command_text)
    assert command is not None
    return ValidationConfig(command, venv, per_test_timeout, run_timeout, runs_per_side=1,
                            strict=strict)
