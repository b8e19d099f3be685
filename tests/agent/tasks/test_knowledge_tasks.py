"""Approved fixes become tasks: `evoagent tasks mine` on a real repository whose knowledge
records were approved from run folders (as `fix` writes them), validated in the real sandbox.

The records: a fix that brings a failing test (a task), a fix with no test (rejected with its
reason), a fix whose test passes without it (rejected after validation), one retracted and
one superseded (skipped). Mining runs three times for the module: with `--no-knowledge`,
then with knowledge, then again to show nothing is validated twice.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import invoke
from evoagent.agent.tasks.from_knowledge import full_patch
from evoagent.agent.tasks.store import TaskStore
from evoagent.memory.knowledge import Knowledge, bound_diff
from scratch_pytest import PYTEST

VENV = str(Path(sys.prefix)) if sys.prefix != sys.base_prefix else None

CALC = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return b - a\n"
TEST_CALC = "import calc\n\n\ndef test_add():\n    assert calc.add(2, 3) == 5\n"
FIXED = CALC.replace("b - a", "a - b")
TEST_SUB = TEST_CALC + "\n\ndef test_sub():\n    assert calc.sub(5, 3) == 2\n"
ISSUE = (
    "sub() returns the wrong sign\n\ncalc.sub(5, 3) gives -2, I expected 2.\n\nSeen on version 1.0."
)




def ok_json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout


def patch_of(repo: Path, files: dict[str, str]) -> str:
    """The diff a run would propose for these file contents, leaving the tree as it was."""
    for rel, text in files.items():
        (repo / rel).write_text(text)
    git(repo, "add", "-A")
    patch = git(repo, "diff", "--cached", "--binary", "--src-prefix=a/", "--dst-prefix=b/")
    git(repo, "reset", "-q", "--hard")
    return patch


def approve_run(repo: Path, run_id: str, issue: str, patch: str) -> str:
    """A run folder as `fix` leaves it, approved; the knowledge record's id."""
    run_dir = repo / ".evoagent" / "runs" / run_id
    run_dir.mkdir(parents=True)
    report = {
        "run_id": run_id,
        "issue": issue,
        "status": "fixed",
        "base_sha": git(repo, "rev-parse", "HEAD").strip(),
        "summary": "Swap the operands of sub",
        "root_cause": "operands reversed",
    }
    (run_dir / "report.json").write_text(json.dumps(report))
    (run_dir / "patch.diff").write_text(patch)
    return ok_json(invoke(repo, "approve", run_id, "--json"))["id"]


def mine_args(*extra: str) -> list[str]:
    args = ["tasks", "mine", "--json", "--test-command", PYTEST, "--per-test-timeout", "5"]
    return args + list(extra) + (["--venv", VENV] if VENV else [])


@pytest.fixture(scope="module")
def mined(tmp_path_factory):
    root = tmp_path_factory.mktemp("knowledge-tasks")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(root / "home"))
        mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
        for key in ("GIT_AUTHOR", "GIT_COMMITTER"):
            mp.setenv(f"{key}_NAME", "A")
            mp.setenv(f"{key}_EMAIL", "a@example.com")
        repo = root / "repo"
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        git(repo, "config", "user.name", "Ada")
        (repo / "calc.py").write_text(CALC)
        (repo / "tests").mkdir()
        (repo / "tests" / "test_calc.py").write_text(TEST_CALC)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "Initial calc")
        base = git(repo, "rev-parse", "HEAD").strip()
        fix_patch = patch_of(repo, {"calc.py": FIXED, "tests/test_calc.py": TEST_SUB})
        ids = {
            "fix": approve_run(repo, "run-fix", ISSUE, fix_patch),
            "no_test": approve_run(
                repo, "run-notest", "sub is wrong", patch_of(repo, {"calc.py": FIXED})
            ),
            "passes": approve_run(
                repo,
                "run-passes",
                "add needs a test",
                patch_of(
                    repo,
                    {
                        "calc.py": CALC + "\n\ndef neg(a):\n    return -a\n",
                        "tests/test_calc.py": TEST_CALC
                        + "\n\ndef test_add_zero():\n    assert calc.add(0, 0) == 0\n",
                    },
                ),
            ),
            "retracted": approve_run(repo, "run-retracted", "sub is wrong (old)", fix_patch),
            "superseded": approve_run(repo, "run-superseded", "sub is wrong (older)", fix_patch),
        }
        invoke(repo, "knowledge", "retract", ids["retracted"], "--reason", "wrong fix")
        invoke(repo, "knowledge", "supersede", ids["superseded"], ids["fix"])
        without = ok_json(invoke(repo, *mine_args("--no-knowledge")))
        first = ok_json(invoke(repo, *mine_args()))
        second = ok_json(invoke(repo, *mine_args()))
        yield {
            "repo": repo,
            "base": base,
            "ids": ids,
            "reports": (without, first, second),
            "fix_patch": fix_patch,
        }


