"""`evoagent tasks mine --rewrite` and `tasks rewrite`: a scripted model writes the bug report,
the store keeps it beside the original, leaks are refused, no model is exit 3; and
`TaskStore.update`, the atomic rewrite of tasks.jsonl those depend on.

Mining runs for real (real repository, real sandbox); the model is the scripted provider.
"""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from cli_helpers import invoke, run_main
from evoagent.agent.tasks.rewrite import added_lines, leak, render_prompt
from evoagent.agent.tasks.store import Task, TaskStore, TaskStoreError
from scratch_pytest import PYTEST

VENV = str(Path(sys.prefix)) if sys.prefix != sys.base_prefix else None

CALC = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return b - a\n"
TEST_CALC = "import calc\n\n\ndef test_add():\n    assert calc.add(2, 3) == 5\n"
MESSAGE = "Fix sub argument order in calc.py\n\nSwap the operands: return a - b."
CODE_PATCH = """\
diff --git a/calc.py b/calc.py
--- a/calc.py
+++ b/calc.py
@@ -5,2 +5,2 @@ def add(a, b):
 def sub(a, b):
-    return b - a
+    return a - b
"""
TEST_PATCH = """\
diff --git a/tests/test_calc.py b/tests/test_calc.py
--- a/tests/test_calc.py
+++ b/tests/test_calc.py
@@ -3,3 +3,7 @@ import calc
 def test_add():
     assert calc.add(2, 3) == 5
+
+
+def test_sub():
+    assert calc.sub(5, 3) == 2
"""
REPORT = "sub() returns a negative result\n\n`calc.sub(5, 3)` gives -2; I expected 2."




def make_task(commit: str = "c" * 40, **changes) -> Task:
    task = Task(
        id=f"o__r-{commit[:12]}",
        repo="o/r",
        base_commit="p" * 40,
        commit=commit,
        patch=CODE_PATCH,
        test_patch=TEST_PATCH,
        fail_to_pass=["tests/test_calc.py::test_sub"],
        pass_to_pass=["tests/test_calc.py::test_add"],
        test_command="pytest",
        test_files=["tests/test_calc.py"],
        created_at="2024-01-01T00:00:00+00:00",
        problem_statement=MESSAGE,
        fail_lines={"tests/test_calc.py::test_sub": "assert -2 == 2"},
    )
    return replace(task, **changes)


@pytest.fixture
def stored(git_repo) -> tuple[Path, TaskStore]:
    """A repository whose task store holds one task (made by hand: rewriting needs no run)."""
    git_repo.commit("start", {"calc.py": CALC})
    store = TaskStore(git_repo.path / ".evoagent" / "tasks")
    store.add_task(make_task())
    return git_repo.path, store


def no_ollama(monkeypatch) -> None:
    # Port 9 (discard) has no Ollama: the probe is refused at once, so no model is found.
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9")


# -- the prompt and the leak rules ------------------------------------------------------------


def test_prompt_shows_statement_tests_and_failures_but_never_the_code_part():
    prompt = render_prompt(make_task())
    assert MESSAGE in prompt
    assert "+def test_sub():" in prompt and "+    assert calc.sub(5, 3) == 2" in prompt
    assert "tests/test_calc.py::test_sub: assert -2 == 2" in prompt
    assert "return a - b" not in prompt.replace(MESSAGE, "")
    assert "diff --git a/calc.py" not in prompt


def test_leak_rules():
    task = make_task()
    assert leak(task, REPORT) == ""
    assert leak(task, "Broken since the change to calc.py.") == (
        "names calc.py, a file only the fix changes"
    )
    assert leak(
        replace(task, patch=CODE_PATCH.replace("calc.py", "pkg/calc.py")), "see pkg/calc.py"
    )
    assert leak(task, "mycalc.py and calc.pyc are other files") == ""
    assert leak(task, "It should `return  a -  b`.") == "repeats a line the fix adds: return a - b"
    # Short lines say nothing about the fix; a line the patch only moves is no news either.
    assert (
        added_lines("+    return None\n+    pass\n+x = compute(a, b)\n-x = compute(a, b)\n") == []
    )


# -- tasks rewrite ------------------------------------------------------------------------------


def test_rewrite_stores_the_report_beside_the_original(stored, script):
    repo, store = stored
    seen = []

    def reply(messages, tools):
        prompt = messages[-1]["content"]
        seen.append(prompt)
        failure = next(line for line in prompt.splitlines() if "::test_sub:" in line)
        return (
            f"sub() gives the wrong sign\n\nRunning the tests shows `{failure.split(': ', 1)[1]}`."
        )

    model = script([reply])
    result = invoke(repo, "tasks", "rewrite", "--model", model, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "rewritten": ["o__r-cccccccccccc"],
        "refused": {},
        "model": model,
    }
    assert "tests/test_calc.py::test_sub: assert -2 == 2" in seen[0]
    (task,) = store.tasks()
    assert task.rewritten_statement == (
        "sub() gives the wrong sign\n\nRunning the tests shows `assert -2 == 2`."
    )
    assert task.rewrite_model == model and task.rewrite_rejected == ""
    assert task.problem_statement == MESSAGE
    assert len(store.tasks_file.read_text().splitlines()) == 1
    shown = invoke(repo, "tasks", "show", task.id).output
    assert f"rewritten statement (model-written by {model}):" in shown
    assert "Running the tests shows" in shown and MESSAGE.splitlines()[0] in shown


