"""Validate candidate commits in sandbox workspaces and decide: a Task, or a Reject with its
reason.

For a candidate C with first parent P, in a fresh workspace (the user's tree and index are
never touched): P plus only C's test part → run the touched test files once; then C → run
them once (for an approved fix, C is P with the whole approved patch applied: it may never
have been committed). Per-test outcomes come from JUnit XML; for pytest
`--continue-on-collection-errors` keeps one broken file from stopping the others, and a
file that fails to collect counts as every one of its tests failing (as SWE-bench's log
parsing does). A per-test timeout turns a hang into a failure of that test.

Those two runs cost what an independent SWE-bench-style validation costs, and they settle
most candidates: nothing that passed at C failed (or was missing) at P, so no task. Only
when a task is possible are runs repeated, up to `runs` in all per side: at C, so that
every kept test passed in each of them; then at P, unless no test that could be kept ran
there (its file failed to collect: a test that never ran cannot vary). Repeats stop as soon
as no FAIL_TO_PASS test is left. Then:

- FAIL_TO_PASS: failed (or missing) at P+tests in every run there, passed at C in every run;
- PASS_TO_PASS: passed in every run on both sides;
- flaky: any run on either side disagrees with another run on that side; excluded from both
  lists and listed. A test can only leave the lists as runs are added, so the verdict does
  not depend on the order of the runs or on which of them passed;
- failing on both sides: ignored (no network, a missing service: not about the change).

A cascade (one failure at P taking many unchanged tests with it) is flagged, not rejected:
the FAIL_TO_PASS tests the diff itself added or changed are kept apart in `diff_tests`.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from evoagent.sandbox.local import make_runner
from evoagent.sandbox.testdetect import TestCommand
from evoagent.sandbox.testrun import TestRun, run_tests
from evoagent.sandbox.workspace import GitError, Workspace

from .candidates import Candidate
from .patch_split import changed_test_names, touched_by_diff
from .store import Reject, Task

NO_FAILING_TEST = "no failing test"
STILL_FAILING = "still failing after C"
ENVIRONMENT_ERROR = "environment/collection error"
TIMEOUT = "timeout"
PATCH_DOES_NOT_APPLY = "patch does not apply"
FLAKY = "flaky"

COLLECTION_FAILURE = "collection failure"
_EXCEPTION = re.compile(r"\b\w*(?:Error|Exception|Exit)\b")
# Errors that say the environment moved on (an API gone from an installed package), not
# that the change failed: a missing module or name, or a module lacking an attribute.
_ENV_ERROR = re.compile(
    r"\b(?:ImportError|ModuleNotFoundError|fixture '.*' not found"
    r"|AttributeError: module '[^']+' has no attribute)"
)


@dataclass
class ValidationConfig:
    test_command: TestCommand
    venv: Path | None = None
    """The repository's virtualenv (activated in the sandbox)."""
    per_test_timeout: float = 60.0
    run_timeout: float = 900.0
    runs_per_side: int = 1
    """Runs of the test files per `run_side` call (scoring runs once; `validate` repeats by
    `runs`)."""
    cascade_limit: int = 20
    """More FAIL_TO_PASS tests than this flags a cascade."""
    strict: bool = False
    allow_network: bool = False
    runs: int = 3
    """Runs per side when a task is possible: every kept test passed at C in each of them
    (and agreed with itself at P wherever it ran there); 1 is a single run per side."""


@dataclass
class Side:
    """Merged outcomes of the runs on one side (P+tests, or C)."""

    status: dict[str, str] = field(default_factory=dict)
    """test id -> pass | fail | skip (every run agreed)."""
    flaky: set[str] = field(default_factory=set)
    file_errors: dict[str, str] = field(default_factory=dict)
    """test file -> first line of its collection error."""
    error_lines: dict[str, str] = field(default_factory=dict)
    """failing test id -> first line of its error."""
    messages: dict[str, str] = field(default_factory=dict)
    """failing test id -> first line of the runner's failure message (`assert -2 == 2`)."""
    timed_out: bool = False
    no_report: str = ""
    """The output's first error line when a run produced no per-test report at all."""


