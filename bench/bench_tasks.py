"""Task mining on a real repository: yield, reasons, time per candidate, harness overhead.

    .venv/bin/python bench/bench_tasks.py --repo PATH [--last 300] [--jobs 1]
        [--venv PATH] [--test-command CMD] [--per-test-timeout 60] [--no-bare]

Mines the newest `--last` first-parent commits of PATH (a checkout with the environment it
tests in: `PATH/.venv` by default) into a throwaway task store (the repo's own
`.evoagent/tasks` is not touched), then prints: commits examined, candidates, valid tasks,
rejects per reason, seconds per candidate. Then, for every candidate that reached the
sandbox, it runs the same test commands bare — a plain `git clone --shared` checkout,
`git checkout`, `git apply` of the test part, the same pytest invocation twice per side,
no bubblewrap, no workspace, no JUnit — and prints the harness overhead ratio
(harness seconds / bare seconds over the same candidates; target <= 1.3x).
Figures only; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from evoagent.agent.evolve.task_candidates import Candidate, classify, first_parent_history
from evoagent.agent.evolve.task_miner import mine_tasks
from evoagent.agent.evolve.task_mining import ValidationConfig, pytest_command
from evoagent.agent.evolve.tasks import TaskStore
from evoagent.sandbox.testdetect import detect_test_command


def bare_seconds(
    repo: Path, candidates: list[Candidate], config: ValidationConfig
) -> tuple[float, float]:
    """(test-command seconds, seconds including checkout/apply) over `candidates`."""
    scratch = Path(tempfile.mkdtemp(prefix="evoagent-bare-"))
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    if config.venv:
        env["VIRTUAL_ENV"] = str(config.venv)
        env["PATH"] = f"{config.venv / 'bin'}:{env['PATH']}"
    tests_total = all_total = 0.0
    try:
        subprocess.run(
            ["git", "clone", "-q", "--shared", "--no-checkout", str(repo), str(scratch / "w")],
            check=True,
        )
        work = scratch / "w"

        def git(*args: str, stdin: str | None = None) -> None:
            subprocess.run(
                ["git", *args], cwd=work, input=stdin, text=True, capture_output=True, check=False
            )

        for candidate in candidates:
            begun = time.monotonic()
            files = candidate.split.runnable_test_files()
            for rev, apply in ((candidate.commit.parent, True), (candidate.commit.sha, False)):
                git("checkout", "-qf", rev or "")
                git("clean", "-fdq")
                if apply:
                    git("apply", "--binary", "-", stdin=candidate.split.tests)
                argv = list(pytest_command(config.test_command, work).argv)
                argv[0] = "python" if argv[0] == "python" else argv[0]
                for _ in range(config.runs_per_side):
                    started = time.monotonic()
                    subprocess.run(
                        [*argv, "-p", "no:cacheprovider", *files],
                        cwd=work,
                        env=env,
                        capture_output=True,
                        timeout=config.run_timeout,
                        check=False,
                    )
                    tests_total += time.monotonic() - started
            all_total += time.monotonic() - begun
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return tests_total, all_total


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
    if args.no_bare:
        return
    validated = {t.commit: t.seconds for t in report.tasks}
    validated |= {
        r.commit: r.seconds
        for r in report.rejects
        if r.stage == "validate" and r.reason != "patch does not apply"
    }
    commits = {c.sha: c for c in first_parent_history(repo, args.last, None)}
    candidates = [classify(repo, commits[sha]) for sha in validated]
    candidates = [c for c in candidates if isinstance(c, Candidate)]
    harness = sum(validated[c.commit.sha] for c in candidates)
    tests, total = bare_seconds(repo, candidates, config)
    print(
        f"bare, same {len(candidates)} candidates: tests {tests:.1f}s, "
        f"with checkout/apply {total:.1f}s"
    )
    print(
        f"harness {harness:.1f}s  overhead ratio {harness / max(tests, 1e-9):.2f}x vs bare tests,"
        f" {harness / max(total, 1e-9):.2f}x vs bare incl. git"
    )
    shutil.rmtree(store_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
