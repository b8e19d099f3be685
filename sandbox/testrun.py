"""Run a repository's tests in a runner and turn the result into per-test outcomes + a digest."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree.ElementTree import ParseError

from evoagent.sandbox.junit import Outcome, parse_go_json, parse_junit, read_report
from evoagent.sandbox.protocols import Runner
from evoagent.sandbox.testdetect import TestCommand, detect_test_command

PLUGIN = Path(__file__).with_name("pytest_timeout_plugin.py")
PLUGIN_MODULE = "evoagent_test_timeout"

PYTEST_NOT_RUN = {
    2: "pytest stopped before running the tests (exit 2)",
    3: "pytest failed internally (exit 3)",
    4: "pytest could not start (exit 4)",  # a usage error, or a conftest that does not import
    5: "pytest collected no tests (exit 5)",
}
"""pytest's exit codes that leave no verdict: the session ended before tests ran, or found none.
(0 is all passed, 1 is some failed.)"""
COMMAND_NOT_STARTED = (126, 127)
"""The shell's "not executable" and "not found", and setpriv's when it cannot start the runner."""
COLLECTION_FAILURE = "collection failure"
"""The message pytest's JUnit report gives a test file that fails to import."""
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit)\b")
_ERROR_HINTS = ("error:", "no module named", "not found", "no such file", "failed to execute")