def error_line(message: str, detail: str) -> str:
    """The line that names what went wrong: the first `E   SomeError: ...` line of a pytest
    traceback, else the first line naming an exception, else the message."""
    e_lines = [line[1:].strip() for line in detail.splitlines() if line.startswith("E ")]
    for line in e_lines:
        if _EXCEPTION.search(line):
            return line[:300]
    for line in detail.splitlines():
        if _EXCEPTION.search(line) and ":" in line:
            return line.strip()[:300]
    if e_lines:
        return e_lines[0][:300]
    return (message.splitlines()[0] if message else "")[:300]


def _side(runs: list[TestRun], files: list[str]) -> Side:
    side = Side()
    seen: dict[str, list[str]] = {}
    for run in runs:
        side.timed_out |= run.timed_out
        reported = run.junit_found and (run.passed or run.failed or run.errors or run.skipped)
        if not reported and run.exit_code != 0:
            first = error_line("", run.output) or f"exit code {run.exit_code}"
            side.no_report = side.no_report or first
        outcomes = {t: "pass" for t in run.passed} | {t: "skip" for t in run.skipped}
        for test_id in run.failed + run.errors:
            problem = run.problems.get(test_id)
            message, detail = (problem.message, problem.detail) if problem else ("", "")
            file = test_id.split("::", 1)[0]
            if message == COLLECTION_FAILURE and file in files:
                side.file_errors.setdefault(file, error_line(message, detail))
                continue
            outcomes[test_id] = "fail"
            side.error_lines.setdefault(test_id, error_line(message, detail))
            if message.strip():
                side.messages.setdefault(test_id, message.strip().splitlines()[0][:300])
        for test_id, outcome in outcomes.items():
            seen.setdefault(test_id, []).append(outcome)
    for test_id, outcomes in seen.items():
        kinds = set(outcomes)
        if len(outcomes) < len(runs):
            kinds.add("missing")
        if "pass" in kinds and len(kinds) > 1:
            side.flaky.add(test_id)
        elif "fail" in kinds or "missing" in kinds:
            side.status[test_id] = "fail"
        else:
            side.status[test_id] = outcomes[0]
    return side


def run_side(runner, ws: Workspace, config: ValidationConfig, files: list[str]) -> list[TestRun]:
    """`runs_per_side` runs of the touched test files (one per file where the runner has no
    per-file continue-on-error)."""
    runs = []
    for _ in range(config.runs_per_side):
        # The workspace stands where the repository stands in the sandbox, so a src layout
        # installed editable imports the change; testrun builds the invocation for every caller.
        command = config.test_command
        batches = [files] if command.kind == "pytest" else [[file] for file in files]
        merged: TestRun | None = None
        for batch in batches:
            run = run_tests(
                runner,
                ws.path,
                command,
                test_ids=batch,
                per_test_timeout=config.per_test_timeout,
                timeout=config.run_timeout,
            )
            merged = run if merged is None else _merge(merged, run)
        assert merged is not None
        runs.append(merged)
    return runs


def _merge(a: TestRun, b: TestRun) -> TestRun:
    return TestRun(
        a.passed + b.passed,
        a.failed + b.failed,
        a.errors + b.errors,
        a.skipped + b.skipped,
        a.exit_code or b.exit_code,
        a.output + b.output,
        a.junit_found and b.junit_found,
        a.timed_out or b.timed_out,
        {**a.problems, **b.problems},
    )


@dataclass
class Verdict:
    fail_to_pass: list[str]
    pass_to_pass: list[str]
    flaky: list[str]
    reason: str = ""
    detail: str = ""
    diff_tests: list[str] = field(default_factory=list)
    cascade_reason: str = ""
    fail_lines: dict[str, str] = field(default_factory=dict)
    """FAIL_TO_PASS test → the first line of its failure at P+tests."""
    runs: dict[str, int] = field(default_factory=dict)
    """How many times the tests ran on each side: {"parent": k, "commit": n}."""


def kept_tests(before: Side, after: Side) -> tuple[list[str], list[str]]:
    """(FAIL_TO_PASS, PASS_TO_PASS) as the runs so far have it. Another run can only take a
    test out (it disagrees: flaky), never put one in."""
    passed_after = [t for t, s in after.status.items() if s == "pass" and t not in before.flaky]
    f2p = sorted(t for t in passed_after if before.status.get(t, "fail") == "fail")
    p2p = sorted(t for t in passed_after if before.status.get(t) == "pass")
    return f2p, p2p


