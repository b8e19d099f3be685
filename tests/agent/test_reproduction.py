"""When no test covers the issue, a fix must bring a test that fails without it and passes
with it; the kernel checks this itself and sends the agent back when it is missing."""

from __future__ import annotations

from evoagent.agent.fix import FixOptions, run_fix
from evoagent.agent.repo_context import RepoContext
from evoagent.agent.scripted_provider import ScriptedReply, ScriptedToolCall
from genome_settings import configure_genome

CALC = "def double(x):\n    return x + x + 1\n"
TESTS = "from calc import double\n\n\ndef test_zero_is_fine():\n    assert double(0) == 1\n"
NEW_TEST = "\n\ndef test_double_four():\n    assert double(4) == 8\n"


def _edit(path: str, search: str, replace: str) -> ScriptedReply:
    block = {"path": path, "search": search, "replace": replace}
    return ScriptedReply(tool_calls=[ScriptedToolCall("edit", {"edits": [block]})])


def _finish() -> ScriptedReply:
    return ScriptedReply(tool_calls=[ScriptedToolCall("finish", {"summary": "done"})])


def _project(git_repo):
    # Every existing test passes (the issue has no test), so the fix must reproduce it.
    git_repo.commit("calc", {
        "calc.py": CALC,
        "tests/test_calc.py": TESTS.replace("== 1", "== double(0)"),
        "pyproject.toml": '[tool.pytest.ini_options]\npythonpath = ["."]\n',
    })
    return git_repo


def test_a_fix_without_a_reproducing_test_is_sent_back(git_repo, script):
    repo = _project(git_repo)
    seen: list[str] = []

    def add_test(messages, tools):
        seen.append(messages[-1]["content"])
        return _edit("tests/test_calc.py", "== double(0)\n", "== double(0)\n" + NEW_TEST)

    model = script([
        _edit("calc.py", "x + x + 1", "x + x"),
        _finish(),
        add_test,
        _finish(),
    ])
    configure_genome(repo.path, refine_attempts=1)
    outcome = run_fix(RepoContext.open(repo.path), FixOptions("double(4) is 9", model))
    assert "no test reproduces the issue" in seen[0]
    assert "still fail" not in seen[0]  # every test passed: the old message said otherwise
    assert "Your change is not proven yet" in seen[0]
    assert outcome.status == "fixed"
    assert outcome.report["attempts"] == 2
    reproduction = outcome.report["tests"]["reproduction"]
    assert reproduction["tests"] == ["tests/test_calc.py"]
    assert reproduction["failed_without_fix"] and reproduction["passed_with_fix"]


def test_without_a_reproducing_test_the_run_is_not_fixed(git_repo, script):
    repo = _project(git_repo)
    model = script([_edit("calc.py", "x + x + 1", "x + x"), _finish(), _finish()])
    configure_genome(repo.path, refine_attempts=1)
    outcome = run_fix(RepoContext.open(repo.path), FixOptions("double(4) is 9", model))
    assert outcome.status == "not_fixed"
    assert outcome.exit_code == 1
    assert "x + x" in outcome.patch


def test_reproduction_can_be_switched_off_in_the_genome(git_repo, script):
    repo = _project(git_repo)
    model = script([_edit("calc.py", "x + x + 1", "x + x"), _finish()])
    configure_genome(repo.path, refine_attempts=1, require_reproduction="false")
    outcome = run_fix(RepoContext.open(repo.path), FixOptions("double(4) is 9", model))
    assert outcome.status == "fixed"
