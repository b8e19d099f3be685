"""Verdicts on patches shaped like real projects' fixes (found by bench/bench_gold.py on
flask and click): the gold patch must end `fixed`.

- A test file the fix edits also holds a test that fails before and after for a reason
  outside the change (flask's `test_bad_environ_raises_bad_request` with a newer Werkzeug):
  it is pre-existing, not the fix's failure.
- The fix adds a typing sample under tests/ that pytest cannot import (click's
  `tests/typing/typing_edit.py`): it is not one of the patch's tests.
"""

from __future__ import annotations

from evoagent.agent.fix import FixOptions, run_fix
from evoagent.agent.repo_context import RepoContext
from evoagent.agent.scripted_provider import ScriptedReply, ScriptedToolCall

CALC = "def clamp(value, low, high):\n    if value > high:\n        return low\n    return max(value, low)\n"
TESTS = '''from calc import clamp


def test_inside():
    assert clamp(5, 0, 10) == 5


def test_environment():
    import a_library_this_machine_lacks  # noqa: F401  (fails before and after any fix)
'''
NEW_TEST = '''

def test_above():
    assert clamp(15, 0, 10) == 10
'''
TYPING_SAMPLE = "import typing_extensions_that_is_missing\n\nreveal_type = typing_extensions_that_is_missing\n"


def call(name: str, **arguments) -> ScriptedReply:
    return ScriptedReply(tool_calls=[ScriptedToolCall(name, arguments)])


def test_a_gold_patch_beside_a_preexisting_failure_and_a_typing_sample_is_fixed(git_repo, script):
    git_repo.commit("clamp", {
        "calc.py": CALC, "tests/test_calc.py": TESTS,
        "pyproject.toml": '[tool.pytest.ini_options]\npythonpath = ["."]\n',
    })
    model = script([
        call("edit", edits=[
            {"path": "calc.py", "search": "        return low\n", "replace": "        return high\n"},
            {"path": "tests/test_calc.py", "search": "    assert clamp(5, 0, 10) == 5\n",
             "replace": "    assert clamp(5, 0, 10) == 5\n" + NEW_TEST.rstrip("\n") + "\n"},
        ]),
        call("write", path="tests/typing/typing_clamp.py", content=TYPING_SAMPLE),
        call("finish", summary="clamp returns high above the range"),
    ])
    outcome = run_fix(RepoContext.open(git_repo.path), FixOptions("clamp(15, 0, 10) gives 0", model))

    tests = outcome.report["tests"]
    assert "tests/test_calc.py::test_environment" in tests["before"]["failed"] + tests["before"]["errors"]
    assert "tests/test_calc.py::test_environment" in tests["after"]["failed"] + tests["after"]["errors"]
    assert tests["reproduction"]["tests"] == ["tests/test_calc.py"]  # not the typing sample
    assert tests["reproduction"]["failed_without_fix"] and tests["reproduction"]["passed_with_fix"]
    assert outcome.status == "fixed" and outcome.report["attempts"] == 1
