"""`evoagent fix` and `evoagent demo` through the CLI: issue inputs, output formats, --apply,
--commit, exit codes, and Ctrl-C in a real subprocess.

Runs go through click's CliRunner on `cli` (exit codes come from the command's sys.exit);
error paths go through `main()`, the console entry point that turns user errors into one
line. The model is the scripted provider, registered in this process (or, for Ctrl-C, in
the child's launcher)."""

from __future__ import annotations

import copy
import json
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from evoagent.agent.cli import cli, main
from evoagent.agent.model_select import OLLAMA_TAGS_URL
from evoagent.agent.scripted_provider import (
    ScriptedReply,
    ScriptedToolCall,
)

CALC = "def add(a, b):\n    return a - b\n"
FIXED = "def add(a, b):\n    return a + b\n"
TESTS = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
PYPROJECT = '[tool.pytest.ini_options]\npythonpath = ["."]\n'
ISSUE = "add() subtracts"


def finish(summary: str = "done") -> ScriptedReply:
    return ScriptedReply(tool_calls=[ScriptedToolCall("finish", {"summary": summary})])


def edit(search: str, replace: str) -> ScriptedReply:
    block = {"path": "calc.py", "search": search, "replace": replace}
    return ScriptedReply(tool_calls=[ScriptedToolCall("edit", {"edits": [block]})])


RIGHT = [edit("a - b", "a + b"), finish("add adds")]


@pytest.fixture
def project(git_repo):
    """A repo whose one test fails until add() is fixed."""
    git_repo.commit("Add add()", {
        "calc.py": CALC, "tests/test_calc.py": TESTS, "pyproject.toml": PYPROJECT,
        "README.md": "# calc\n",
    })
    return git_repo


@pytest.fixture
def testless(git_repo):
    """A repo with no test command: runs are quick, nothing can be proven (exit 1)."""
    git_repo.commit("Start", {"README.md": "# notes\n"})
    return git_repo




def invoke(repo, monkeypatch, *args: str, input: str | None = None):
    monkeypatch.chdir(repo.path)
    return CliRunner().invoke(cli, ["fix", *args], input=input, catch_exceptions=False)


