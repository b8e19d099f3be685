"""Task validation with tests that are flaky by construction, on a real repository.

Every flaky test here counts its own runs in a git-ignored file of the checkout it runs in
(`flakes.py`), so it fails on a chosen run of a validation, whatever the machine does; one
also starts at a random point of its cycle, as a test flaky for real would. Each commit is
one case the issue reported:

- `parent`: a test that fails on the first two runs before the fix and passes after it
  (flaky at P): with two runs at P it looked like FAIL_TO_PASS;
- `commit`: a test that passes before and fails on the third run after the fix (flaky at
  C): with two runs at C it stayed in PASS_TO_PASS;
- `collect`: a new test file that cannot be collected at P, one of whose tests fails on the
  third run at C: with two runs at C the gold patch failed its own task;
- `random`: eight tests flaky at P, each starting at a random point of a three-run cycle:
  with two runs at P two identical `tasks mine` runs gave different FAIL_TO_PASS sets;
- `steady`: a plain candidate whose tests pass before and after: no task, and no repeat.

Mining runs once for the module through the real CLI and the real sandbox; the determinism
test mines the newest three commits again into a second store.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import invoke
from evoagent.agent.tasks.store import TaskStore
from scratch_pytest import PYTEST, PYTEST_ARGV

VENV = str(Path(sys.prefix)) if sys.prefix != sys.base_prefix else None

FLAKES = '''"""Run counters for tests that are flaky by construction (files beside this module, in
whatever checkout the tests run in; git-ignored)."""

import os
from pathlib import Path

HERE = Path(__file__).parent


def nth(name):
    """1 on the first call for `name` in this checkout, 2 on the second, ..."""
    path = HERE / f".count-{name}"
    n = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(n))
    return n


def phase(name, period):
    """A random start in a cycle of `period` runs, fixed for this checkout."""
    path = HERE / f".phase-{name}"
    if not path.exists():
        path.write_text(str(int.from_bytes(os.urandom(2), "big") % period))
    return int(path.read_text())
'''

CALC = """def add(a, b):
    return a + b


def sub(a, b):
    return b - a


def neg(a):
    return a
"""
PLACEHOLDER = "import calc\n\n\ndef test_add():\n    assert calc.add(2, 3) == 5\n"

PARENT_TESTS = '''

def test_sub():
    assert calc.sub(5, 3) == 2


def test_sub_zero():
    # Before the fix it fails on the first two runs of a checkout, then passes.
    if calc.sub(3, 1) != 2:
        assert flakes.nth("sub-zero") >= 3
    assert calc.sub(0, 0) == 0
'''
COMMIT_TESTS = '''

def test_mul():
    assert calc.mul(2, 3) == 6


def test_add_twice():
    # Once mul exists it fails on the third run of a checkout.
    if hasattr(calc, "mul"):
        assert flakes.nth("add-twice") != 3
    assert calc.add(1, 1) == 2
'''
RANDOM_TESTS = '''

def test_neg():
    assert calc.neg(2) == -2


@pytest.mark.parametrize("n", range(8))
def test_neg_one(n):
    # Before the fix it passes one run in three, from a random point of the cycle.
    if calc.neg(1) != -1:
        assert (flakes.nth(f"neg{n}") + flakes.phase(f"neg{n}", 3)) % 3 == 0
'''
POWER_TESTS = '''import flakes
from calc import power


def test_power():
    assert power(2, 3) == 8


def test_power_one():
    # Fails on the third run of a checkout.
    assert flakes.nth("power-one") != 3
    assert power(5, 1) == 5
'''


def _git(repo: Path, *args: str, tick: list[int]) -> str:
    env = dict(os.environ)
    tick[0] += 1
    env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = f"{1_700_000_000 + tick[0] * 60} +0000"
    out = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, check=True)
    return out.stdout.decode().strip()


def build_history(repo: Path) -> dict[str, str]:
    """The repository; label → commit sha. The newest three are `steady`, `random` and
    `collect` (the newest)."""
    tick = [0]
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main", tick=tick)
    shas: dict[str, str] = {}

    def commit(label: str, files: dict[str, str]) -> None:
        for rel, text in files.items():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            (repo / rel).write_text(text)
        _git(repo, "add", "-A", tick=tick)
        _git(repo, "commit", "-q", "-m", label, tick=tick)
        shas[label] = _git(repo, "rev-parse", "HEAD", tick=tick)

    calc = CALC
    commit(
        "root",
        {
            "pyproject.toml": "[project]\nname = 'calc'\n\n[tool.pytest.ini_options]\n",
            ".gitignore": ".count-*\n.phase-*\n",
            "calc.py": calc,
            "flakes.py": FLAKES,
            **{f"tests/test_{n}.py": PLACEHOLDER for n in ("parent", "commit", "random")},
        },
    )
    calc = calc.replace("return b - a", "return a - b")
    commit(
        "parent",
        {"calc.py": calc, "tests/test_parent.py": "import flakes\n" + PLACEHOLDER + PARENT_TESTS},
    )
    calc += "\n\ndef mul(a, b):\n    return a * b\n"
    commit(
        "commit",
        {"calc.py": calc, "tests/test_commit.py": "import flakes\n" + PLACEHOLDER + COMMIT_TESTS},
    )
    calc = calc.replace("return a + b", "return b + a")
    commit(
        "steady",
        {
            "calc.py": calc,
            "tests/test_parent.py": (repo / "tests/test_parent.py").read_text()
            + "\n\ndef test_add_zero():\n    assert calc.add(0, 0) == 0\n",
        },
    )
    calc = calc.replace("    return a\n", "    return -a\n", 1)
    commit(
        "random",
        {
            "calc.py": calc,
            "tests/test_random.py": "import flakes\nimport pytest\n" + PLACEHOLDER + RANDOM_TESTS,
        },
    )
    calc += "\n\ndef power(a, b):\n    return a**b\n"
    commit("collect", {"calc.py": calc, "tests/test_power.py": POWER_TESTS})
    return shas


def mine_args(*extra: str) -> list[str]:
    args = ["tasks", "mine", "--json", "--test-command", PYTEST, "--per-test-timeout", "10"]
    return args + ["--jobs", "2", *extra] + (["--venv", VENV] if VENV else [])


def summary(store: TaskStore) -> dict[str, object]:
    """What two identical mining runs must agree on: every task's lists, every reject."""
    tasks = {
        t.id: (t.fail_to_pass, t.pass_to_pass, t.flaky, getattr(t, "runs", None))
        for t in store.tasks()
    }
    return {"tasks": tasks, "rejects": {r.commit: r.reason for r in store.rejects()}}


