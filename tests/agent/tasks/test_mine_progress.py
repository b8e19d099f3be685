"""`evoagent tasks mine` says what it is doing and how long it has left.

A small real history (a fix with its test, commits that are not candidates) is mined through
the real CLI and the real sandbox; the progress lines are checked for content and order,
never for timing. The ETA's arithmetic is checked with a clock the test controls, and the
status line's throttling with a fake clock.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from pathlib import Path

import pytest
from cli_helpers import run_main
from evoagent.agent.cli.output import StatusLine, clock_text
from evoagent.agent.tasks.mine import MineReport, mine_tasks
from evoagent.agent.tasks.store import TaskStore
from evoagent.agent.tasks.validate import ValidationConfig
from evoagent.sandbox.testdetect import TestCommand
from scratch_pytest import PYTEST

VENV = str(Path(sys.prefix)) if sys.prefix != sys.base_prefix else None
CALC = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return b - a\n"
TEST_CALC = "import calc\n\n\ndef test_add():\n    assert calc.add(2, 3) == 5\n"
STATUS = re.compile(r"^candidate (\d+)/(\d+) · tasks found (\d+) · ETA (\d\d:\d\d|--:--)$")


def build(git_repo, fixes: int) -> None:
    """Newest first: [a docs commit, then per fix: a fix with its test, a code-only commit],
    the root. Each fix is a real fail→pass task."""
    git_repo.commit("Initial calc", {"calc.py": CALC, "tests/test_calc.py": TEST_CALC})
    calc, tests = CALC, TEST_CALC
    for n in range(fixes):
        calc += f"\n\ndef f{n}(x):\n    return x\n"
        git_repo.commit(f"Add f{n}", {"calc.py": calc})
        calc = calc.replace(f"def f{n}(x):\n    return x", f"def f{n}(x):\n    return x + {n + 1}")
        tests += f"\n\ndef test_f{n}():\n    assert calc.f{n}(1) == {n + 2}\n"
        git_repo.commit(f"Fix f{n}", {"calc.py": calc, "tests/test_calc.py": tests})
    git_repo.commit("Document calc", {"README.md": "# calc\n"})


def mine_args(*extra: str) -> list[str]:
    args = ["tasks", "mine", "--test-command", PYTEST, "--per-test-timeout", "5", "--runs", "1"]
    return args + list(extra) + (["--venv", VENV] if VENV else [])


def test_mine_says_what_it_does_then_how_far_it_is(git_repo, monkeypatch, capsys):
    build(git_repo, fixes=1)
    code, out, err = run_main(git_repo.path, monkeypatch, capsys, *mine_args())
    assert code == 0, err
    lines = err.splitlines()
    assert lines[:2] == [
        "mining tasks from first-parent history (runs per side: 1, jobs: 1)…",
        "4 first-parent commits (0 already decided): 4 to decide",
    ]
    # Not a terminal: whole lines, each one later than the one before, the last one final.
    steps = [STATUS.match(line) for line in lines[2:]]
    assert steps and all(steps), lines
    done = [int(m.group(1)) for m in steps]
    assert done[0] == 1 and done == sorted(set(done))
    assert {m.group(2) for m in steps} == {"4"}
    assert lines[-1] == "candidate 4/4 · tasks found 1 · ETA 00:00"
    assert out.startswith("looked at 4 commits (0 already decided): 1 candidates, 1 new tasks")


def test_json_output_stays_json_with_progress_on_stderr(git_repo, monkeypatch, capsys):
    build(git_repo, fixes=1)
    assert run_main(git_repo.path, monkeypatch, capsys, *mine_args())[0] == 0
    code, out, err = run_main(git_repo.path, monkeypatch, capsys,
                              *mine_args("--json", "--last", "2", "--jobs", "2", "--want", "1"))
    assert code == 0, err
    assert json.loads(out)["already_decided"] == 2
    assert err.splitlines() == [
        "mining tasks from the newest 2 first-parent commits (runs per side: 1, jobs: 2, "
        "want: 1)…",
        "2 first-parent commits (2 already decided): 0 to decide",
    ]


class Ticks:
    """A clock that moves 10 s each time it is read (thread-safe)."""

    def __init__(self):
        self.now = 0.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            self.now += 10.0
            return self.now


class Recorder:
    def __init__(self, jobs: int):
        self.jobs = jobs
        self.seen: list[tuple] = []

    def planned(self, report: MineReport) -> None:
        self.seen.append(("planned", report.to_decide))

    def decided(self, report: MineReport, note: str) -> None:
        eta = report.eta_seconds(self.jobs)
        self.seen.append((report.decided, len(report.tasks), note.split(" ", 1)[0],
                          None if eta is None else round(eta, 2)))


def test_eta_comes_from_validations_only(git_repo, tmp_path):
    """Each validation takes 10 s on this clock and classifying a commit takes none: the ETA
    is 10 s × (in flight + items not looked at × the share of looked-at items that were
    candidates)."""
    build(git_repo, fixes=2)
    config = ValidationConfig(TestCommand(tuple(PYTEST.split()), "pytest", "test"),
                              Path(VENV) if VENV else None, 5.0, runs=1)
    progress = Recorder(jobs=1)
    report = mine_tasks(git_repo.path, TaskStore(tmp_path / "tasks"), config,
                        tmp_path / "sandboxes", progress=progress, clock=Ticks())
    assert len(report.tasks) == 2
    assert progress.seen == [
        ("planned", 6),
        (1, 0, "not", None),  # docs only: no validation has ended yet
        (2, 1, "task", 20.0),  # "Fix f1": 4 left × 1/2
        (3, 1, "not", 10.0),  # "Add f1": 3 left × 1/3
        (4, 2, "task", 10.0),  # "Fix f0": 2 left × 2/4
        (5, 2, "not", 4.0),  # "Add f0": 1 left × 2/5
        (6, 2, "not", 0.0),  # the root commit
    ]


@pytest.mark.parametrize(
    "to_decide, decided, candidates, validated, tasks, jobs, want, eta",
    [
        (10, 2, 3, 2, 1, 1, None, 30.0 * (1 + 7)),  # 30 s each: 1 in flight, 7 unseen × 3/3
        (10, 2, 3, 2, 1, 2, None, 30.0 * (1 + 7) / 2),  # two at a time
        (10, 4, 2, 2, 2, 1, 2, 0.0),  # both wanted tasks found: nothing more is handed out
        (100, 4, 4, 4, 2, 1, 3, 30.0 * 2),  # a task per 2 validations, 1 missing: 2, not 96
    ],
)
def test_eta_arithmetic(to_decide, decided, candidates, validated, tasks, jobs, want, eta):
    report = MineReport(to_decide=to_decide, decided=decided, candidates=candidates,
                        validated=validated, validate_seconds=30.0 * validated)
    report.tasks = [None] * tasks  # type: ignore[list-item]  # only counted
    assert report.eta_seconds(jobs, want) == pytest.approx(eta)


def test_status_line_off_a_terminal_is_a_line_every_few_seconds(capsys):
    now = [0.0]
    status = StatusLine(tty=False, every=5.0, clock=lambda: now[0])
    status.line("heading")
    for t in (0, 1, 2, 6, 7, 8):
        now[0] = t
        status.update(f"at {t}")
    status.close()
    assert capsys.readouterr().err.splitlines() == ["heading", "at 0", "at 6", "at 8"]


def test_status_line_on_a_terminal_redraws_one_line(capsys):
    now = [0.0]
    status = StatusLine(tty=True, clock=lambda: now[0])
    status.update("one")
    now[0] = 0.05
    status.update("two")  # too soon: held, then drawn by close
    status.line("note\x1b]0;title\x07")
    status.close()
    assert capsys.readouterr().err == (
        "\rone\x1b[K" "\r\x1b[K" "note\n" "\rone\x1b[K" "\rtwo\x1b[K" "\n"
    )


@pytest.mark.parametrize("seconds, text", [(None, "--:--"), (0.4, "00:00"), (75.4, "01:15"),
                                           (4503, "75:03")])
def test_clock_text(seconds, text):
    assert clock_text(seconds) == text