def run_main(repo, monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.chdir(repo.path)
    monkeypatch.setattr(sys, "argv", ["evoagent", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def tree_state(repo: Path) -> dict[str, object]:
    files = {
        p.relative_to(repo).as_posix(): p.read_bytes()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and not {".git", ".evoagent", "__pycache__"} & set(p.relative_to(repo).parts)
    }

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout

    return {
        "files": files,
        "status": git("status", "--porcelain", "--untracked-files=all"),
        "index": git("diff", "--cached"),
        "branch": git("symbolic-ref", "HEAD"),
        "head": git("rev-parse", "HEAD"),
    }


def recording_finish(seen: list):
    def step(messages, tools):
        seen.append(copy.deepcopy(messages))
        return finish("nothing to do")

    return step


# -- issue inputs -----------------------------------------------------------------------


@pytest.mark.parametrize("how", ["text", "file", "stdin", "github-event"])
def test_the_issue_reaches_the_model_from_every_input(testless, script, monkeypatch, tmp_path, how):
    seen: list = []
    model = script([recording_finish(seen)])
    issue = "Crash on empty input\n\nRunning `notes` with no file raises IndexError."
    args, stdin, expected = [issue], None, issue
    if how == "file":
        path = tmp_path / "issue.md"
        path.write_text(issue + "\n")
        args = [str(path)]
    elif how == "stdin":
        args, stdin = ["-"], issue + "\n"
    elif how == "github-event":
        event = tmp_path / "event.json"
        event.write_text(json.dumps({"action": "opened", "issue": {
            "number": 42, "title": "Crash on empty input",
            "body": "Running `notes` with no file raises IndexError."}}))
        args = ["--github-event", str(event)]
        expected = "Crash on empty input (#42)\n\nRunning `notes` with no file raises IndexError."

    result = invoke(testless, monkeypatch, "--model", model, "--output-format", "json", *args,
                    input=stdin)

    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["issue"] == expected
    assert report["status"] == "not_fixed"
    task = seen[0][1]
    assert task["role"] == "user" and expected in task["content"]


@pytest.mark.parametrize("args, message", [
    ([], "evoagent: fix needs an issue: text, a file path, - for stdin, or --github-event PATH\n"),
    (["   "], "evoagent: the issue text is empty\n"),
])
def test_a_missing_issue_is_one_line_and_exit_2(testless, monkeypatch, capsys, args, message):
    code, out, err = run_main(testless, monkeypatch, capsys, "fix", *args)
    assert (code, out, err) == (2, "", message)
    assert not (testless.path / ".evoagent" / "runs").exists() or not any(
        (testless.path / ".evoagent" / "runs").iterdir()
    )


def test_a_github_event_without_an_issue_is_one_line_and_exit_2(testless, monkeypatch, capsys, tmp_path):
    event = tmp_path / "push.json"
    event.write_text(json.dumps({"ref": "refs/heads/main"}))
    code, out, err = run_main(testless, monkeypatch, capsys, "fix", "--github-event", str(event))
    assert code == 2 and out == ""
    assert err == f"evoagent: {event}: not a GitHub issue event (no issue.title/body)\n"


def test_no_model_available_is_one_line_and_exit_3(testless, monkeypatch, capsys):
    # The Ollama URL is a constant in model_select (no env override), so this test needs
    # nothing listening there; the probe then fails at once with "connection refused".
    host, port = OLLAMA_TAGS_URL.split("//")[1].split("/")[0].split(":")
    with socket.socket() as probe:
        if probe.connect_ex((host, int(port))) == 0:
            pytest.skip("something listens on the Ollama port")
    code, out, err = run_main(testless, monkeypatch, capsys, "fix", ISSUE)
    assert (code, out) == (3, "")
    assert err.startswith("evoagent: no model configured: set ANTHROPIC_API_KEY")
    assert err.count("\n") == 1


def test_a_model_failure_mid_run_exits_3_and_the_report_says_why(testless, script, monkeypatch, capsys):
    model = script([])  # exhausted at the first call
    code, out, err = run_main(testless, monkeypatch, capsys, "fix", "--model", model,
                              "--output-format", "stream-json", ISSUE)
    assert code == 3
    assert err.startswith(f"evoagent: model {model}: BadRequestError:") and err.count("\n") == 1
    events = [json.loads(line) for line in out.splitlines()]
    assert events[-1]["type"] == "finished"
    assert (events[-1]["status"], events[-1]["exit_code"]) == ("error", 3)
    [run] = (testless.path / ".evoagent" / "runs").iterdir()
    report = json.loads((run / "report.json").read_text())
    assert report["status"] == "error" and "is exhausted" in report["error"]


# -- output formats -----------------------------------------------------------------------


def test_stream_json_prints_one_event_per_line(project, script, monkeypatch):
    model = script(RIGHT)
    result = invoke(project, monkeypatch, "--model", model, "--output-format", "stream-json", ISSUE)
    assert result.exit_code == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    types = [e["type"] for e in events]
    assert types[0] == "session_started" and types[-1] == "finished"
    assert {"tool_call", "tool_result", "diff_proposed", "test_result", "cost_update"} <= set(types)
    assert events[-1]["status"] == "fixed" and events[-1]["exit_code"] == 0
    run_id = events[0]["run_id"]
    on_disk = (project.path / ".evoagent" / "runs" / run_id / "trajectory.jsonl").read_text()
    assert [json.loads(line) for line in on_disk.splitlines()] == events


def test_text_output_names_the_status_patch_and_report(project, script, monkeypatch):
    model = script(RIGHT)
    result = invoke(project, monkeypatch, "--model", model, ISSUE)
    assert result.exit_code == 0
    status, patch, report = result.stdout.splitlines()
    assert status.startswith("fixed: run ")
    run_dir = project.path / ".evoagent" / "runs" / status.removeprefix("fixed: run ")
    assert patch == f"patch:  {run_dir / 'patch.diff'}"
    assert report == f"report: {run_dir / 'report.json'}"
    assert "tests (attempt 1): 1 passed, 0 failed, 0 errors" in result.stderr


def test_an_edit_of_the_same_size_in_the_same_second_is_what_the_tests_run(project, script, monkeypatch):
    """A .pyc is validated by its source's mtime (whole seconds) and size: the kernel's test
    runs write none, or `a - b` -> `a + b` dated like the original would run the old code."""
    model = script([
        edit("a - b", "a + b"),
        ScriptedReply(tool_calls=[ScriptedToolCall("run", {"command": "touch -r tests/test_calc.py calc.py"})]),
        finish("add adds"),
    ])
    result = invoke(project, monkeypatch, "--model", model, "--output-format", "json", ISSUE)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tests"]["after"]["passed"] == ["tests/test_calc.py::test_add"]


# -- --apply and --commit -------------------------------------------------------------------


def test_apply_writes_a_passing_patch_to_the_working_tree(project, script, monkeypatch):
    project.write("notes.txt", "mine\n")
    model = script(RIGHT)
    result = invoke(project, monkeypatch, "--model", model, "--apply", "--output-format", "json", ISSUE)
    assert result.exit_code == 0
    assert json.loads(result.stdout)["applied"] is True
    assert (project.path / "calc.py").read_text() == FIXED
    assert (project.path / "notes.txt").read_text() == "mine\n"


def test_apply_leaves_the_working_tree_alone_when_not_fixed(project, script, monkeypatch):
    project.write("README.md", "# calc\n\nuncommitted\n")
    before = tree_state(project.path)
    model = script([edit("a - b", "a * b"), finish("wrong"), finish("still wrong"),
                    finish("gave up")])
    result = invoke(project, monkeypatch, "--model", model, "--apply", "--output-format", "json", ISSUE)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["status"] == "not_fixed" and "applied" not in report
    assert tree_state(project.path) == before


def test_commit_makes_a_branch_and_leaves_tree_index_and_branch_alone(project, script, monkeypatch):
    project.write("README.md", "# calc\n\nuncommitted\n")
    project.write("staged.txt", "staged\n")
    project.git("add", "staged.txt")
    before = tree_state(project.path)
    head = project.head()
    model = script(RIGHT)

    result = invoke(project, monkeypatch, "--model", model, "--commit", "--output-format", "json", ISSUE)

    assert result.exit_code == 0
    report = json.loads(result.stdout)
    branch = report["branch"]
    assert branch.startswith("evoagent/fix-add-subtracts")
    assert project.git("rev-parse", f"{branch}^") == head
    assert project.git("show", f"{branch}:calc.py") + "\n" == FIXED
    assert project.git("diff", "--name-only", head, branch) == "calc.py"
    message = project.git("log", "-1", "--format=%B", branch)
    assert message.splitlines()[0] == ISSUE
    assert project.git("log", "-1", "--format=%(trailers:key=Evoagent-Run,valueonly)", branch) == (
        report["run_id"]
    )
    assert tree_state(project.path) == before


def test_commit_refuses_a_patch_that_needs_uncommitted_changes(project, script, monkeypatch, capsys):
    project.write("calc.py", "def add(a, b):\n    # mine, uncommitted\n    return a - b\n")
    before = tree_state(project.path)
    model = script(RIGHT)
    code, out, err = run_main(project, monkeypatch, capsys, "fix", "--model", model, "--commit", ISSUE)
    assert code == 2
    last = err.splitlines()[-1]
    assert last.startswith("evoagent: cannot commit the patch on HEAD, it needs your uncommitted")
    assert "Traceback" not in err
    assert project.git("branch", "--list", "evoagent/*") == ""
    assert tree_state(project.path) == before


# -- demo and Ctrl-C ----------------------------------------------------------------------


def test_demo_exits_0_and_prints_the_final_patch():
    result = CliRunner().invoke(cli, ["demo"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("fixed: run ")
    assert "-        return low\n+        return high\n" in result.stdout
    assert "high - 1" not in result.stdout  # the wrong first attempt is not the patch
    assert "[scripted model]" in result.stderr


LAUNCHER = """
import sys, time
from pathlib import Path
from evoagent.agent.scripted_provider import ScriptedReply, ScriptedToolCall, register_script

started = Path(sys.argv[1])

def slow(messages, tools):
    started.write_text("waiting for the model")
    time.sleep(30)
    return ScriptedReply(tool_calls=[ScriptedToolCall("finish", {"summary": "too late"})])

edit = {"edits": [{"path": "calc.py", "search": "a - b", "replace": "a + b"}]}
register_script("slow", [ScriptedReply(tool_calls=[ScriptedToolCall("edit", edit)]), slow])
sys.argv = ["evoagent", "fix", "--model", "scripted/slow", *sys.argv[2:]]
from evoagent.agent.cli import main
main()
"""


def test_ctrl_c_exits_130_records_the_run_and_cleans_up(project, tmp_path):
    project.write("calc.py", CALC + "\n# my uncommitted note\n")
    project.write("untracked.txt", "keep me\n")
    before = tree_state(project.path)
    launcher = tmp_path / "launch.py"
    launcher.write_text(textwrap.dedent(LAUNCHER))
    started = tmp_path / "started"

    child = subprocess.Popen(
        [sys.executable, "-W", "ignore", str(launcher), str(started), ISSUE],
        cwd=project.path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), child.communicate()[1]
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    assert child.returncode == 130, err
    assert err.splitlines()[-1] == "evoagent: interrupted"
    assert "Traceback" not in err
    assert tree_state(project.path) == before
    [run] = (project.path / ".evoagent" / "runs").iterdir()
    report = json.loads((run / "report.json").read_text())
    assert report["status"] == "interrupted"
    last = json.loads((run / "trajectory.jsonl").read_text().splitlines()[-1])
    assert (last["type"], last["status"], last["exit_code"]) == ("finished", "interrupted", 130)
    sandboxes = project.path / ".evoagent" / "sandboxes"
    assert [p.name for p in sandboxes.iterdir()] == [".gitignore"]