@pytest.fixture(scope="module")
def mined(tmp_path_factory):
    root = tmp_path_factory.mktemp("flaky")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(root / "home"))
        mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
        for key in ("GIT_AUTHOR", "GIT_COMMITTER"):
            mp.setenv(f"{key}_NAME", "A")
            mp.setenv(f"{key}_EMAIL", "a@example.com")
        repo = root / "repo"
        shas = build_history(repo)
        result = invoke(repo, *mine_args())
        assert result.exit_code == 0, result.output
        store = TaskStore(repo / ".evoagent" / "tasks")
        yield {
            "repo": repo,
            "shas": shas,
            "report": json.loads(result.stdout),
            "tasks": {t.commit: t for t in store.tasks()},
            "rejects": {r.commit: r for r in store.rejects()},
            "summary": summary(store),
        }


def test_a_test_flaky_before_the_fix_is_left_out_and_listed(mined):
    task = mined["tasks"][mined["shas"]["parent"]]
    assert task.fail_to_pass == ["tests/test_parent.py::test_sub"]
    assert task.pass_to_pass == ["tests/test_parent.py::test_add"]
    assert task.flaky == ["tests/test_parent.py::test_sub_zero"]
    assert task.runs == {"parent": 3, "commit": 3}


def test_a_test_flaky_after_the_fix_leaves_pass_to_pass(mined):
    task = mined["tasks"][mined["shas"]["commit"]]
    assert task.fail_to_pass == ["tests/test_commit.py::test_mul"]
    assert task.pass_to_pass == ["tests/test_commit.py::test_add"]
    assert task.flaky == ["tests/test_commit.py::test_add_twice"]


def test_a_collect_error_at_the_parent_repeats_the_commit_only(mined):
    """Nothing ran at P (the file does not import there): P once, C three times, and the
    test that fails on the third run is not a FAIL_TO_PASS test of the task."""
    task = mined["tasks"][mined["shas"]["collect"]]
    assert task.fail_to_pass == ["tests/test_power.py::test_power"]
    assert task.flaky == ["tests/test_power.py::test_power_one"]
    assert task.runs == {"parent": 1, "commit": 3}


def test_tests_flaky_at_random_before_the_fix_are_all_left_out(mined):
    task = mined["tasks"][mined["shas"]["random"]]
    assert task.fail_to_pass == ["tests/test_random.py::test_neg"]
    assert task.flaky == [f"tests/test_random.py::test_neg_one[{n}]" for n in range(8)]


def test_every_kept_test_held_in_every_run_and_steady_commits_run_once(mined):
    shas, report = mined["shas"], mined["report"]
    assert set(mined["tasks"]) == {shas[k] for k in ("parent", "commit", "random", "collect")}
    assert mined["rejects"][shas["steady"]].reason == "no failing test"
    assert report["candidates"] == 5 and report["tasks"] == 4
    listed = {t["commit"]: t["flaky"] for t in report["new_tasks"]}
    assert listed[shas["commit"]] == ["tests/test_commit.py::test_add_twice"]
    # Three runs a side for the tasks, but one at P where nothing ran (`collect`), and one a
    # side for the candidate that could not be a task (`steady`).
    assert report["test_runs"] == {"parent": 3 + 3 + 3 + 1 + 1, "commit": 3 + 3 + 3 + 3 + 1}


