"""How evoagent's output reads in an ACP client, which renders tool content and thoughts as
Markdown: results as fenced code blocks, permission titles that name the files, plan steps
that say why an attempt goes back to the model, and a mistyped command that never reaches
the model. In process, no subprocess: the pieces `evoagent acp` sends."""

from __future__ import annotations

import json

import test_fix_e2e
from evoagent.agent.acp_commands import unknown_command
from evoagent.agent.acp_updates import TurnPlan, fenced, permission_title
from evoagent.agent.events import DiffProposed, Phase, TestCommandChosen, TestResult
from test_fix_e2e import BUGGY, edit, finish, fix, trajectory

project = test_fix_e2e.project

DIFF = """--- a/src/app.py
+++ b/src/app.py
@@ -1 +1 @@
-old
+new
--- a/README.md
+++ b/README.md
@@ -1 +1 @@
-a
+b
"""


def test_results_are_fenced_by_more_backticks_than_they_hold():
    assert fenced("- a\n+ b", "diff") == "```diff\n- a\n+ b\n```"
    assert fenced("ends with a newline\n") == "```\nends with a newline\n```"
    # A result holding a fence of its own cannot close ours early.
    text = "before\n````\ninside\n````\nafter"
    block = fenced(text)
    assert block.startswith("`````\n") and block.endswith("\n`````")
    assert block[6:-6] == text


def test_a_permission_title_names_the_files_of_an_edit():
    assert permission_title("edit", DIFF) == "edit src/app.py, README.md"
    assert permission_title("command", "pytest -q\n") == "command: pytest -q"
    assert permission_title("edit", "") == "edit: "


def test_only_a_mistyped_command_is_refused():
    refused = unknown_command("/recallechonewline echo newline")
    assert refused is not None
    assert refused.startswith("/recallechonewline is not a command (commands: /accept ")
    assert "nothing was sent to the model" in refused
    assert unknown_command("/recall echo") is None  # a command
    assert unknown_command("/usr/bin/env is missing from the image") is None  # a path
    assert unknown_command("why does /accept fail?") is None  # not at the start


def test_the_plan_says_why_an_attempt_goes_back():
    plan = TurnPlan()
    plan.see(TestCommandChosen(["pytest"], "pyproject"))
    plan.see(Phase("model_call"))
    plan.see(DiffProposed("diff", 1))
    plan.see(TestResult(1, 3, 0, 0, [], ""))
    steps = plan.see(Phase("refining", "no test shows the fix yet (a test that fails "
                                       "without it is asked for)"))
    assert steps == [
        ("Attempt 1: work on the request", "completed"),
        ("Tests of attempt 1: 3 passed, 0 failed, 0 errors", "completed"),
        ("Attempt 2: refine, since no test shows the fix yet (a test that fails without it "
         "is asked for)", "in_progress"),
    ]


def test_the_kernel_says_why_it_sends_an_attempt_back(project, script):
    model = script([
        edit(BUGGY, "    if value > high:\n        return high - 1\n"),
        finish("first try"),
        edit("        return high - 1\n", "        return high\n"),
        finish("clamp returns high above the range"),
    ])
    outcome = fix(project, model)
    assert outcome.status == "fixed"
    reasons = [e["detail"] for e in trajectory(outcome)
               if e["type"] == "phase" and e["name"] == "refining"]
    # The issue's own test failed before and still fails (differently): not a new failure.
    assert reasons == ["only failures that were there before remain (the fix is not shown)"]
    assert json.loads((outcome.run_dir / "report.json").read_text())["attempts"] == 2
