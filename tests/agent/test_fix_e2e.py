"""`run_fix` end to end: a real git repo with a real failing pytest test, the real sandbox
(bubblewrap), the kernel's test runs and refinement, driven by the scripted model through real
litellm. Nothing is patched; the genome is configured the way a user would, in agent.toml."""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path

import pytest
from evoagent.agent.fix import FixOptions, run_fix
from evoagent.agent.model import litellm_module
from evoagent.agent.repo_context import RepoContext
from evoagent.agent.scripted_provider import (
    ScriptedReply,
    ScriptedToolCall,
)
from genome_settings import configure_genome

CALC = '''def clamp(value, low, high):
    if value < low:
        return low
    if value > high:
        return low
    return value


def double(x):
    return x * 2
'''
TESTS = '''from calc import clamp, double


def test_inside():
    assert clamp(5, 0, 10) == 5


def test_below():
    assert clamp(-3, 0, 10) == 0


def test_above():
    assert clamp(15, 0, 10) == 10


def test_double():
    assert double(4) == 8
'''
ISSUE = "clamp() returns the lower bound above the upper bound\n\nclamp(15, 0, 10) gives 0."
FAILING = "tests/test_calc.py::test_above"
ALL_TESTS = sorted(f"tests/test_calc.py::test_{n}" for n in ("inside", "below", "above", "double"))
BUGGY = "    if value > high:\n        return low\n"


def call(name: str, **arguments) -> ScriptedReply:
    return ScriptedReply(tool_calls=[ScriptedToolCall(name, arguments)])


def edit(search: str, replace: str, text: str = "") -> ScriptedReply:
    block = {"path": "calc.py", "search": search, "replace": replace}
    return ScriptedReply(text=text, tool_calls=[ScriptedToolCall("edit", {"edits": [block]})])


def finish(summary: str = "done") -> ScriptedReply:
    return call("finish", summary=summary)


@pytest.fixture
def project(git_repo):
    git_repo.commit("Add clamp and double with tests", {
        "calc.py": CALC,
        "tests/test_calc.py": TESTS,
        "pyproject.toml": '[tool.pytest.ini_options]\npythonpath = ["."]\n',
        "README.md": "# calc\n",
    })
    return git_repo




def snapshot(repo: Path) -> dict[str, object]:
    """Every byte of the user's files plus what git says about the tree, index and HEAD."""
    files = {
        p.relative_to(repo).as_posix(): p.read_bytes()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and not {".git", ".evoagent", "__pycache__", ".pytest_cache"} & set(p.relative_to(repo).parts)
    }

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout

    return {
        "files": files,
        "status": git("status", "--porcelain", "--untracked-files=all"),
        "index": git("diff", "--cached"),
        "head": git("rev-parse", "HEAD"),
        "branch": git("symbolic-ref", "HEAD"),
        "refs": git("for-each-ref", "--format=%(refname) %(objectname)"),
    }


def make_user_edits(project) -> None:
    """Uncommitted work the run must neither lose nor include in its patch."""
    project.write("README.md", "# calc\n\nWork in progress, not committed.\n")
    project.write("notes.txt", "untracked notes\n")
    project.write("staged.txt", "staged but not committed\n")
    project.git("add", "staged.txt")


def fix(project, model: str, issue: str = ISSUE):
    return run_fix(RepoContext.open(project.path), FixOptions(issue, model))


