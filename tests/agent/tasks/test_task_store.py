"""The task store, the split, the patch split and the per-side outcome rules, in isolation."""

from __future__ import annotations

import json

import pytest
from evoagent.agent.tasks.candidates import DOCS_FORMAT_ONLY, classify, first_parent_history
from evoagent.agent.tasks.patch_split import changed_test_names, split_patch, touched_by_diff
from evoagent.agent.tasks.store import (
    Reject,
    Task,
    TaskStore,
    TaskStoreError,
    parse_ratios,
    split_of,
)
from evoagent.agent.tasks.validate import _side, decide, error_line
from evoagent.sandbox.junit import Outcome
from evoagent.sandbox.testrun import TestRun

PATCH = """\
diff --git a/pkg/mod.py b/pkg/mod.py
index 1111111..2222222 100644
--- a/pkg/mod.py
+++ b/pkg/mod.py
@@ -1,2 +1,2 @@ def f():
-    return 1
+    return 2
diff --git a/tests/test_mod.py b/tests/test_mod.py
index 3333333..4444444 100644
--- a/tests/test_mod.py
+++ b/tests/test_mod.py
@@ -3,3 +3,7 @@ def test_old():
     assert f() in (1, 2)
+
+
+def test_new():
+    assert f() == 2
diff --git a/tests/data/input.txt b/tests/data/input.txt
new file mode 100644
index 0000000..5555555
--- /dev/null
+++ b/tests/data/input.txt
@@ -0,0 +1 @@
+x
"""


def make_task(id: str, commit: str = "c" * 40) -> Task:
    return Task(
        id,
        "o/r",
        "p" * 40,
        commit,
        "code",
        "tests",
        ["t::a"],
        [],
        "pytest",
        ["t"],
        "2024-01-01T00:00:00+00:00",
        "msg",
    )


def test_split_patch_parts_and_changed_tests():
    split = split_patch(PATCH)
    assert split.code_files == ["pkg/mod.py"]
    assert split.test_files == ["tests/test_mod.py", "tests/data/input.txt"]
    assert split.runnable_test_files() == ["tests/test_mod.py"]
    assert split.code.startswith("diff --git a/pkg/mod.py") and "tests/" not in split.code
    names = changed_test_names(split.tests)
    assert names["tests/test_mod.py"] == {"test_new"}
    assert touched_by_diff("tests/test_mod.py::test_new[1-2]", names)
    assert not touched_by_diff("tests/test_mod.py::test_old", names)


def test_split_is_deterministic_and_follows_ratios():
    ids = [f"o__r-{i:012x}" for i in range(2000)]
    ratios = parse_ratios("6,2,2")
    first = [split_of(i, ratios) for i in ids]
    assert first == [split_of(i, ratios) for i in ids]
    share = first.count("train") / len(ids)
    assert 0.55 < share < 0.65
    assert {split_of(i, parse_ratios("0,0,1")) for i in ids} == {"test"}
    with pytest.raises(TaskStoreError):
        parse_ratios("1,2")


def test_store_roundtrip_decided_and_prefix(tmp_path):
    store = TaskStore(tmp_path / "tasks")
    store.add_task(make_task("o__r-aaaa11112222", "a" * 40))
    store.add_task(make_task("o__r-aaaa33334444", "b" * 40))
    store.add_reject(Reject("d" * 40, "flaky", "t::x"))
    with open(store.tasks_file, "a") as handle:
        handle.write('{"id": "cut mid-wri')  # a kill mid-write loses only that line
    assert store.decided() == {"a" * 40, "b" * 40, "d" * 40}
    assert store.get("o__r-aaaa3").commit == "b" * 40
    assert store.get("bbbb").id == "o__r-aaaa33334444"
    with pytest.raises(TaskStoreError, match="ambiguous"):
        store.get("o__r-aaaa")
    store.set_ratios(parse_ratios("0,1,0"))
    assert [t.id for t in store.in_split("val")] == ["o__r-aaaa11112222", "o__r-aaaa33334444"]
    row = make_task("x").to_swebench()
    assert json.loads(row["FAIL_TO_PASS"]) == ["t::a"] and row["PASS_TO_PASS"] == "[]"


def _run(passed=(), failed=(), problems=None) -> TestRun:
    return TestRun(
        list(passed), list(failed), [], [], 1 if failed else 0, "", True, problems=problems or {}
    )


def test_sides_flaky_excluded_and_both_failing_ignored():
    before = _side([_run(["p"], ["f", "x", "z"]), _run(["p", "z"], ["f", "x"])], [])
    assert _side([_run(["a"]), _run([])], []).flaky == {"a"}  # missing from one run
    after = _side([_run(["f", "p"], ["x"]), _run(["f", "p", "z"], ["x"])], [])
    assert before.flaky == {"z"}
    verdict = decide(before, after, [], "", cascade_limit=20)
    assert verdict.fail_to_pass == ["f"]
    assert verdict.pass_to_pass == ["p"]
    assert verdict.flaky == ["z"]


def test_collection_failure_counts_each_test_as_failing_at_p():
    detail = "Traceback:\nt.py:1: in <module>\nE   ImportError: cannot import name 'g' from 'm'"
    problem = Outcome("t.py::t", "errors", "collection failure", detail)
    crashed = TestRun([], [], ["t.py::t"], [], 2, "", True, problems={"t.py::t": problem})
    before = _side([crashed, crashed], ["t.py"])
    assert before.file_errors == {"t.py": "ImportError: cannot import name 'g' from 'm'"}
    after = _side([_run(["t.py::a", "t.py::b"])] * 2, ["t.py"])
    assert decide(before, after, ["t.py"], "", 20).fail_to_pass == ["t.py::a", "t.py::b"]
    assert decide(after, after, ["t.py"], "", 20).reason == "no failing test"
    assert decide(before, before, ["t.py"], "", 20).reason == "environment/collection error"
    assert decide(
        before, _side([_run(["t.py::a", "t.py::b"])] * 2, ["t.py"]), ["t.py"], "", 1
    ).cascade_reason


def test_error_line_names_the_exception():
    assert error_line(
        "boom", "x\nE   assert 1 == 2\nE   ModuleNotFoundError: No module named 'q'"
    ) == ("ModuleNotFoundError: No module named 'q'")
    assert error_line("assert 0", "") == "assert 0"


def test_whitespace_only_source_change_is_format_only(git_repo):
    git_repo.commit(
        "init", {"m.py": "def f():\n    return 1\n", "tests/test_m.py": "def test_f(): pass\n"}
    )
    git_repo.commit(
        "reformat",
        {"m.py": "def f():\n\n    return 1\n", "tests/test_m.py": "def test_f():  pass\n"},
    )
    newest = first_parent_history(git_repo.path, None, None)[0]
    assert classify(git_repo.path, newest).reason == DOCS_FORMAT_ONLY


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("E   AttributeError: module 'm' has no attribute 'gone'", "environment/collection error"),
        (
            "E   ImportError: cannot import name 'url_quote' from 'w'",
            "environment/collection error",
        ),
        ("E   assert 1 == 2", "still failing after C"),
    ],
)
def test_failing_on_both_sides_says_whether_the_environment_moved_on(line, reason):
    failing = Outcome("t.py::a", "failed", "", line)
    run = TestRun([], ["t.py::a"], [], [], 1, "", True, problems={"t.py::a": failing})
    side = _side([run, run], ["t.py"])
    verdict = decide(side, side, ["t.py"], "", 20)
    assert (verdict.reason, verdict.detail) == (reason, f"t.py::a: {line[1:].strip()}")
