"""What a run ends with, and what the model is told on the way, when the repository is not
the tidy case: tests that cannot run at all, failures that were there before the change, an
attempt that changes nothing, a model that fails halfway.

Real git repositories in tmp dirs, the real sandbox and pytest, `evoagent fix` through the CLI
where the output matters; the model is the scripted provider."""

from __future__ import annotations

import copy
import json
import shutil
import sys
from pathlib import Path

import pytest
from cli_helpers import run_main
from evoagent.agent.fix import FixOptions, run_fix
from evoagent.agent.model import litellm_module
from evoagent.agent.repo_context import RepoContext
from evoagent.agent.scripted_provider import ScriptedReply, ScriptedToolCall
from evoagent.agent.session import Session
from evoagent.sandbox.bwrap import BwrapRunner
from evoagent.sandbox.testdetect import TestCommand
from evoagent.sandbox.testrun import run_tests
from evoagent.sandbox.workspace import Workspace
from evoagent.tui.app import tests_lines as review_header
from genome_settings import configure_genome
from scratch_pytest import PYTEST_ARGV

PYPROJECT = '[tool.pytest.ini_options]\npythonpath = ["."]\n'
CLAMP = """def clamp(value, low, high):
    if value < low:
        return low
    if value > high:
        return low
    return value
"""
CLAMP_TESTS = """from calc import clamp


def test_inside():
    assert clamp(5, 0, 10) == 5


def test_above():
    assert clamp(15, 0, 10) == 10
"""
CLAMP_ISSUE = "clamp() returns the lower bound above the upper bound"
DOUBLE = "def double(x):\n    return x + x + 1\n"
DOUBLE_TESTS = "from calc import double\n\n\ndef test_zero():\n    assert double(0) == double(0)\n"
DOUBLE_ISSUE = "double(4) is 9, not 8"
NEW_TEST = "\n\ndef test_double_four():\n    assert double(4) == 8\n"
NETWORK_TEST = 'def test_fetch():\n    assert False, "needs the network"\n'
STILL_FAIL = "still fail"
"""The old refinement message ("The tests still fail after your change"): wrong in every
situation below."""


def call(name: str, **arguments) -> ScriptedReply:
    return ScriptedReply(tool_calls=[ScriptedToolCall(name, arguments)])


def edit(path: str, search: str, replace: str) -> ScriptedReply:
    return call("edit", edits=[{"path": path, "search": search, "replace": replace}])


def finish(summary: str = "done") -> ScriptedReply:
    return call("finish", summary=summary)


def recording(seen: list[str], reply: ScriptedReply):
    """A step that keeps the last message the model was sent (the refinement), then replies."""

    def step(messages, tools):
        seen.append(copy.deepcopy(messages)[-1]["content"])
        return reply

    return step


def events(outcome_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (outcome_dir / "trajectory.jsonl").read_text().splitlines()]


def only_run(repo) -> Path:
    [run] = (repo.path / ".evoagent" / "runs").iterdir()
    return run


@pytest.fixture
def clamp_repo(git_repo):
    """test_above fails before any change: the issue is covered by a test."""
    git_repo.commit("clamp", {"calc.py": CLAMP, "tests/test_calc.py": CLAMP_TESTS,
                              "pyproject.toml": PYPROJECT})
    return git_repo


@pytest.fixture
def preexisting_repo(git_repo):
    """The issue has no test, and an unrelated test fails before any change (a test that
    needs the network in a sandbox without one: flask's `test_async_view` without asgiref)."""
    git_repo.commit("double", {"calc.py": DOUBLE, "tests/test_calc.py": DOUBLE_TESTS,
                               "tests/test_network.py": NETWORK_TEST, "pyproject.toml": PYPROJECT})
    return git_repo


