"""Run a repository's tests in a runner and turn the result into per-test outcomes + a digest."""

from __future__ import annotations

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

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.failed and not self.errors

    def digest(self, max_tests: int = 8, max_lines: int = 20, max_chars: int = 6000) -> str:
        """Failures as compact text: ids, assertion message, the end of each traceback."""
        counts = (
            f"{len(self.passed)} passed, {len(self.failed)} failed, "
            f"{len(self.errors)} errors, {len(self.skipped)} skipped"
        )
        head = f"exit code {self.exit_code}" + (" (timed out)" if self.timed_out else "")
        lines = [f"{head}; {counts}" if self.junit_found else head]
        bad = [*self.errors, *self.failed]
        for test_id in bad[:max_tests]:
            problem = self.problems.get(test_id)
            label = "ERROR" if test_id in self.errors else "FAILED"
            lines.append(f"{label} {test_id}")
            if problem is None:
                continue
            if problem.message:
                lines.append(f"  {problem.message.splitlines()[0][:300]}")
            trace = problem.detail.splitlines()[-max_lines:]
            lines += [f"    {line[:200]}" for line in trace]
        if len(bad) > max_tests:
            lines.append(f"... and {len(bad) - max_tests} more failing")
        if not self.junit_found and not self.ok:
            lines.append("output (tail):")
            lines += [f"  {line[:200]}" for line in self.output.splitlines()[-max_lines * 2 :]]
        text = "\n".join(lines)
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
        argv += ["-p", "no:cacheprovider", f"--junitxml={junit}", "-o", "junit_family=xunit1"]
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
    )