def decide(
    before: Side, after: Side, files: list[str], test_patch: str, cascade_limit: int
) -> Verdict:
    flaky = sorted(before.flaky | after.flaky)
    f2p, p2p = kept_tests(before, after)
    verdict = Verdict(f2p, p2p, flaky)
    if f2p:
        names = changed_test_names(test_patch)
        verdict.diff_tests = [t for t in f2p if touched_by_diff(t, names)]
        verdict.cascade_reason = _cascade(before, f2p, verdict.diff_tests, cascade_limit)
        # What a reporter would see: the runner's own message, else the error line.
        lines = {t: before.messages.get(t) or _cause(before, t) for t in f2p}
        verdict.fail_lines = {t: line for t, line in lines.items() if line}
        return verdict
    failing_after = sorted(t for t, s in after.status.items() if s == "fail")
    if after.file_errors:
        file, line = next(iter(after.file_errors.items()))
        verdict.reason, verdict.detail = ENVIRONMENT_ERROR, f"{file}: {line}"
    elif after.no_report and not after.status:
        verdict.reason, verdict.detail = ENVIRONMENT_ERROR, after.no_report
    elif after.timed_out:
        verdict.reason, verdict.detail = TIMEOUT, "the test run at C passed its time limit"
    elif flaky and any(t in after.flaky or after.status.get(t) == "pass" for t in flaky):
        verdict.reason, verdict.detail = FLAKY, ", ".join(flaky[:5])
    elif failing_after:
        line = after.error_lines.get(failing_after[0], "")
        env = [t for t in failing_after if _ENV_ERROR.search(after.error_lines.get(t, ""))]
        verdict.reason = ENVIRONMENT_ERROR if env else STILL_FAILING
        verdict.detail = f"{failing_after[0]}: {line}" if line else failing_after[0]
    elif before.timed_out:
        verdict.reason, verdict.detail = TIMEOUT, "the test run at P passed its time limit"
    else:
        verdict.reason = NO_FAILING_TEST
        verdict.detail = f"{len(p2p)} test(s) pass before and after" if p2p else "no test outcomes"
    return verdict


def _cause(before: Side, test_id: str) -> str:
    """Why a test failed at P+tests: its own error line, its file's collection error, or
    the run's first error line when the run reported nothing per test."""
    file = test_id.split("::", 1)[0]
    return before.error_lines.get(test_id) or before.file_errors.get(file) or before.no_report


def _cascade(before: Side, f2p: list[str], diff_tests: list[str], limit: int) -> str:
    if len(f2p) > limit:
        return f"{len(f2p)} FAIL_TO_PASS tests (more than {limit})"
    collateral = [t for t in f2p if t not in diff_tests]
    if len(collateral) < 3:
        return ""

    line, count = Counter(_cause(before, t) for t in collateral).most_common(1)[0]
    if line and count * 5 >= len(collateral) * 4:
        return f"{count} tests the diff did not change fail at P with the same error: {line}"
    return ""


def _apply(ws: Workspace, patch: str) -> str:
    """Apply `patch` to the workspace's tree; "" when it applied, else git's first line."""
    try:
        ws.apply(patch)
    except GitError as exc:
        return (str(exc).split(": ", 1)[-1].splitlines() or ["git apply failed"])[0]
    return ""