@pytest.fixture
def uncollectable_repo(git_repo):
    """Every test run fails to collect: the conftest imports a package the environment lacks
    (flask's tests with the editable install hidden: `No module named 'flask'`)."""
    git_repo.commit("clamp", {
        "calc.py": CLAMP, "tests/test_calc.py": CLAMP_TESTS, "pyproject.toml": PYPROJECT,
        "tests/conftest.py": "import missing_dependency  # noqa: F401\n",
    })
    return git_repo


# -- pre-existing failures ------------------------------------------------------------------


def test_a_pre_existing_failure_is_marked_not_blamed_and_a_reproducing_test_is_asked_for(
    preexisting_repo, script
):
    seen: list[str] = []
    model = script([
        edit("calc.py", "x + x + 1", "x + x"), finish("fixed double"),
        recording(seen, edit("tests/test_calc.py", "== double(0)\n", "== double(0)\n" + NEW_TEST)),
        finish("fixed double, with a test"),
    ])

    outcome = run_fix(RepoContext.open(preexisting_repo.path), FixOptions(DOUBLE_ISSUE, model))

    [refine] = seen
    assert STILL_FAIL not in refine
    assert "tests/test_network.py::test_fetch" in refine
    assert "pre-existing" in refine
    assert "FAILED tests/test_network.py::test_fetch" not in refine  # not the attempt's failure
    assert "fails without your fix and passes with it" in refine
    assert outcome.status == "fixed", outcome.report
    assert outcome.report["tests"]["after"]["failed"] == ["tests/test_network.py::test_fetch"]
    reproduction = outcome.report["tests"]["reproduction"]
    assert reproduction["failed_without_fix"] and reproduction["passed_with_fix"]


def test_without_reproduction_a_pre_existing_failure_is_still_not_blamed(preexisting_repo, script):
    configure_genome(preexisting_repo.path, refine_attempts=1, require_reproduction="false")
    seen: list[str] = []
    model = script([edit("calc.py", "x + x + 1", "x + x"), finish("fixed double"),
                    recording(seen, finish("nothing more"))])

    outcome = run_fix(RepoContext.open(preexisting_repo.path), FixOptions(DOUBLE_ISSUE, model))

    [refine] = seen
    assert STILL_FAIL not in refine
    assert "pre-existing" in refine and "tests/test_network.py::test_fetch" in refine
    assert "FAILED tests/test_network.py::test_fetch" not in refine
    assert (outcome.status, outcome.exit_code) == ("not_fixed", 1)


# -- an attempt without a change --------------------------------------------------------------


def test_finishing_without_a_change_is_called_that(git_repo, script):
    # Every test passes before and after: the old message said they "still fail".
    git_repo.commit("double", {"calc.py": DOUBLE, "tests/test_calc.py": DOUBLE_TESTS,
                               "pyproject.toml": PYPROJECT})
    configure_genome(git_repo.path, refine_attempts=1)
    seen: list[str] = []
    model = script([finish("nothing to do"), recording(seen, finish("still nothing"))])

    outcome = run_fix(RepoContext.open(git_repo.path), FixOptions(DOUBLE_ISSUE, model))

    [refine] = seen
    assert "You finished without a change" in refine
    assert STILL_FAIL not in refine
    assert "fails without your fix and passes with it" in refine  # require_reproduction is on
    assert (outcome.status, outcome.exit_code) == ("not_fixed", 1)
    assert outcome.patch == ""


# -- tests that cannot run ------------------------------------------------------------------