@pytest.mark.parametrize(
    "reply, reason",
    [
        ("Bug in calc.py\n\nsub is wrong.", "names calc.py, a file only the fix changes"),
        (
            "sub is wrong\n\nIt should do `return a - b`.",
            "repeats a line the fix adds: return a - b",
        ),
        ("   ", "the model's reply was empty"),
    ],
    ids=["path", "added-line", "empty"],
)
def test_a_leaking_rewrite_is_refused_and_the_earlier_one_kept(stored, script, reply, reason):
    repo, store = stored
    first = script([REPORT])
    assert invoke(repo, "tasks", "rewrite", "-m", first).exit_code == 0
    second = script([reply])
    result = invoke(repo, "tasks", "rewrite", "o__r-ccc", "-m", second)
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        f"rewrote 0 of 1 statement(s) with {second}",
        f"  kept the original of o__r-cccccccccccc: {reason}",
    ]
    (task,) = store.tasks()
    assert task.rewritten_statement == REPORT and task.rewrite_model == first
    assert task.rewrite_rejected == f"{second}: {reason}"
    assert task.problem_statement == MESSAGE


def test_rewrite_without_ids_skips_rewritten_tasks_unless_forced(stored, script):
    repo, store = stored
    store.add_task(make_task("d" * 40, rewritten_statement="done before", rewrite_model="m"))
    model = script([REPORT])
    assert invoke(repo, "tasks", "rewrite", "-m", model).exit_code == 0
    tasks = {t.commit[0]: t for t in store.tasks()}
    assert tasks["c"].rewritten_statement == REPORT
    assert tasks["d"].rewritten_statement == "done before"
    model = script([REPORT, REPORT])
    assert invoke(repo, "tasks", "rewrite", "--force", "-m", model).exit_code == 0
    assert {t.rewritten_statement for t in store.tasks()} == {REPORT}


@pytest.mark.parametrize("args", [["tasks", "rewrite"], ["tasks", "mine", "--rewrite"]])
def test_no_model_is_one_line_and_exit_3(stored, monkeypatch, capsys, args):
    repo, store = stored
    no_ollama(monkeypatch)
    before = store.tasks_file.read_text()
    code, out, err = run_main(repo, monkeypatch, capsys, *args)
    assert (code, out) == (3, "")
    assert err.startswith("evoagent: no model configured: set ANTHROPIC_API_KEY")
    assert err.count("\n") == 1
    # Refused before any work: nothing mined, nothing rewritten.
    assert store.tasks_file.read_text() == before
    assert not store.rejects_file.exists()


def test_mine_rewrite_sends_real_failure_lines(git_repo, script):
    git_repo.commit("Initial calc", {"calc.py": CALC, "tests/test_calc.py": TEST_CALC})
    fix = git_repo.commit(
        MESSAGE,
        {
            "calc.py": CALC.replace("b - a", "a - b"),
            "tests/test_calc.py": TEST_CALC
            + "\n\ndef test_sub():\n    assert calc.sub(5, 3) == 2\n",
        },
    )
    prompts = []

    def reply(messages, tools):
        prompts.append(messages[-1]["content"])
        return REPORT

    model = script([reply])
    args = ["tasks", "mine", "--json", "--rewrite", "-m", model, "--test-command", PYTEST,
            "--runs", "1"]
    result = invoke(git_repo.path, *args, *(["--venv", VENV] if VENV else []))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["tasks"] == 1
    assert report["rewrite"] == {
        "rewritten": [f"repo-{fix[:12]}"],
        "refused": {},
        "model": model,
    }
    (task,) = TaskStore(git_repo.path / ".evoagent" / "tasks").tasks()
    assert task.fail_lines == {"tests/test_calc.py::test_sub": "assert -2 == 2"}
    assert "tests/test_calc.py::test_sub: assert -2 == 2" in prompts[0]
    assert task.rewritten_statement == REPORT and task.rewrite_model == model
    assert task.problem_statement == MESSAGE


# -- TaskStore.update ---------------------------------------------------------------------------


def test_update_replaces_in_place_and_leaves_no_temp_file(tmp_path):
    store = TaskStore(tmp_path / "tasks")
    for sha in ("a", "b", "c"):
        store.add_task(make_task(sha * 40))
    store.add_task(make_task("b" * 40, problem_statement="b again"))  # a commit stored twice
    with open(store.tasks_file, "a") as handle:
        handle.write('{"id": "cut by a ki')
    store.update(make_task("b" * 40, rewritten_statement="new"))
    lines = [json.loads(line) for line in store.tasks_file.read_text().splitlines()]
    assert [line["commit"][0] for line in lines] == ["a", "b", "c"]
    assert lines[1]["rewritten_statement"] == "new"
    assert sorted(p.name for p in store.path.iterdir()) == [".lock", "tasks.jsonl"]
    with pytest.raises(TaskStoreError, match="no task 'o__r-eeeeeeeeeeee' to update"):
        store.update(make_task("e" * 40))


def test_appends_racing_updates_are_never_lost(tmp_path):
    store = TaskStore(tmp_path / "tasks")
    store.add_task(make_task("0" * 40))
    shas = [f"{n:040x}" for n in range(1, 201)]

    def append() -> None:
        for sha in shas:
            store.add_task(make_task(sha))

    writer = threading.Thread(target=append)
    writer.start()
    for n in range(100):
        store.update(make_task("0" * 40, rewritten_statement=str(n)))
    writer.join()
    tasks = {t.commit: t for t in store.tasks()}
    assert set(tasks) == {"0" * 40, *shas}
    assert tasks["0" * 40].rewritten_statement == "99"
