"""`evoagent tasks mine|list|show|export` on a real repository built in a tmp dir.

The history holds one commit per case a miner meets: a fail→pass fix naming an issue, a
test that hangs on the old code, a flaky test (it toggles a file beside itself, so its two
runs on one side disagree), a test needing a module that is not installed, a commit whose new
import breaks a whole test file (cascade), a merge landing a pull request, and commits that
are not candidates (tests only, code only, docs only, a dependency bump). Mining runs once
for the module, through the real CLI, with the real sandbox.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import invoke
from evoagent.agent.errors import EvoError
from evoagent.agent.tasks.store import TaskStore, split_of
from scratch_pytest import PYTEST, PYTEST_ARGV

VENV = str(Path(sys.prefix)) if sys.prefix != sys.base_prefix else None

CALC = """import time


def add(a, b):
    return a + b


def sub(a, b):
    return b - a


def spin(n):
    while True:
        time.sleep(0.01)
"""
TEST_CALC = """import calc


def test_add():
    assert calc.add(2, 3) == 5
"""
TEST_MORE = """import calc


def test_m1():
    assert calc.add(1, 1) == 2


def test_m2():
    assert calc.add(0, 0) == 0


def test_m3():
    assert calc.add(-1, 1) == 0
"""
FLAKY_TEST = """from pathlib import Path

import calc

FLAG = Path(__file__).with_name(".flip")


def test_mul():
    flip = FLAG.exists()
    if flip:
        FLAG.unlink()
    else:
        FLAG.write_text("x")
    assert flip
    assert calc.mul(2, 3) == 6