def first_error_line(text: str) -> str:
    """The line of a test run's output that says what went wrong: pytest's `E   Name: ...`
    exception line first, then any exception line, then a line that reads like an error,
    else the last line ("no tests ran in 0.01s")."""
    lines = [ln.removeprefix("INTERNALERROR>").strip(" =\t") for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    raised = [ln[1:].strip() for ln in lines if ln.startswith("E ")]
    for candidates in (raised, lines):
        for line in candidates:
            if _EXCEPTION.match(line):
                return line
    for line in lines:
        lower = line.lower()
        if any(hint in lower for hint in _ERROR_HINTS) and "usage:" not in lower:
            return line
    return (raised or lines or [""])[-1]


@dataclass
class TestRun:
    """Per-test outcomes of one run (empty lists and junit_found=False when the runner
    gives exit code only)."""

    __test__ = False

    passed: list[str]
    failed: list[str]
    errors: list[str]
    skipped: list[str]
    exit_code: int
    output: str
    junit_found: bool
    timed_out: bool = False
    problems: dict[str, Outcome] = field(default_factory=dict)
    """Failed and erroring tests' message and traceback, by id."""
    kind: str = ""
    """The runner family (`TestCommand.kind`): what its exit codes mean; "" when unknown."""

    @property
    def ok(self) -> bool:
        return (self.exit_code == 0 and not self.timed_out and not self.failed
                and not self.errors and not self.not_run)

    @property
    def not_run(self) -> str:
        """Why this run gives no verdict, as one line ending in the first error line; "" when
        tests ran, whatever their outcome. No verdict: the runner did not start (a missing
        interpreter), pytest ended before running tests (collection errors, a conftest that
        does not import, no tests: exit 2-5) or wrote no report (pytest itself missing), or
        nothing executed (every test skipped, every file failed to collect). A timeout is a
        run: the tests started, and a hang can be the change's own doing."""
        if self.timed_out:
            return ""
        collection = [e for e in self.errors if self._collection_failure(e)]
        executed = self.passed or self.failed or len(collection) < len(self.errors)
        if self.exit_code in COMMAND_NOT_STARTED:
            why = f"the test command could not start (exit {self.exit_code})"
        elif self.kind == "pytest" and self.exit_code in PYTEST_NOT_RUN:
            why = PYTEST_NOT_RUN[self.exit_code]
        elif self.kind == "pytest" and not self.junit_found:
            why = f"pytest wrote no report (exit {self.exit_code})"
        elif executed or not (self.junit_found or self.kind in ("pytest", "go")):
            return ""
        elif collection:
            why = f"no test could be collected ({len(collection)} file(s) failed to import)"
        elif self.skipped:
            why = f"no test ran ({len(self.skipped)} skipped)"
        else:
            why = f"no test ran (exit {self.exit_code})"
        first = self._first_error_line()
        return f"{why}: {first}"[:400] if first else why

    def _collection_failure(self, test_id: str) -> bool:
        problem = self.problems.get(test_id)
        return problem is not None and problem.message == COLLECTION_FAILURE

    def _first_error_line(self) -> str:
        details = [self.problems[e].detail for e in self.errors if e in self.problems]
        for text in [*details, self.output]:
            line = first_error_line(text)
            if line:
                return line[:300]
        return ""

    def digest(self, max_tests: int = 8, max_lines: int = 20, max_chars: int = 6000) -> str:
        """Failures as compact text: ids, assertion message, the end of each traceback; or,
        when no test ran, why, and the end of the output."""
        if self.not_run:
            return _cut("\n".join([f"tests could not run: {self.not_run}",
                                   *self._output_tail(max_lines)]), max_chars)
        lines = [self._head()]
        bad = [*self.errors, *self.failed]
        for test_id in bad[:max_tests]:
            lines += self._problem(test_id, max_lines)
        if len(bad) > max_tests:
            lines.append(f"... and {len(bad) - max_tests} more failing")
        if not self.junit_found and not self.ok:
            lines += self._output_tail(max_lines)
        return _cut("\n".join(lines), max_chars)

    def digest_since(self, before: TestRun | None, max_tests: int = 8, max_lines: int = 20,
                     max_chars: int = 6000) -> str:
        """The digest of what changed since `before` (the same tests without the change):
        failures that are new or fail differently in full; failures that failed the same way
        before marked pre-existing, one line each (id and message, no traceback); tests that
        failed before and pass now by id."""
        if before is None or before.not_run or self.not_run:
            return self.digest(max_tests, max_lines, max_chars)
        was_bad = set(before.failed + before.errors)
        bad = [*self.errors, *self.failed]
        changed = [t for t in bad if t not in was_bad
                   or _signature(self.problems.get(t)) != _signature(before.problems.get(t))]
        same = [t for t in bad if t not in changed]
        now_passing = [t for t in before.failed + before.errors if t in set(self.passed)]
        lines = [self._head()]
        for test_id in changed[:max_tests]:
            note = ("failed before your change too, now differently" if test_id in was_bad
                    else "new: it did not fail before your change")
            lines += self._problem(test_id, max_lines, note)
        if len(changed) > max_tests:
            lines.append(f"... and {len(changed) - max_tests} more failing")
        if same:
            lines.append("pre-existing (failed the same way before your change, not caused by it):")
            for test_id in same[:max_tests]:
                message = _message_line(self.problems.get(test_id))[:200]
                lines.append(f"  {test_id}" + (f" — {message}" if message else ""))
            if len(same) > max_tests:
                lines.append(f"  ... and {len(same) - max_tests} more pre-existing")
        if now_passing:
            lines.append(f"now passing (failed before your change): {_ids(now_passing)}")
        if not self.junit_found and not self.ok:
            lines += self._output_tail(max_lines)
        return _cut("\n".join(lines), max_chars)

    def _head(self) -> str:
        counts = (
            f"{len(self.passed)} passed, {len(self.failed)} failed, "
            f"{len(self.errors)} errors, {len(self.skipped)} skipped"
        )
        head = f"exit code {self.exit_code}" + (" (timed out)" if self.timed_out else "")
        return f"{head}; {counts}" if self.junit_found else head

    def _problem(self, test_id: str, max_lines: int, note: str = "") -> list[str]:
        label = "ERROR" if test_id in self.errors else "FAILED"
        lines = [f"{label} {test_id}" + (f" ({note})" if note else "")]
        problem = self.problems.get(test_id)
        if problem is None:
            return lines
        if problem.message:
            lines.append(f"  {problem.message.splitlines()[0][:300]}")
        return lines + [f"    {line[:200]}" for line in problem.detail.splitlines()[-max_lines:]]

    def _output_tail(self, max_lines: int) -> list[str]:
        return ["output (tail):",
                *(f"  {line[:200]}" for line in self.output.splitlines()[-max_lines * 2:])]


def _message_line(problem: Outcome | None) -> str:
    """What a failure says in one line: its message's first line, else its traceback's last."""
    if problem is None:
        return ""
    return (problem.message.splitlines() or problem.detail.splitlines()[-1:] or [""])[0].strip()


def _signature(problem: Outcome | None) -> str:
    """A failure's message line with object addresses blanked, for "does it fail the same way"."""
    return re.sub(r"0x[0-9a-fA-F]+", "0x?", _message_line(problem))


def _ids(test_ids: list[str], shown: int = 20) -> str:
    more = f" and {len(test_ids) - shown} more" if len(test_ids) > shown else ""
    return ", ".join(test_ids[:shown]) + more


def _cut(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[: max_chars - 20] + "\n[... digest cut]"


def _go_run_pattern(test_ids: Sequence[str]) -> str:
    names = sorted({test_id.rsplit("/", 1)[-1] for test_id in test_ids})
    return "^(" + "|".join(names) + ")$"


def _build(command: TestCommand, report: Path, test_ids: Sequence[str], per_test: float | None):
    """argv, extra env and where outcomes will be (junit path, go json path)."""
    argv = list(command.argv)
    env: dict[str, str] = {}
    junit = go_json = None
    if command.kind == "pytest":
        if argv[0] == "python" and shutil.which("python") is None:
            argv[0] = "python3"
        junit = report / "junit.xml"
        # One file that fails to collect must not hide every other file's outcomes.
        argv += ["-p", "no:cacheprovider", f"--junitxml={junit}", "-o", "junit_family=xunit1",
                 "--continue-on-collection-errors"]
        if per_test:
            shutil.copyfile(PLUGIN, report / f"{PLUGIN_MODULE}.py")
            env = {"PYTHONPATH": str(report), "EVOAGENT_TEST_TIMEOUT": f"{per_test:g}"}
            argv += ["-p", PLUGIN_MODULE]
        argv += list(test_ids)
    elif command.kind == "go":
        args = argv[2:] + (["-run", _go_run_pattern(test_ids)] if test_ids else [])
        if per_test:
            args += ["-timeout", f"{per_test:g}s"]
        if shutil.which("gotestsum"):
            junit = report / "junit.xml"
            argv = ["gotestsum", f"--junitfile={junit}", "--", *args]
        else:
            go_json = report / "go.json"
            script = 'go test -json "$@" > "$0"'
            argv = ["bash", "-c", script, str(go_json), *args]
    elif command.kind in ("npm", "cargo", "custom") and test_ids:
        argv += (["--"] if command.kind != "custom" else []) + list(test_ids)
    return argv, env, junit, go_json


def run_tests(
    runner: Runner,
    cwd: Path,
    command: TestCommand | None = None,
    *,
    configured: str | None = None,
    test_ids: Sequence[str] = (),
    per_test_timeout: float | None = None,
    timeout: float | None = None,
) -> TestRun:
    """Run the tests (or only `test_ids`: pytest node ids or files, go test names, npm/cargo
    filters; make ignores them) and collect outcomes. `per_test_timeout` is seconds per test
    (pytest: a bundled SIGALRM plugin; go: -timeout per package; others: not supported)."""
    command = command or detect_test_command(cwd, configured)
    if command is None:
        raise ValueError(f"no test command configured or detected in {cwd}")
    report = Path(tempfile.mkdtemp(prefix="evoagent-tests-"))
    try:
        argv, env, junit, go_json = _build(command, report, test_ids, per_test_timeout)
        result = runner.run(argv, cwd, timeout=timeout, env=env, writable=(report,))
        outcomes: list[Outcome] = []
        found = False
        # The tests wrote the report in the sandbox: read without following links (junit.py).
        source = junit or go_json
        data = read_report(source, report) if source is not None else None
        if junit is not None and data is not None:
            try:
                outcomes, found = parse_junit(data), True
            except ParseError:  # a half-written report after a kill: exit code only
                outcomes = []
        elif go_json is not None and data is not None:
            outcomes = parse_go_json(data.decode("utf-8", "replace"))
            found = bool(outcomes)
    finally:
        shutil.rmtree(report, ignore_errors=True)
    by_status: dict[str, list[str]] = {"passed": [], "failed": [], "errors": [], "skipped": []}
    for outcome in outcomes:
        by_status[outcome.status].append(outcome.test_id)
    return TestRun(
        **by_status,
        exit_code=result.exit_code,
        output=result.output,
        junit_found=found,
        timed_out=result.timed_out,
        problems={o.test_id: o for o in outcomes if o.status in ("failed", "errors")},
        kind=command.kind,
    )