def test_two_mining_runs_give_the_same_tasks(mined):
    """The newest three commits again, into a second store: a reject, the random tests flaky
    before the fix, and the collect error with a test flaky after it."""
    repo = mined["repo"]
    shutil.move(repo / ".evoagent" / "tasks", repo / ".evoagent" / "tasks-first")
    try:
        result = invoke(repo, *mine_args("--last", "3"))
        assert result.exit_code == 0, result.output
        again = summary(TaskStore(repo / ".evoagent" / "tasks"))
    finally:
        shutil.rmtree(repo / ".evoagent" / "tasks", ignore_errors=True)
        shutil.move(repo / ".evoagent" / "tasks-first", repo / ".evoagent" / "tasks")
    newest = {mined["shas"][k] for k in ("steady", "random", "collect")}
    first = mined["summary"]
    assert again["rejects"] == {c: r for c, r in first["rejects"].items() if c in newest}
    assert again["tasks"] == {
        i: lists for i, lists in first["tasks"].items() if i.endswith(tuple(s[:12] for s in newest))
    }
    assert len(again["tasks"]) == 2


def test_runs_flag_sets_the_count(mined):
    """`--runs 2` on the newest commit: the test that fails on a checkout's third run is
    never seen failing, so it stays (what two runs can and cannot show)."""
    repo = mined["repo"]
    shutil.move(repo / ".evoagent" / "tasks", repo / ".evoagent" / "tasks-first")
    try:
        result = invoke(repo, *mine_args("--last", "1", "--runs", "2"))
        assert result.exit_code == 0, result.output
        (task,) = TaskStore(repo / ".evoagent" / "tasks").tasks()
    finally:
        shutil.rmtree(repo / ".evoagent" / "tasks", ignore_errors=True)
        shutil.move(repo / ".evoagent" / "tasks-first", repo / ".evoagent" / "tasks")
    assert task.commit == mined["shas"]["collect"]
    assert task.fail_to_pass == [
        "tests/test_power.py::test_power",
        "tests/test_power.py::test_power_one",
    ]
    assert task.runs == {"parent": 1, "commit": 2} and not task.flaky


def test_a_candidate_that_cannot_be_a_task_runs_once_per_side(mined, tmp_path):
    """What an independent SWE-bench-style validation runs, and no more."""
    from evoagent.agent.tasks.candidates import Candidate, classify, first_parent_history
    from evoagent.agent.tasks.validate import ValidationConfig, validate
    from evoagent.sandbox.testdetect import TestCommand

    repo, sha = mined["repo"], mined["shas"]["steady"]
    commit = next(c for c in first_parent_history(repo, None, None) if c.sha == sha)
    candidate = classify(repo, commit)
    assert isinstance(candidate, Candidate)
    command = TestCommand(PYTEST_ARGV, "pytest", "test")
    config = ValidationConfig(command, Path(VENV) if VENV else None, per_test_timeout=10)
    verdict = validate(repo, tmp_path / "sandboxes", candidate, config)
    assert verdict.reason == "no failing test"
    assert verdict.runs == {"parent": 1, "commit": 1}


def _run(passed=(), failed=()):
    from evoagent.sandbox.testrun import TestRun

    return TestRun(list(passed), list(failed), [], [], 1 if failed else 0, "", True)


def test_the_verdict_does_not_depend_on_the_order_of_the_runs():
    """Any run on either side that disagrees makes a test flaky, whichever run it was; and a
    run added can only take tests out of the lists (what lets repeats stop early)."""
    from itertools import permutations

    from evoagent.agent.tasks.validate import _side, decide, kept_tests

    files = ["tests/test_x.py"]
    t = [f"tests/test_x.py::test_{n}" for n in "abcd"]
    # a: fails at P, passes at C (FAIL_TO_PASS); b: passes everywhere (PASS_TO_PASS);
    # c: fails once of three at C; d: passes once of three at P.
    parent = [_run([t[1], t[3]], [t[0]]), _run([t[1]], [t[0], t[3]]), _run([t[1]], [t[0], t[3]])]
    child = [_run(t[:3] + [t[3]]), _run(t[:2] + [t[3]], [t[2]]), _run(t)]
    seen = set()
    for p in permutations(parent):
        for c in permutations(child):
            verdict = decide(_side(list(p), files), _side(list(c), files), files, "", 20)
            seen.add((tuple(verdict.fail_to_pass), tuple(verdict.pass_to_pass),
                      tuple(verdict.flaky)))
            for k in (1, 2):
                f2p, p2p = kept_tests(_side(list(p[:k]), files), _side(list(c[:k]), files))
                assert set(verdict.fail_to_pass) <= set(f2p)
                assert set(verdict.pass_to_pass) <= set(p2p)
    assert seen == {((t[0],), (t[1],), (t[2], t[3]))}