def test_tests_that_cannot_be_collected_end_tests_did_not_run_in_json(
    uncollectable_repo, script, monkeypatch, capsys
):
    seen: list[str] = []
    model = script([edit("calc.py", "        return low\n    return value",
                         "        return high\n    return value"),
                    finish("return high"), recording(seen, finish("never asked"))])

    code, out, err = run_main(uncollectable_repo.path, monkeypatch, capsys, "fix", "--model", model,
                              "--output-format", "json", CLAMP_ISSUE)

    assert code == 5, err
    report = json.loads(out)
    assert report["status"] == "tests_did_not_run"
    reason = report["tests"]["not_run"]
    assert "ModuleNotFoundError: No module named 'missing_dependency'" in reason
    assert "\n" not in reason and len(reason) < 400
    assert report["tests"]["before"]["not_run"] and report["tests"]["after"]["not_run"]
    assert seen == []  # never sent back as if its change had failed
    assert "+        return high" in (only_run(uncollectable_repo) / "patch.diff").read_text()
    [result] = [e for e in events(only_run(uncollectable_repo)) if e["type"] == "test_result"]
    assert result["digest"].startswith("tests could not run: ")
    header = review_header(report["tests"])
    assert any("could not run" in line and "missing_dependency" in line for line in header)
    assert not any("0 passed, 0 failed, 0 errors" in line for line in header)


def test_tests_that_cannot_be_collected_say_so_in_one_text_line(
    uncollectable_repo, script, monkeypatch, capsys
):
    model = script([edit("calc.py", "        return low\n    return value",
                         "        return high\n    return value"), finish("return high")])

    code, out, err = run_main(uncollectable_repo.path, monkeypatch, capsys, "fix", "--model", model,
                              CLAMP_ISSUE)

    assert code == 5
    assert out.startswith("tests_did_not_run: run ")
    [line] = [ln for ln in out.splitlines() if ln.startswith("tests could not run: ")]
    assert "ModuleNotFoundError: No module named 'missing_dependency'" in line


def test_an_attempt_that_breaks_the_test_run_is_told_so_and_never_wins(clamp_repo, script):
    configure_genome(clamp_repo.path, refine_attempts=1)
    seen: list[str] = []
    model = script([
        edit("calc.py", "        return low\n    return value", "        return low +\n    return value"),
        finish("broken syntax"),
        recording(seen, edit("calc.py", "        return low +\n    return value",
                             "        return high - 1\n    return value")),
        finish("off by one"),
    ])

    outcome = run_fix(RepoContext.open(clamp_repo.path), FixOptions(CLAMP_ISSUE, model))

    [refine] = seen
    assert "could not run" in refine and "SyntaxError" in refine
    assert outcome.status == "not_fixed"
    assert outcome.report["best_attempt"] == 2  # it ran; the attempt with no outcomes did not win
    assert "high - 1" in outcome.patch and "low +" not in outcome.patch


needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")


@pytest.fixture
def sandbox(git_repo):
    def make(files: dict[str, str]):
        git_repo.commit("tests", {"pyproject.toml": PYPROJECT, **files})
        ws = Workspace.create(git_repo.path, git_repo.path / ".evoagent" / "sandboxes")
        venv = Path(sys.prefix) if sys.prefix != sys.base_prefix else None
        return ws, BwrapRunner(ws.sandbox_config(venv=venv))

    return make


PYTEST = TestCommand(PYTEST_ARGV, "pytest", "test")


@needs_bwrap
@pytest.mark.parametrize("files, command, expected", [
    ({"tests/test_a.py": "def test_a():\n    pass\n"},
     TestCommand(("/nonexistent/python3", "-m", "pytest"), "pytest", "config"),
     ["could not start", "No such file"]),
    ({"tests/test_a.py": "def test_a():\n    pass\n"},
     TestCommand((sys.executable, "-I", "-S", "-m", "pytest"), "pytest", "config"),
     ["No module named pytest"]),
    ({"tests/test_a.py": "import pytest\n\n\n@pytest.mark.skip\ndef test_a():\n    pass\n"},
     PYTEST, ["no test ran"]),
    ({"tests/helpers.py": "X = 1\n"}, PYTEST, ["no tests"]),
    ({"tests/test_a.py": "import missing_dependency\n\n\ndef test_a():\n    pass\n"},
     PYTEST, ["ModuleNotFoundError: No module named 'missing_dependency'"]),
])
def test_a_run_that_executed_no_test_says_why_in_one_line(sandbox, files, command, expected):
    ws, runner = sandbox(files)

    run = run_tests(runner, ws.path, command, timeout=60)

    assert run.not_run and "\n" not in run.not_run, run.output
    for words in expected:
        assert words in run.not_run, (run.not_run, run.output)
    assert not run.ok
    assert run.digest().startswith(f"tests could not run: {run.not_run}")