def validate(repo: Path, base_dir: Path, candidate: Candidate, config: ValidationConfig) -> Verdict:
    """Run the candidate's touched tests at P+tests and at C in a throwaway workspace: once
    each, then, while a task is possible, up to `config.runs` times at C and at P (see the
    module docstring).

    C is the commit itself, or for an approved fix (`candidate.knowledge_id`) P with the
    whole approved patch applied: the same two sides, reached without a commit."""
    commit = candidate.commit
    files = candidate.split.runnable_test_files()
    ws = Workspace.create(repo, base_dir, rev=commit.parent or "", include_user_changes=False)
    try:
        problem = _apply(ws, candidate.split.tests)
        if problem:
            return Verdict([], [], [], PATCH_DOES_NOT_APPLY, problem)
        settings = {
            "venv": config.venv,
            "allow_network": config.allow_network,
            "env": {"PYTHONDONTWRITEBYTECODE": "1"},
        }
        runner = make_runner(ws.sandbox_config(**settings), strict=config.strict)
        once = replace(config, runs_per_side=1)

        def run() -> TestRun:
            return run_side(runner, ws, once, files)[0]

        before = [run()]
        if candidate.knowledge_id:
            ws.reset_to(ws.rev)
            problem = _apply(ws, candidate.patch)
            if problem:
                return Verdict([], [], [], PATCH_DOES_NOT_APPLY, f"the fix: {problem}")
        else:
            ws.reset_to(commit.sha)
        after = [run()]
        # Repeats only while a task is possible: most candidates end after one run per side.
        while len(after) < config.runs and _kept(before, after, files)[0]:
            after.append(run())
        if len(before) < config.runs and _ran_at_parent(before, after, files):
            ws.reset_to(ws.rev)  # back to P + tests (ignored files stay, as between sides)
            _apply(ws, candidate.split.tests)  # it applied there a moment ago
            while len(before) < config.runs and _kept(before, after, files)[0]:
                before.append(run())
    finally:
        ws.remove()
    # A file that failed to collect at P: each of its tests seen at C is missing → failing.
    parent, child = _side(before, files), _side(after, files)
    verdict = decide(parent, child, files, candidate.split.tests, config.cascade_limit)
    verdict.runs = {"parent": len(before), "commit": len(after)}
    return verdict


def _kept(before: list[TestRun], after: list[TestRun], files: list[str]) -> tuple[list, list]:
    """(FAIL_TO_PASS, PASS_TO_PASS) as the runs so far have them."""
    return kept_tests(_side(before, files), _side(after, files))


def _ran_at_parent(before: list[TestRun], after: list[TestRun], files: list[str]) -> bool:
    """Whether a task is still possible and some test it could keep ran at P, so that a
    repeat there could show it vary. A test in a file that failed to collect at P never ran
    there: its outcome at P (failing) cannot change, and P runs once."""
    f2p, p2p = _kept(before, after, files)
    parent = _side(before, files)
    return bool(f2p) and (bool(p2p) or any(t in parent.status for t in f2p))


def to_task(
    candidate: Candidate,
    verdict: Verdict,
    *,
    repo_name: str,
    test_command: str,
    statement: str,
    sources: list[str],
    issue_refs: list[str],
    seconds: float,
) -> Task:
    commit = candidate.commit
    return Task(
        id=candidate_task_id(repo_name, candidate),
        repo=repo_name,
        base_commit=commit.parent or "",
        commit=commit.sha,
        patch=candidate.split.code,
        test_patch=candidate.split.tests,
        fail_to_pass=verdict.fail_to_pass,
        pass_to_pass=verdict.pass_to_pass,
        test_command=test_command,
        test_files=candidate.split.runnable_test_files(),
        created_at=commit.date,
        problem_statement=statement,
        statement_sources=sources,
        issue_refs=issue_refs,
        diff_tests=verdict.diff_tests,
        cascade=bool(verdict.cascade_reason),
        cascade_reason=verdict.cascade_reason,
        flaky=verdict.flaky,
        runs=verdict.runs,
        source="knowledge" if candidate.knowledge_id else "history",
        knowledge_id=candidate.knowledge_id,
        fail_lines=verdict.fail_lines,
        mined_at=time.time(),
        seconds=round(seconds, 3),
    )


def to_reject(candidate: Candidate, verdict: Verdict, seconds: float) -> Reject:
    commit = candidate.commit
    return Reject(
        commit.sha,
        verdict.reason,
        verdict.detail,
        "validate",
        commit.subject,
        round(seconds, 3),
        time.time(),
    )


def task_id(repo_name: str, sha: str) -> str:
    """SWE-bench style: owner__name-<sha12>."""
    return f"{repo_name.replace('/', '__')}-{sha[:12]}"


def candidate_task_id(repo_name: str, candidate: Candidate) -> str:
    """owner__name-<sha12>, or owner__name-knowledge-<record id> for an approved fix."""
    if candidate.knowledge_id:
        return f"{repo_name.replace('/', '__')}-knowledge-{candidate.knowledge_id}"
    return task_id(repo_name, candidate.commit.sha)
