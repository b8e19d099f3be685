"""What a new user types first, through the real CLI: a bad `--store`, an issue path that does
not exist, an unknown genome ref, a demo without pytest, and a Python repository with tests
but no pytest configuration. Bad input is one line and exit 2; a missing prerequisite is one
line saying what is missing; a config-less Python repository gets its tests run."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

import pytest
from cli_helpers import invoke, run_main
from evoagent.agent.model_select import OLLAMA_TAGS_URL
from evoagent.agent.scripted_provider import ScriptedReply, ScriptedToolCall

CALC = "def add(a, b):\n    return a - b\n"
TEST_CALC = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"


def one_line_error(err: str) -> str:
    """The single `evoagent: ...` line of stderr (fails on a traceback or more lines)."""
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("evoagent: "), err
    return lines[0]


@pytest.fixture
def repo(git_repo):
    git_repo.commit("Start", {"README.md": "# notes\n"})
    return git_repo


def nothing_on_the_ollama_port() -> None:
    host, port = OLLAMA_TAGS_URL.split("//")[1].split("/")[0].split(":")
    with socket.socket() as probe:
        if probe.connect_ex((host, int(port))) == 0:
            pytest.skip("something listens on the Ollama port: a model would be found")


# -- --store ----------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["mine", "recall"])
@pytest.mark.parametrize(
    "store, reason",
    [
        ("/proc/nope", "cannot create memory store /proc/nope: "),
        ("README.md", "is a file, not a directory"),
        ("README.md/memory", "cannot create memory store "),
    ],
    ids=["unwritable-parent", "a-file", "under-a-file"],
)
def test_a_store_that_cannot_be_a_directory_is_one_line_and_exit_2(
    repo, monkeypatch, capsys, command, store, reason
):
    args = ["mine"] if command == "mine" else ["recall", "anything"]
    code, out, err = run_main(repo.path, monkeypatch, capsys, *args, "--store", store)
    line = one_line_error(err)
    assert (code, out) == (2, "")
    assert reason in line
    assert (repo.path / "README.md").read_text() == "# notes\n"


def test_a_store_directory_that_cannot_be_written_is_one_line_and_exit_2(repo, monkeypatch,
                                                                       capsys):
    code, out, err = run_main(repo.path, monkeypatch, capsys, "mine", "--store", "/proc")
    assert (code, out) == (2, "")
    assert one_line_error(err).startswith("evoagent: cannot write to memory store /proc: ")


def test_a_store_whose_parents_do_not_exist_yet_is_made(repo, tmp_path):
    store = tmp_path / "not-yet" / "made" / "store"
    result = invoke(repo.path, "mine", "--store", str(store), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["stored"] == 1


# -- fix ISSUE --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "issue",
    ["/nonexistent/issue.md", "issue.md", "notes.txt", "event.json", "docs/bug-42"],
)
def test_an_issue_file_that_does_not_exist_is_one_line_and_exit_2(repo, monkeypatch, capsys,
                                                                  issue):
    code, out, err = run_main(repo.path, monkeypatch, capsys, "fix", issue)
    assert (code, out) == (2, "")
    assert one_line_error(err) == f"evoagent: issue file not found: {issue}"
    assert not (repo.path / ".evoagent" / "runs").exists()


def test_an_issue_path_that_is_a_directory_is_one_line_and_exit_2(repo, monkeypatch, capsys):
    (repo.path / "docs").mkdir()
    code, out, err = run_main(repo.path, monkeypatch, capsys, "fix", "docs/")
    assert (code, out) == (2, "")
    assert "docs/" in one_line_error(err) and "not a file" in err


@pytest.mark.parametrize(
    "issue",
    ["cli/run.py crashes on empty input", "see docs/api.md", "https://example.com/o/r/issues/7"],
)
def test_free_text_that_mentions_a_path_is_still_the_issue(git_repo, monkeypatch, capsys, issue):
    # A repository without commits stops the run right after the issue was accepted.
    code, out, err = run_main(git_repo.path, monkeypatch, capsys, "fix", issue)
    assert (code, out) == (2, "")
    assert one_line_error(err) == (
        "evoagent: this repository has no commits yet: nothing to fix against")


# -- bench --variant --------------------------------------------------------------------


def test_bench_reports_an_unknown_variant_before_a_missing_model(repo, monkeypatch, capsys):
    nothing_on_the_ollama_port()
    code, out, err = run_main(repo.path, monkeypatch, capsys, "bench", "--variant", "nosuchref")
    assert (code, out) == (2, "")
    assert one_line_error(err).startswith("evoagent: no genome version 'nosuchref'")


# -- demo without pytest ----------------------------------------------------------------


@pytest.fixture
def python_without_pytest(monkeypatch):
    """A `python` first on PATH that cannot import pytest (its site-packages are off), in a
    directory every user can read: the sandbox runs commands as nobody when root."""
    where = Path(tempfile.mkdtemp(prefix="evoagent-nopytest-"))
    os.chmod(where, 0o755)
    shim = where / "python"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{where}:{os.environ['PATH']}")
    yield shim
    shutil.rmtree(where, ignore_errors=True)


def test_demo_without_pytest_says_so_in_one_line(python_without_pytest, tmp_path, monkeypatch,
                                                 capsys):
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the demo repository lands here
    code, out, err = run_main(tmp_path, monkeypatch, capsys, "demo")
    line = [text for text in err.splitlines() if text.startswith("evoagent: ")]
    assert code == 3, err
    assert "Traceback" not in err and len(line) == 1, err
    # Named as the interpreter behind the shim, the one to install pytest into.
    assert f"pytest is not installed for {sys.executable}," in line[0]
    assert "script exhausted" not in err
    assert not list(tmp_path.glob("evoagent-demo-*")), "the demo repository was left behind"


# -- a Python repository with tests and no configuration ------------------------------


@pytest.fixture
def configless(git_repo):
    git_repo.commit("Add add()", {"calc.py": CALC, "test_calc.py": TEST_CALC})
    return git_repo


def fixing_script(script) -> str:
    edit = {"edits": [{"path": "calc.py", "search": "a - b", "replace": "a + b"}]}
    return script([ScriptedReply(tool_calls=[ScriptedToolCall("edit", edit)]),
                   ScriptedReply(tool_calls=[ScriptedToolCall("finish", {"summary": "adds"})])])


def test_fix_runs_the_tests_of_a_python_repo_without_configuration(configless, script):
    result = invoke(configless.path, "fix", "--model", fixing_script(script),
                    "--output-format", "json", "add() subtracts")
    report = json.loads(result.stdout)
    assert (result.exit_code, report["status"]) == (0, "fixed"), report
    tests = report["tests"]
    assert any("test_add" in t for t in tests["before"]["failed"]), tests
    assert any("test_add" in t for t in tests["after"]["passed"]), tests


def test_fix_says_which_test_command_it_uses_and_why(configless, script):
    result = invoke(configless.path, "fix", "--model", fixing_script(script), "add() subtracts")
    assert "tests: python -m pytest (detected from test_calc.py)\n" in result.stderr