@needs_bwrap
def test_a_run_with_outcomes_ran_even_when_a_file_fails_to_collect(sandbox):
    ws, runner = sandbox({"tests/test_a.py": "def test_a():\n    assert False\n",
                          "tests/test_b.py": "import missing_dependency\n"})

    run = run_tests(runner, ws.path, PYTEST, timeout=60)

    assert run.not_run == "", run.output
    assert run.failed == ["tests/test_a.py::test_a"]
    assert run.errors == ["tests/test_b.py::tests.test_b"]  # the file that failed to collect


# -- a model that fails halfway -----------------------------------------------------------------


def test_a_provider_error_during_refinement_keeps_the_best_attempt(clamp_repo, script, monkeypatch,
                                                                    capsys):
    litellm = litellm_module()
    model = script([
        edit("calc.py", "        return low\n    return value", "        return high - 1\n    return value"),
        finish("off by one"),
        litellm.BadRequestError(message="provider down", model="scripted", llm_provider="scripted"),
    ])

    code, out, err = run_main(clamp_repo.path, monkeypatch, capsys, "fix", "--model", model,
                              CLAMP_ISSUE)

    assert code == 3
    last = err.splitlines()[-1]  # after the progress lines
    assert last.startswith(f"evoagent: model {model}: BadRequestError: provider down")
    assert "the best attempt so far (attempt 1)" in last and "patch.diff" in last
    run = only_run(clamp_repo)
    patch = (run / "patch.diff").read_text()
    assert "+        return high - 1" in patch
    report = json.loads((run / "report.json").read_text())
    assert report["status"] == "error" and "provider down" in report["error"]
    assert "attempt 2" in report["stopped"] and "provider down" in report["stopped"]
    assert (report["attempts"], report["best_attempt"]) == (1, 1)
    assert report["tests"]["after"]["failed"] == ["tests/test_calc.py::test_above"]
    [listed] = Session.open(RepoContext.open(clamp_repo.path)).list_runs()
    assert (listed.status, listed.patch_path) == ("error", run / "patch.diff")  # the runs screen


# -- genomes written before `situation` -----------------------------------------------------------

OLD_REFINE = """{#- Sent by the kernel after `finish` when the tests still fail. -#}
The tests still fail after your change (refinement {{ attempt }} of {{ max_attempts }}).

<test_digest>
{{ digest }}
</test_digest>
{%- if diff_since_last %}
{{ diff_since_last }}
{%- endif %}
"""


def test_a_genome_whose_refine_prompt_predates_situation_still_loads_and_runs(git_repo, script):
    git_repo.commit("double", {"calc.py": DOUBLE, "tests/test_calc.py": DOUBLE_TESTS,
                               "pyproject.toml": PYPROJECT})
    configure_genome(git_repo.path, refine_attempts=1)
    genome = git_repo.path / ".evoagent" / "agent"
    (genome / "prompts" / "refine.j2").write_text(OLD_REFINE)
    git_repo.git("-C", str(genome), "-c", "user.name=t", "-c", "user.email=t@t",
                 "commit", "-qam", "an older refine prompt")
    seen: list[str] = []
    model = script([finish("nothing to do"), recording(seen, finish("still nothing"))])

    outcome = run_fix(RepoContext.open(git_repo.path), FixOptions(DOUBLE_ISSUE, model))

    [refine] = seen  # the old wording, and the kernel's findings in the digest
    assert refine.startswith("The tests still fail after your change (refinement 1 of 1).")
    assert "fails without your fix and passes with it" in refine
    assert outcome.status == "not_fixed"