def _store(mined) -> TaskStore:
    return TaskStore(mined["repo"] / ".evoagent" / "tasks")


def test_no_knowledge_skips_approved_fixes(mined):
    without = mined["reports"][0]
    assert without["knowledge"] == {"examined": 0, "already_decided": 0, "skipped": 0}
    assert without["candidates"] == 0 and without["reasons"] == {"root commit": 1}


def test_an_approved_fix_with_a_failing_test_becomes_a_task(mined):
    (task,) = _store(mined).tasks()
    record = mined["ids"]["fix"]
    assert task.source == "knowledge" and task.knowledge_id == record
    assert task.id == f"repo-knowledge-{record}"
    assert task.commit == f"knowledge:{record}"
    assert task.base_commit == mined["base"]
    assert task.fail_to_pass == ["tests/test_calc.py::test_sub"]
    assert task.pass_to_pass == ["tests/test_calc.py::test_add"]
    assert task.diff_tests == ["tests/test_calc.py::test_sub"]
    assert task.fail_lines == {"tests/test_calc.py::test_sub": "assert -2 == 2"}
    # The whole issue the person asked about, never the solution or the root cause.
    assert task.problem_statement == ISSUE and task.statement_sources == ["run issue"]
    assert "operands" not in task.problem_statement
    assert "diff --git a/calc.py" in task.patch and "tests/" not in task.patch
    assert task.test_patch.startswith("diff --git a/tests/test_calc.py")
    assert task.patch + task.test_patch == mined["fix_patch"]


def test_rejects_keep_their_reasons(mined):
    ids = mined["ids"]
    rejects = {r.commit: r for r in _store(mined).rejects()}
    assert rejects[f"knowledge:{ids['no_test']}"].reason == "no test change"
    assert rejects[f"knowledge:{ids['no_test']}"].detail == "calc.py"
    assert rejects[f"knowledge:{ids['no_test']}"].stage == "filter"
    passes = rejects[f"knowledge:{ids['passes']}"]
    assert (passes.reason, passes.stage) == ("no failing test", "validate")
    assert passes.subject == "add needs a test"


def test_retracted_and_superseded_records_are_skipped(mined):
    ids = mined["ids"]
    first = mined["reports"][1]
    assert first["knowledge"] == {"examined": 3, "already_decided": 0, "skipped": 2}
    decided = _store(mined).decided()
    assert f"knowledge:{ids['retracted']}" not in decided
    assert f"knowledge:{ids['superseded']}" not in decided
    assert first["candidates"] == 2 and first["tasks"] == 1


def test_a_second_mine_validates_nothing_again(mined):
    second = mined["reports"][2]
    assert second["knowledge"] == {"examined": 3, "already_decided": 3, "skipped": 2}
    assert second["candidates"] == 0 and second["tasks"] == 0 and second["rejected"] == 0
    assert len(_store(mined).tasks()) == 1 and len(_store(mined).rejects()) == 3


def test_a_cut_diff_is_taken_whole_from_its_run_only_when_it_matches(tmp_path):
    big = "diff --git a/x.py b/x.py\n" + "".join(f"+line {n}\n" for n in range(3000))
    record = Knowledge("i", "s", bound_diff(big), ["x.py"], "me", "run-1", "b" * 40)
    runs = tmp_path / "runs"
    (runs / "run-1").mkdir(parents=True)
    (runs / "run-1" / "patch.diff").write_text(big)
    assert full_patch(record, runs) == big
    (runs / "run-1" / "patch.diff").write_text(big.replace("+line 1\n", "+other\n"))
    assert full_patch(record, runs) is None
    whole = Knowledge("i", "s", "diff --git a/x.py b/x.py\n", ["x.py"], "me", "run-1", "b" * 40)
    assert full_patch(whole, None) == whole.diff


def test_a_record_already_mined_from_history_or_without_its_base_is_no_candidate(git_repo):
    from evoagent.agent.tasks.from_knowledge import to_candidate

    head = git_repo.commit("start", {"calc.py": CALC})
    record = Knowledge("i", "s", "diff", ["calc.py"], "me", "run-1", head, commit_sha="c" * 40)
    mined = to_candidate(git_repo.path, record, None, {"c" * 40: "repo-cccccccccccc"})
    assert (mined.reason, mined.detail) == ("already a history task", "repo-cccccccccccc")
    record.base_sha = "b" * 40
    missing = to_candidate(git_repo.path, record, None, {})
    assert (missing.reason, missing.detail, missing.commit) == (
        "base commit missing",
        "b" * 40,
        f"knowledge:{record.id}",
    )
