"""Task mining on a real repository: yield, reasons, time per candidate, harness overhead,
agreement with an independent SWE-bench-style validation.

    .venv/bin/python bench/bench_tasks.py --repo PATH [--last 300] [--jobs 1]
        [--venv PATH] [--test-command CMD] [--per-test-timeout 60] [--no-bare]
        [--no-independent]

Mines the newest `--last` first-parent commits of PATH (a checkout with the environment it
tests in: `PATH/.venv` by default) into a throwaway task store (the repo's own
`.evoagent/tasks` is never touched), then prints: commits examined, candidates, valid tasks,
rejects per reason, seconds per candidate.

Then, for every candidate that reached the sandbox:

- an independent validation sharing no code with the miner's: a plain `git clone --shared`
  checkout, P with C's version of the changed test paths, then C; `python -m pytest -rA` on
  the changed test files (no JUnit, no sandbox); SWE-bench's log parser on the short test
  summary; FAIL_TO_PASS = failed or missing at P, passed at C. It prints tasks found by both
  / only one, and how many FAIL_TO_PASS sets are identical (with a reason for each that is
  not, when one can be told);
- the overhead: for each candidate, the harness (`validate`) and the same test commands
  bare (`git checkout`, `git apply` of the test part, the same pytest invocation twice per
  side; no bubblewrap, no workspace, no JUnit) back to back, alternating which goes first,
  so that both see the same load on a shared machine; the harness overhead ratio is harness
  seconds / bare test seconds (target <= 1.3x).

Figures only; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from evoagent.agent.tasks.candidates import Candidate, classify, first_parent_history
from evoagent.agent.tasks.mine import mine_tasks
from evoagent.agent.tasks.store import Task, TaskStore
from evoagent.agent.tasks.validate import ValidationConfig, validate
from evoagent.sandbox.testdetect import detect_test_command

_PYTHONPATH_SET = re.compile(r"^\s*pythonpath\s*=", re.MULTILINE)


def bare_pytest_argv(argv: tuple[str, ...], work: Path) -> list[str]:
    """pytest for the bare comparison: a plain checkout elsewhere than the one the venv's
    editable install points at, so a src layout is put on the path by hand (the sandbox shows
    the workspace at the repository's own path and needs no such flag)."""
    out = [*argv, "--continue-on-collection-errors"]
    if (work / "src").is_dir():
        configs = [work / n for n in ("pyproject.toml", "pytest.ini", "setup.cfg", "tox.ini")]
        if not any(c.is_file() and _PYTHONPATH_SET.search(c.read_text(errors="replace"))
                   for c in configs):
            out += ["-o", "pythonpath=src"]
    return out

class Bare:
    """The same test commands as the harness, bare: one plain `git clone --shared` checkout,
    `git checkout` + `git apply` of the test part, the same pytest invocation twice per side;
    no bubblewrap, no workspace, no JUnit."""

    def __init__(self, repo: Path, config: ValidationConfig):
        self.config = config
        self.scratch = Path(tempfile.mkdtemp(prefix="evoagent-bare-"))
        self.work = self.scratch / "w"
        self.env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        if config.venv:
            self.env["VIRTUAL_ENV"] = str(config.venv)
            self.env["PATH"] = f"{config.venv / 'bin'}:{self.env['PATH']}"
        subprocess.run(
            ["git", "clone", "-q", "--shared", "--no-checkout", str(repo), str(self.work)],
            check=True,
        )

    def _git(self, *args: str, stdin: str | None = None) -> None:
        subprocess.run(
            ["git", *args], cwd=self.work, input=stdin, text=True, capture_output=True, check=False
        )

    def run(self, candidate: Candidate, runs: dict[str, int]) -> tuple[float, float]:
        """(test-command seconds, seconds including checkout/apply) for one candidate, with
        as many runs per side as the harness made (`Verdict.runs`), so both do equal work."""
        begun = time.monotonic()
        tests = 0.0
        files = candidate.split.runnable_test_files()
        sides = ((candidate.commit.parent, True, "parent"), (candidate.commit.sha, False, "commit"))
        for rev, apply, side in sides:
            self._git("checkout", "-qf", rev or "")
            self._git("clean", "-fdq")
            if apply:
                self._git("apply", "--binary", "-", stdin=candidate.split.tests)
            argv = bare_pytest_argv(self.config.test_command.argv, self.work)
            for _ in range(max(1, runs.get(side, 1))):
                started = time.monotonic()
                subprocess.run(
                    [*argv, "-p", "no:cacheprovider", *files],
                    cwd=self.work,
                    env=self.env,
                    capture_output=True,
                    timeout=self.config.run_timeout,
                    check=False,
                )
                tests += time.monotonic() - started
        return tests, time.monotonic() - begun

    def close(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)


def paired_overhead(
    repo: Path, candidates: list[Candidate], config: ValidationConfig, sandboxes: Path
) -> dict[str, float]:
    """Harness (`validate`) and bare runs of each candidate back to back, so both see the same
    machine load (the machine is shared: phases run minutes apart saw loads that differ by more
    than the overhead being measured); the bare side repeats each side as often as the harness
    did (its repeats depend on what it found, so it goes first). Wall seconds:
    CPU time is no measure here, as what runs inside bubblewrap's pid namespace is not
    charged to this process's children."""
    bare = Bare(repo, config)
    totals = dict.fromkeys(("harness", "bare_tests", "bare_all"), 0.0)
    try:
        for candidate in candidates:
            started = time.monotonic()
            verdict = validate(repo, sandboxes, candidate, config)
            totals["harness"] += time.monotonic() - started
            tests, total = bare.run(candidate, verdict.runs)
            totals["bare_tests"] += tests
            totals["bare_all"] += total
    finally:
        bare.close()
    return totals


# ---------------------------------------------------------------------------------------
# Independent SWE-bench-style validation: no code shared with the miner's validation (no
# workspace, sandbox, JUnit or patch split); git and pytest -rA only.

SWE_STATUSES = ("PASSED", "FAILED", "SKIPPED", "ERROR", "XFAIL")
_TEST_DIRS = frozenset({"test", "tests", "testing", "e2e"})


def parse_log_pytest(log: str) -> dict[str, str]:
    """SWE-bench's `parse_log_pytest`: the `-rA` short summary, one `STATUS id` per line."""
    status: dict[str, str] = {}
    for line in log.split("\n"):
        if any(line.startswith(s) for s in SWE_STATUSES):
            if line.startswith("FAILED"):
                line = line.replace(" - ", " ")
            parts = line.split()
            if len(parts) <= 1:
                continue
            status[parts[1]] = parts[0]
    return status


def _is_test_file(path: str) -> bool:
    *dirs, name = path.split("/")
    return (
        any(d in _TEST_DIRS for d in dirs)
        or name.startswith("test_")
        or name.endswith(("_test.py", "_tests.py"))
        or name == "conftest.py"
    )


@dataclass
class Independent:
    sha: str
    test_files: list[str] = field(default_factory=list)
    before: dict[str, str] = field(default_factory=dict)
    after: dict[str, str] = field(default_factory=dict)
    before_log: str = ""
    after_log: str = ""
    problem: str = ""
    seconds: float = 0.0

    @property
    def fail_to_pass(self) -> list[str]:
        ok = ("PASSED", "XFAIL")
        return sorted(t for t, s in self.after.items() if s in ok and self.before.get(t) not in ok)

    @property
    def pass_to_pass(self) -> list[str]:
        ok = ("PASSED", "XFAIL")
        return sorted(t for t, s in self.after.items() if s in ok and self.before.get(t) in ok)


def independent_validation(
    repo: Path, commits: list[tuple[str, str]], python: Path, timeout: float
) -> dict[str, Independent]:
    """For each (P, C): a plain clone at P with only C's test files changed as in C, then at C;
    `python -m pytest -rA` on the changed test files that exist at C; SWE-bench's log parser."""
    scratch = Path(tempfile.mkdtemp(prefix="evoagent-swe-"))
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTEST_ADDOPTS")
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["VIRTUAL_ENV"] = str(python.parent.parent)
    env["PATH"] = f"{python.parent}:{env.get('PATH', '')}"
    results: dict[str, Independent] = {}
    work = scratch / "w"

    def git(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["git", *args], cwd=work, input=stdin, text=True, capture_output=True, check=False
        )

    def pytest(files: list[str]) -> str:
        run_env = dict(env)
        if (work / "src").is_dir():  # a src layout: the checkout's package, not the venv's
            run_env["PYTHONPATH"] = str(work / "src")
        try:
            proc = subprocess.run(
                [str(python), "-m", "pytest", "-rA", "-p", "no:cacheprovider", *files],
                cwd=work,
                env=run_env,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                check=False,
            )
            return proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout or b""
            return (out.decode(errors="replace") if isinstance(out, bytes) else out) + "\nTIMEOUT"

    try:
        subprocess.run(
            ["git", "clone", "-q", "--shared", "--no-checkout", str(repo), str(work)],
            check=True,
        )
        for parent, sha in commits:
            begun = time.monotonic()
            result = results[sha] = Independent(sha)
            names = git("diff", "--name-only", "--no-renames", parent, sha).stdout.split()
            tests = [p for p in names if _is_test_file(p)]
            git("checkout", "-qf", sha)
            git("clean", "-fdxq")
            result.test_files = [
                p
                for p in tests
                if p.endswith(".py")
                and p.rsplit("/", 1)[-1] != "conftest.py"
                and (work / p).is_file()
            ]
            if not result.test_files:
                result.problem = "no test file to run"
                continue
            # P with C's version of every changed test path (deleted at C: deleted at P too).
            git("checkout", "-qf", parent)
            git("clean", "-fdxq")
            test_patch = git("diff", "--binary", "--no-renames", parent, sha, "--", *tests).stdout
            applied = git("apply", "--binary", "-", stdin=test_patch)
            if applied.returncode != 0:
                result.problem = "test patch does not apply: " + applied.stderr.strip()[:100]
                continue
            result.before_log = pytest(result.test_files)
            result.before = parse_log_pytest(result.before_log)
            git("checkout", "-qf", sha)
            git("clean", "-fdxq")
            result.after_log = pytest(result.test_files)
            result.after = parse_log_pytest(result.after_log)
            result.seconds = time.monotonic() - begun
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return results


def difference_reason(task: Task, ind: Independent) -> str:
    """Why the miner's FAIL_TO_PASS and the independent one differ, when it can be told."""
    miner, other = set(task.fail_to_pass), set(ind.fail_to_pass)
    only_miner, only_ind = miner - other, other - miner
    reasons = []
    flaky = only_ind & set(task.flaky)
    if flaky:
        reasons.append(f"flaky exclusion by the miner ({len(flaky)})")
    spaced = [t for t in only_miner if " " in t]
    if spaced:
        reasons.append(
            f"id with whitespace, cut by SWE-bench's parser ({len(spaced)}: {spaced[0][:60]})"
        )
    interrupted = (
        "Interrupted:" in ind.before_log
        and "error" in ind.before_log.split("Interrupted:", 1)[1][:80]
    )
    if interrupted and only_ind:
        reasons.append(
            f"collection error at P interrupted the whole pytest run (no "
            f"--continue-on-collection-errors): {len(only_ind)} missing at P"
        )
    error_files = {t for t, s in ind.before.items() if s == "ERROR" and "::" not in t}
    if error_files and only_ind - flaky and not interrupted:
        reasons.append(f"collection error at P in {sorted(error_files)[:2]}")

    # ids that differ only in formatting
    def norm(t: str) -> str:
        return t.replace(" ", "").replace("\\", "")

    if {norm(t) for t in only_miner - set(spaced)} & {norm(t) for t in only_ind}:
        reasons.append("id formatting")
    rest_m = sorted(only_miner - set(spaced))
    rest_i = sorted(only_ind - flaky)
    if not reasons:
        for label, ids in (("miner only", rest_m), ("independent only", rest_i)):
            if ids:
                t = ids[0]
                reasons.append(
                    f"{label} {len(ids)}: {t[:70]} (P {ind.before.get(t, 'missing')}, "
                    f"C {ind.after.get(t, 'missing')})"
                )
    return "; ".join(reasons) or "unexplained"


def report_agreement(
    tasks: dict[str, Task], rejects: dict[str, str], independent: dict[str, Independent]
) -> None:
    """Print how the miner's verdicts compare with the independent ones."""
    ran = {sha: ind for sha, ind in independent.items() if not ind.problem}
    print(
        f"independent SWE-bench-style validation: {len(ran)} of {len(independent)} candidates"
        f" validated both ways in {sum(i.seconds for i in ran.values()):.1f}s"
    )
    for sha, ind in independent.items():
        if ind.problem:
            print(f"  not validated independently {sha[:10]}: {ind.problem}")
    found = {sha for sha, ind in ran.items() if ind.fail_to_pass}
    both = sorted(found & set(tasks))
    only_miner = sorted(set(tasks) & set(ran) - found)
    only_ind = sorted(found - set(tasks))
    print(
        f"  tasks found by both {len(both)}, only by the miner {len(only_miner)},"
        f" only by the independent check {len(only_ind)}"
    )
    for sha in only_miner:
        ind = ran[sha]
        print(
            f"    miner only {sha[:10]}: miner F2P {len(tasks[sha].fail_to_pass)}"
            f" {tasks[sha].fail_to_pass[:2]}; independent at P"
            f" {_counts(ind.before)}, at C {_counts(ind.after)}"
        )
    for sha in only_ind:
        ind = ran[sha]
        print(
            f"    independent only {sha[:10]}: miner rejected ({rejects.get(sha, '?')});"
            f" independent F2P {len(ind.fail_to_pass)} {ind.fail_to_pass[:2]}"
        )
    same = [sha for sha in both if sorted(tasks[sha].fail_to_pass) == ran[sha].fail_to_pass]
    print(f"  identical FAIL_TO_PASS sets: {len(same)} of {len(both)}")
    same_p2p = [sha for sha in both if sorted(tasks[sha].pass_to_pass) == ran[sha].pass_to_pass]
    print(f"  identical PASS_TO_PASS sets: {len(same_p2p)} of {len(both)}")
    for sha in both:
        if sha not in same_p2p:
            task, ind = tasks[sha], ran[sha]
            mine, other = set(task.pass_to_pass), set(ind.pass_to_pass)
            print(
                f"    P2P differs {sha[:10]}: {_p2p_reason(task, ind, mine - other, other - mine)}"
            )
    for sha in both:
        if sha not in same:
            task, ind = tasks[sha], ran[sha]
            print(
                f"    differs {sha[:10]}: miner {len(task.fail_to_pass)} vs independent"
                f" {len(ind.fail_to_pass)}: {difference_reason(task, ind)}"
            )


def _p2p_reason(task: Task, ind: Independent, only_miner: set[str], only_ind: set[str]) -> str:
    parts = []
    for label, ids in (("miner only", only_miner), ("independent only", only_ind)):
        if not ids:
            continue
        flaky = ids & set(task.flaky)
        spaced = {t for t in ids if " " in t}
        sample = sorted(ids - flaky - spaced)[:1]
        text = f"{label} {len(ids)}"
        if flaky:
            text += f" ({len(flaky)} flaky for the miner)"
        if spaced:
            text += f" ({len(spaced)} ids with whitespace)"
        if sample:
            t = sample[0]
            text += (
                f": {t[:70]} (independent P {ind.before.get(t, 'missing')},"
                f" C {ind.after.get(t, 'missing')})"
            )
        parts.append(text)
    return "; ".join(parts)


def _counts(status: dict[str, str]) -> str:
    counts: dict[str, int] = {}
    for value in status.values():
        counts[value] = counts.get(value, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no summary lines"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--last", type=int, default=300)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--venv", type=Path)
    parser.add_argument("--test-command")
    parser.add_argument("--per-test-timeout", type=float, default=60.0)
    parser.add_argument("--no-bare", action="store_true", help="Skip the bare comparison.")
    parser.add_argument(
        "--no-independent",
        action="store_true",
        help="Skip the independent SWE-bench-style validation of the same candidates.",
    )
    args = parser.parse_args()
    repo = args.repo.resolve()
    venv = args.venv or (repo / ".venv" if (repo / ".venv" / "bin" / "python").exists() else None)
    command = detect_test_command(repo, args.test_command)
    if command is None:
        raise SystemExit("no test command detected; pass --test-command")
    if command.argv[0] == "python" and venv:
        command = type(command)(
            (str(venv / "bin" / "python"), *command.argv[1:]), command.kind, command.source
        )
    config = ValidationConfig(command, venv.resolve() if venv else None, args.per_test_timeout)
    store_dir = Path(tempfile.mkdtemp(prefix="evoagent-bench-tasks-"))
    sandboxes = repo / ".evoagent" / "sandboxes"
    print(
        f"repo {repo}  last {args.last}  jobs {args.jobs}  venv {venv}  "
        f"command {shlex.join(command.argv)}"
    )
    report = mine_tasks(
        repo, TaskStore(store_dir), config, sandboxes, last=args.last, jobs=args.jobs
    )
    print(f"examined {report.examined} first-parent commits in {report.seconds:.1f}s")
    print(
        f"candidates {report.candidates}   valid tasks {len(report.tasks)}"
        f"   cascade-flagged {sum(t.cascade for t in report.tasks)}"
    )
    print("rejects by reason:")
    for reason, count in report.reasons().items():
        print(f"  {count:>5}  {reason}")
    if report.candidates:
        print(
            f"seconds per candidate {report.validate_seconds / report.candidates:.2f}"
            f"  (wall {report.seconds / report.candidates:.2f} with {args.jobs} job(s))"
        )
    for task in report.tasks:
        print(
            f"  task {task.id}: F2P {len(task.fail_to_pass)} P2P {len(task.pass_to_pass)}"
            f"{' [cascade]' if task.cascade else ''}  {task.problem_statement.splitlines()[0][:60]}"
        )
    for reject in report.rejects:
        if reject.stage == "validate":
            print(f"  reject {reject.commit[:10]} {reject.reason}: {reject.detail[:100]}")
    validated = {t.commit: t.seconds for t in report.tasks}
    validated |= {
        r.commit: r.seconds
        for r in report.rejects
        if r.stage == "validate" and r.reason != "patch does not apply"
    }
    commits = {c.sha: c for c in first_parent_history(repo, args.last, None)}
    candidates = [classify(repo, commits[sha]) for sha in validated]
    candidates = [c for c in candidates if isinstance(c, Candidate)]
    if not args.no_independent:
        python = (
            Path(command.argv[0])
            if "/" in command.argv[0]
            else Path(shutil.which("python3") or "python3")
        )
        if venv:
            python = venv.resolve() / "bin" / "python"
        pairs = [(c.commit.parent or "", c.commit.sha) for c in candidates]
        independent = independent_validation(repo, pairs, python, config.run_timeout)
        report_agreement(
            {t.commit: t for t in report.tasks},
            {r.commit: r.reason for r in report.rejects},
            independent,
        )
        files_differ = [
            c.commit.sha[:10]
            for c in candidates
            if sorted(c.split.runnable_test_files()) != sorted(independent[c.commit.sha].test_files)
        ]
        print(
            f"  candidates whose test files to run differ: {len(files_differ)} {files_differ[:5]}"
        )
    if args.no_bare:
        shutil.rmtree(store_dir, ignore_errors=True)
        return
    mining = sum(validated[c.commit.sha] for c in candidates)
    paired = paired_overhead(repo, candidates, config, sandboxes)
    tests, harness = paired["bare_tests"], paired["harness"]
    print(
        f"overhead, same {len(candidates)} candidates, harness and bare back to back:"
        f" harness {harness:.1f}s, bare tests {tests:.1f}s"
        f" (with checkout/apply {paired['bare_all']:.1f}s)"
    )
    print(
        f"  overhead ratio {harness / max(tests, 1e-9):.2f}x vs bare tests,"
        f" {harness / max(paired['bare_all'], 1e-9):.2f}x vs bare incl. git"
    )
    print(
        f"  (the mining pass itself took {mining:.1f}s on them:"
        f" {mining / max(tests, 1e-9):.2f}x the paired bare tests, minutes apart)"
    )
    shutil.rmtree(store_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