def trajectory(outcome) -> list[dict]:
    lines = (outcome.run_dir / "trajectory.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_failing_first_patch_is_refined_from_the_digest_and_the_second_passes(project, script):
    make_user_edits(project)
    before = snapshot(project.path)
    refine_seen: list[list[dict]] = []

    def right_fix_after_reading_the_digest(messages, tools):
        refine_seen.append(copy.deepcopy(messages))
        return edit("        return high - 1\n", "        return high\n", text="Off by one.")

    model = script([
        call("read", path="calc.py"),
        call("run", command="echo probing", timeout=30),
        edit(BUGGY, "    if value > high:\n        return high - 1\n", text="Return the bound."),
        finish("first try"),
        right_fix_after_reading_the_digest,
        finish("clamp returns high above the range"),
    ])

    outcome = fix(project, model)

    assert (outcome.status, outcome.exit_code) == ("fixed", 0)
    refine = refine_seen[0][-1]
    assert refine["role"] == "user"
    assert "refinement 1 of 2" in refine["content"]
    assert f"FAILED {FAILING}" in refine["content"]
    assert "assert 9 == 10" in refine["content"]
    # test_above failed before the change too: not new, but shown since it fails differently
    assert f"FAILED {FAILING} (failed before your change too, now differently)" in refine["content"]
    assert "+        return high - 1" in refine["content"]  # the diff of the failed attempt

    report = json.loads((outcome.run_dir / "report.json").read_text())
    assert report == outcome.report
    assert (report["status"], report["attempts"], report["best_attempt"]) == ("fixed", 2, 2)
    assert report["summary"] == "clamp returns high above the range"
    assert report["model"] == model and report["issue"] == ISSUE
    assert report["tests"]["before"]["failed"] == [FAILING]
    assert sorted(report["tests"]["before"]["passed"]) == sorted(set(ALL_TESTS) - {FAILING})
    assert sorted(report["tests"]["after"]["passed"]) == ALL_TESTS
    assert report["tests"]["after"]["failed"] == report["tests"]["after"]["errors"] == []
    assert report["tokens"]["prompt"] > 0 and report["tokens"]["completion"] > 0
    assert (report["cost"], report["cost_usd"]) == ("unknown", None)
    assert 0 < report["seconds"] < 120
    assert report["steps"] == 6 and report["budget"] is None

    patch = (outcome.run_dir / "patch.diff").read_text()
    assert "-        return low\n+        return high\n" in patch
    assert "high - 1" not in patch
    assert re.findall(r"(?m)^diff --git .*", patch) == ["diff --git a/calc.py b/calc.py"]

    events = trajectory(outcome)
    # Setup phases, each one line for a front end: none of them is silent.
    assert [e["name"] for e in events if e["type"] == "phase"] == [
        "model_check", "workspace", "locating", "baseline_tests", "model_call", "refining"]
    # (live command output is streamed between a call and its result: its own tests)
    types = [e["type"] for e in events if e["type"] not in ("phase", "command_output")]
    collapsed = [t for i, t in enumerate(types) if i == 0 or t != types[i - 1]]
    tool_round = ["tool_call", "tool_result"]
    # Every model call is followed by the session's running cost.
    cost = ["cost_update"]
    assert collapsed == [
        "session_started", "test_command",               # kernel: which tests it runs
        *cost, *tool_round,                                   # read
        *cost, "tool_call", "command_run", "tool_result",     # run, in the sandbox
        "message_delta", *cost, "message", *tool_round,       # wrong edit
        *cost, *tool_round,                                   # finish
        "diff_proposed", "test_result",                       # kernel: attempt 1 fails
        "message_delta", *cost, "message", *tool_round,       # right edit
        *cost, *tool_round,                                   # finish
        "diff_proposed", "test_result",                       # kernel: attempt 2 passes
        "cost_update", "finished",
    ]
    events = trajectory(outcome)
    assert events[-1] == {**events[-1], "status": "fixed", "exit_code": 0}
    assert [(e["attempt"], e["failing"]) for e in events if e["type"] == "test_result"] == [
        (1, [FAILING]), (2, []),
    ]

    assert snapshot(project.path) == before
    assert not list((project.path / ".evoagent" / "sandboxes").glob("*/"))


def test_a_run_that_never_passes_keeps_the_attempt_that_broke_the_least(project, script):
    configure_genome(project.path, refine_attempts=1)
    model = script([
        # attempt 1: a change that breaks nothing new (test_above still fails)
        edit(BUGGY, "    if value > high:\n        return max(low, 0)\n"),
        finish("attempt one"),
        # attempt 2: still failing, and now test_double, which passed before, fails too
        ScriptedReply(tool_calls=[ScriptedToolCall("edit", {"edits": [
            {"path": "calc.py", "search": "return x * 2", "replace": "return x * 3"}]})]),
        finish("attempt two"),
    ])

    outcome = fix(project, model)

    assert (outcome.status, outcome.exit_code) == ("not_fixed", 1)
    report = outcome.report
    assert (report["attempts"], report["best_attempt"]) == (2, 1)
    assert report["summary"] == "attempt one"
    assert report["tests"]["after"]["failed"] == [FAILING]
    patch = (outcome.run_dir / "patch.diff").read_text()
    assert "+        return max(low, 0)\n" in patch
    assert "x * 3" not in patch
    failing = [e["failing"] for e in trajectory(outcome) if e["type"] == "test_result"]
    assert failing == [[FAILING], sorted([FAILING, "tests/test_calc.py::test_double"])]


def test_running_out_of_steps_exits_4_with_the_reason(project, script):
    configure_genome(project.path, max_steps=1, refine_attempts=0)
    model = script([call("read", path="calc.py")])

    outcome = fix(project, model)

    assert (outcome.status, outcome.exit_code) == ("budget_exhausted", 4)
    assert "steps" in outcome.report["budget"]
    assert outcome.report["attempts"] == 1


def test_running_out_of_time_stops_before_the_first_model_call(project, script):
    configure_genome(project.path, max_seconds=0.001)
    model = script([finish("never sent")])

    outcome = fix(project, model)

    assert (outcome.status, outcome.exit_code) == ("budget_exhausted", 4)
    assert outcome.report["budget"].startswith("budget exhausted: ")
    assert "elapsed" in outcome.report["budget"]
    assert outcome.report["steps"] == 0
    assert (outcome.run_dir / "patch.diff").read_text() == ""


def test_spending_the_dollar_budget_stops_the_next_model_call(project, script):
    model = script([call("read", path="calc.py"), finish("never sent")])
    litellm = litellm_module()
    litellm.register_model({model: {
        "input_cost_per_token": 0.01, "output_cost_per_token": 0.01,
        "litellm_provider": "scripted", "mode": "chat",
    }})
    configure_genome(project.path, max_cost_usd=0.01)
    try:
        outcome = fix(project, model)
    finally:
        litellm.model_cost.pop(model, None)

    assert (outcome.status, outcome.exit_code) == ("budget_exhausted", 4)
    assert outcome.report["budget"].startswith("budget exhausted: $")
    assert outcome.report["steps"] == 1  # the second call was refused
    assert outcome.report["cost_usd"] > 0.01