"""


def _git(repo: Path, *args: str, tick: list[int]) -> str:
    env = dict(os.environ)
    tick[0] += 1
    env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = f"{1_700_000_000 + tick[0] * 60} +0000"
    out = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, check=True)
    return out.stdout.decode().strip()


def build_history(repo: Path) -> dict[str, str]:
    """The repository; returns label → commit sha."""
    tick = [0]
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main", tick=tick)
    shas: dict[str, str] = {}

    def commit(label: str, message: str, files: dict[str, str]) -> None:
        for rel, text in files.items():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            (repo / rel).write_text(text)
        _git(repo, "add", "-A", tick=tick)
        _git(repo, "commit", "-q", "-m", message, tick=tick)
        shas[label] = _git(repo, "rev-parse", "HEAD", tick=tick)

    calc = CALC
    commit(
        "root",
        "Initial calc",
        {
            "pyproject.toml": "[project]\nname = 'calc'\n\n[tool.pytest.ini_options]\n",
            "requirements.txt": "attrs==1.0\n",
            "calc.py": calc,
            "tests/test_calc.py": TEST_CALC,
            "tests/test_more.py": TEST_MORE,
            ".gitignore": ".flip\n",
        },
    )
    calc = calc.replace("return b - a", "return a - b")
    commit(
        "fix",
        "Fix sub argument order\n\nsub(5, 3) returned -2. Fixes #12.",
        {
            "calc.py": calc,
            "tests/test_calc.py": TEST_CALC
            + "\n\ndef test_sub():\n    assert calc.sub(5, 3) == 2\n",
        },
    )
    calc = calc.replace("    while True:\n        time.sleep(0.01)\n", "    return n\n")
    test_calc = (repo / "tests/test_calc.py").read_text()
    test_calc += "\n\ndef test_spin():\n    assert calc.spin(4) == 4\n"
    commit("hang", "Make spin return", {"calc.py": calc, "tests/test_calc.py": test_calc})
    calc += "\n\ndef mul(a, b):\n    return a * b\n"
    commit("flaky", "Add mul", {"calc.py": calc, "tests/test_flaky.py": FLAKY_TEST})
    calc += "\n\ndef fancy(x):\n    return x\n"
    commit(
        "missing",
        "Add fancy",
        {
            "calc.py": calc,
            "tests/test_fancy.py": "import nonexistent_pkg_xyz\n\nimport calc\n\n\n"
            "def test_fancy():\n    assert calc.fancy(1) == 1\n",
        },
    )
    calc += "\n\ndef power(a, b):\n    return a**b\n"
    commit(
        "cascade",
        "Add power",
        {
            "calc.py": calc,
            "tests/test_more.py": "from calc import power\n\n"
            + TEST_MORE
            + "\n\ndef test_power():\n    assert power(2, 3) == 8\n",
        },
    )
    commit(
        "tests_only",
        "More tests",
        {
            "tests/test_calc.py": test_calc
            + "\n\ndef test_add2():\n    assert calc.add(1, 2) == 3\n"
        },
    )
    calc += "\n\ndef neg(a):\n    return -a\n"
    commit("code_only", "Add neg", {"calc.py": calc})
    commit("docs_only", "Document calc", {"README.md": "# calc\n\nAdds numbers.\n"})
    commit(
        "bump",
        "Bump dependencies",
        {
            "requirements.txt": "".join(f"pkg{i}==2.{i}\n" for i in range(30)),
            "calc.py": calc + "\nVERSION = 2\n",
            "tests/test_calc.py": (repo / "tests/test_calc.py").read_text()
            + "\n\ndef test_version():\n    assert calc.VERSION == 2\n",
        },
    )
    # A pull request landed as a merge: the branch commit is not on the first-parent path.
    _git(repo, "checkout", "-q", "-b", "feature", tick=tick)
    calc += "\nVERSION = 2\n\n\ndef div(a, b):\n    return a / b\n"
    commit(
        "branch",
        "Add div",
        {
            "calc.py": calc,
            "tests/test_div.py": "import calc\n\n\n"
            "def test_div():\n    assert calc.div(6, 3) == 2\n",
        },
    )
    _git(repo, "checkout", "-q", "main", tick=tick)
    _git(
        repo,
        "merge",
        "-q",
        "--no-ff",
        "feature",
        "-m",
        "Merge pull request #7 from someone/feature\n\nAdd div",
        tick=tick,
    )
    shas["merge"] = _git(repo, "rev-parse", "HEAD", tick=tick)
    return shas


def snapshot(repo: Path) -> dict[str, str]:
    """Everything a user could see change: working files (not .evoagent), the index, status."""
    files = {}
    for path in sorted(repo.rglob("*")):
        rel = path.relative_to(repo).as_posix()
        if path.is_file() and not rel.startswith((".git/", ".evoagent/")):
            files[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    files["<index>"] = hashlib.sha256((repo / ".git" / "index").read_bytes()).hexdigest()
    status = subprocess.run(
        ["git", "status", "--porcelain", "-uall"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    files["<status>"] = status
    return files




def mine_args(*extra: str) -> list[str]:
    args = [
        "tasks",
        "mine",
        "--json",
        "--test-command",
        PYTEST,
        "--per-test-timeout",
        "2",
        "--jobs",
        "2",
        *extra,
    ]
    return args + (["--venv", VENV] if VENV else [])


@pytest.fixture(scope="module")
def mined(tmp_path_factory):
    root = tmp_path_factory.mktemp("mining")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(root / "home"))
        mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
        for key, value in {
            "GIT_AUTHOR_NAME": "A",
            "GIT_AUTHOR_EMAIL": "a@example.com",
            "GIT_COMMITTER_NAME": "C",
            "GIT_COMMITTER_EMAIL": "c@example.com",
        }.items():
            mp.setenv(key, value)
        repo = root / "repo"
        shas = build_history(repo)
        # The user's own uncommitted work, staged and unstaged: never used, never touched.
        (repo / "calc.py").write_text((repo / "calc.py").read_text() + "\n# wip\n")
        (repo / "notes.txt").write_text("staged\n")
        subprocess.run(["git", "add", "notes.txt"], cwd=repo, check=True)
        subprocess.run(["mkdir", "-p", str(repo / ".evoagent")], check=True)
        before = snapshot(repo)
        result = invoke(repo, *mine_args())
        after = snapshot(repo)
        assert result.exit_code == 0, result.output
        yield {
            "repo": repo,
            "shas": shas,
            "report": json.loads(result.stdout),
            "before": before,
            "after": after,
        }


def _store(mined) -> TaskStore:
    return TaskStore(mined["repo"] / ".evoagent" / "tasks")


def test_exactly_the_valid_tasks_are_found(mined):
    shas = mined["shas"]
    tasks = {t.commit: t for t in _store(mined).tasks()}
    assert set(tasks) == {shas["fix"], shas["hang"], shas["cascade"], shas["merge"]}
    fix = tasks[shas["fix"]]
    assert fix.fail_to_pass == ["tests/test_calc.py::test_sub"]
    assert fix.pass_to_pass == ["tests/test_calc.py::test_add"]
    assert fix.base_commit == shas["root"]
    assert fix.diff_tests == ["tests/test_calc.py::test_sub"] and not fix.cascade
    # A hang at P is a per-test timeout there, not a lost task.
    hang = tasks[shas["hang"]]
    assert hang.fail_to_pass == ["tests/test_calc.py::test_spin"]
    assert hang.pass_to_pass == ["tests/test_calc.py::test_add", "tests/test_calc.py::test_sub"]
    merge = tasks[shas["merge"]]
    assert merge.base_commit == shas["bump"]
    assert merge.fail_to_pass == ["tests/test_div.py::test_div"]
    assert merge.problem_statement.startswith("Merge pull request #7")


def test_cascade_is_flagged_with_the_diff_tests_apart(mined):
    task = next(t for t in _store(mined).tasks() if t.commit == mined["shas"]["cascade"])
    assert task.fail_to_pass == [
        f"tests/test_more.py::test_{n}" for n in ("m1", "m2", "m3", "power")
    ]
    assert task.diff_tests == ["tests/test_more.py::test_power"]
    assert task.cascade
    assert "ImportError" in task.cascade_reason and "power" in task.cascade_reason


def test_rejection_reasons(mined):
    shas = mined["shas"]
    rejects = {r.commit: r for r in _store(mined).rejects()}
    reasons = {
        label: rejects[shas[label]].reason
        for label in ("root", "flaky", "missing", "tests_only", "code_only", "docs_only", "bump")
    }
    assert reasons == {
        "root": "root commit",
        "flaky": "flaky",
        "missing": "environment/collection error",
        "tests_only": "no source change",
        "code_only": "no test change",
        "docs_only": "docs/format only",
        "bump": "dependency bump",
    }
    assert rejects[shas["flaky"]].detail == "tests/test_flaky.py::test_mul"
    assert rejects[shas["missing"]].detail == (
        "tests/test_fancy.py: ModuleNotFoundError: No module named 'nonexistent_pkg_xyz'"
    )
    assert shas["branch"] not in rejects  # off the first-parent path
    report = mined["report"]
    assert report["candidates"] == 6 and report["tasks"] == 4
    assert report["reasons"]["flaky"] == 1


def test_user_tree_and_index_are_untouched(mined):
    assert mined["after"] == mined["before"]
    assert "# wip" in (mined["repo"] / "calc.py").read_text()
    sandboxes = mined["repo"] / ".evoagent" / "sandboxes"
    assert not [p for p in sandboxes.iterdir() if p.is_dir()] if sandboxes.exists() else True


def test_problem_statement_is_the_message_only(mined):
    task = next(t for t in _store(mined).tasks() if t.commit == mined["shas"]["fix"])
    assert task.problem_statement == "Fix sub argument order\n\nsub(5, 3) returned -2. Fixes #12."
    assert task.issue_refs == ["#12"]
    assert "calc.py" not in task.problem_statement and "test_" not in task.problem_statement
    assert "tests/test_calc.py" in task.test_patch and "calc.py" in task.patch
    assert "tests/" not in task.patch


def test_rerun_does_no_work(mined):
    result = invoke(mined["repo"], *mine_args())
    report = json.loads(result.stdout)
    assert report["candidates"] == 0 and report["tasks"] == 0 and report["rejected"] == 0
    assert report["already_decided"] == report["examined"] == 11
    assert len(_store(mined).tasks()) == 4


def test_export_is_swebench_format(mined, tmp_path):
    out = tmp_path / "tasks.jsonl"
    assert invoke(mined["repo"], "tasks", "export", str(out)).exit_code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4
    needed = {
        "instance_id",
        "repo",
        "base_commit",
        "patch",
        "test_patch",
        "problem_statement",
        "FAIL_TO_PASS",
        "PASS_TO_PASS",
        "created_at",
    }
    for row in rows:
        assert needed <= set(row)
        assert isinstance(row["FAIL_TO_PASS"], str) and json.loads(row["FAIL_TO_PASS"])
        assert isinstance(json.loads(row["PASS_TO_PASS"]), list)
        assert (
            row["instance_id"].startswith("repo-") and len(row["instance_id"]) == len("repo-") + 12
        )
    # The exported patches apply: code part then test part on the base commit.
    fix = next(r for r in rows if r["base_commit"] == mined["shas"]["root"])
    work = tmp_path / "check"
    subprocess.run(["git", "clone", "-q", str(mined["repo"]), str(work)], check=True)
    subprocess.run(["git", "checkout", "-q", fix["base_commit"]], cwd=work, check=True)
    for part in ("patch", "test_patch"):
        subprocess.run(["git", "apply", "-"], cwd=work, input=fix[part].encode(), check=True)
    tree = subprocess.run(
        ["git", "diff", mined["shas"]["fix"], "--stat"],
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert tree == ""


def test_list_show_and_split(mined):
    result = invoke(mined["repo"], "tasks", "list", "--json")
    listed = json.loads(result.output)
    assert {row["split"] for row in listed} <= {"train", "val", "test"}
    for row in listed:
        assert row["split"] == split_of(row["id"], {"train": 0.6, "val": 0.2, "test": 0.2})
    fix_id = next(r["id"] for r in listed if r["commit"] == mined["shas"]["fix"])
    shown = invoke(mined["repo"], "tasks", "show", fix_id[:-4]).output
    assert "tests/test_calc.py::test_sub  (changed by the diff)" in shown
    assert "Fixes #12" in shown
    with pytest.raises(EvoError, match="no task 'nope'"):
        invoke(mined["repo"], "tasks", "show", "nope")


def test_inherited_and_imported_tests_keep_their_collected_file(tmp_path, monkeypatch):
    """JUnit's `file` is where a test is defined; the task must name the file pytest
    collected it from, as `pytest -rA` (and so SWE-bench) does: a test inherited from a base
    class in a helper module is `tests/test_calc.py::TestCalc::test_add`, not
    `tests/checks.py::tests::test_calc::TestCalc::test_add`."""
    from evoagent.agent.tasks.candidates import Candidate, classify, first_parent_history
    from evoagent.agent.tasks.validate import ValidationConfig, validate
    from evoagent.sandbox.testdetect import TestCommand

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for key in ("GIT_AUTHOR", "GIT_COMMITTER"):
        monkeypatch.setenv(f"{key}_NAME", "A")
        monkeypatch.setenv(f"{key}_EMAIL", "a@example.com")
    repo, tick = tmp_path / "repo", [0]
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main", tick=tick)

    def commit(message: str, files: dict[str, str]) -> None:
        for rel, text in files.items():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            (repo / rel).write_text(text)
        _git(repo, "add", "-A", tick=tick)
        _git(repo, "commit", "-q", "-m", message, tick=tick)

    commit(
        "calc",
        {
            "calc.py": "def add(a, b):\n    return a - b\n",
            "tests/__init__.py": "",
            "tests/test_calc.py": "def test_ok():\n    assert True\n",
        },
    )
    commit(
        "Fix add",
        {
            "calc.py": "def add(a, b):\n    return a + b\n",
            "tests/checks.py": "import calc\n\n\nclass AddChecks:\n"
            "    def test_add(self):\n        assert calc.add(2, 3) == 5\n",
            "tests/test_calc.py": "from tests.checks import AddChecks\n\n\n"
            "def test_ok():\n    assert True\n\n\nclass TestCalc(AddChecks):\n    pass\n",
        },
    )
    candidate = classify(repo, first_parent_history(repo, 1, None)[0])
    assert isinstance(candidate, Candidate)
    command = TestCommand(PYTEST_ARGV, "pytest", "test")
    # One run a side: which file a test is named by does not change with repeats.
    config = ValidationConfig(command, Path(VENV) if VENV else None, per_test_timeout=10, runs=1)
    verdict = validate(repo, tmp_path / "sandboxes", candidate, config)
    assert verdict.fail_to_pass == ["tests/test_calc.py::TestCalc::test_add"]
    assert verdict.pass_to_pass == ["tests/test_calc.py::test_ok"]
