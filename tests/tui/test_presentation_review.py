"""The review as a person reads it (#13): real test counts and the reproduction in the
header, hunks numbered with the file's own line numbers, no phantom line in a new file, a
read-only genome diff that offers no decision, and Escape that closes without deciding."""

from __future__ import annotations

import subprocess

import pytest
from clamp_project import CALC, FIX_PATCH
from conftest import REQUEST, SIZE, fix_steps
from evoagent.agent.loop import AttemptOutcome
from evoagent.agent.patches import parse
from evoagent.agent.session import RequestOutcome
from evoagent.agent.solve import Attempt, Reproduction, SolveResult, summarize
from evoagent.sandbox.testrun import TestRun
from evoagent.tui.app import EvoApp
from evoagent.tui.screens.review import DECIDING, ReviewRequest, ReviewScreen
from evoagent.tui.widgets.hunk_view import HunkView
from helpers import wait_for
from textual.widgets import Static
from textual_diff_view._diff_view import LineAnnotations

TESTS_HUNK = """diff --git a/tests/test_calc.py b/tests/test_calc.py
--- a/tests/test_calc.py
+++ b/tests/test_calc.py
@@ -8,2 +8,6 @@ def test_inside():
 def test_above():
     assert clamp(15, 0, 10) == 10
+
+
+def test_at_bound():
+    assert clamp(10, 0, 10) == 10
"""
NEW_FILE = """diff --git a/notes.txt b/notes.txt
new file mode 100644
--- /dev/null
+++ b/notes.txt
@@ -0,0 +1,2 @@
+clamp keeps a value within bounds
+high wins above the upper bound
"""
REPRO = "tests/test_calc.py::test_at_bound"


def header(screen: ReviewScreen) -> str:
    return " ".join(str(s.render()) for s in screen.query("#review-head Static").results(Static))


def columns(hunk: HunkView) -> tuple[list[str], list[str], list[str]]:
    """The unified view's old numbers, new numbers and +/- marks, as shown."""
    old, new, marks = list(hunk.query(LineAnnotations))[:3]
    return tuple([c.plain.strip("▎ ") for c in column.numbers] for column in (old, new, marks))


async def open_review(pilot, request: ReviewRequest) -> ReviewScreen:
    app = pilot.app
    await wait_for(pilot, lambda: app.status.model, what="session")
    app.review(request)
    await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen.hunks(),
                   what="review")
    await pilot.pause()
    return app.screen


def notes(app) -> str:
    return "\n".join(str(n.render()) for n in app.main.query("Note"))


@pytest.mark.slow  # a real run: the sandbox runs the tests before and after the change
async def test_a_real_run_shows_its_test_counts(project, script):
    app = EvoApp(root=project.path, model=script(fix_steps()), mode="full_auto",
                 mine_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.status.model, what="session")
        app.main.prompt.value = REQUEST
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen), what="review")
        text = header(app.screen)
    # The sandbox ran the repository's tests: one of two failed before, both pass after.
    assert "tests  before: 1 passed, 1 failed · after: 2 passed" in text
    assert "could not run" not in text


def solve_result(before: TestRun, after: TestRun, reproduction: Reproduction | None) -> dict:
    attempt = Attempt(1, "0" * 40, AttemptOutcome("fixed", 3, True), after, FIX_PATCH)
    return summarize(SolveResult("fixed", [attempt], attempt, before, reproduction))


def run_of(passed: int, failed: int = 0, **fields) -> TestRun:
    return TestRun([f"tests/test_calc.py::test_{i}" for i in range(passed)],
                   [f"tests/test_calc.py::test_bad_{i}" for i in range(failed)], [], [],
                   1 if failed else 0, "", True, kind="pytest", **fields)


async def test_header_shows_the_reproduction_and_why_tests_could_not_run(project, script):
    tests = solve_result(run_of(12, 1), run_of(13), Reproduction([REPRO], True, True))
    outcome = RequestOutcome("run-1", project.path, "fixed", FIX_PATCH, parse(FIX_PATCH),
                             tests, "return high")
    broken = TestRun([], [], [], [], 4, "ImportError while loading conftest '/r/conftest.py'.\n"
                     "E   ModuleNotFoundError: No module named 'flask'\n", False, kind="pytest")
    no_verdict = solve_result(broken, broken, None)
    app = EvoApp(root=project.path, model=script([]), mine_on_start=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_review(pilot, app.review_request(outcome))
        text = header(screen)
        assert "before: 12 passed, 1 failed · after: 13 passed" in text
        assert f"reproduction: {REPRO} fails without the fix, passes with it" in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.main, what="closed")

        outcome.tests = no_verdict
        screen = await open_review(pilot, app.review_request(outcome))
        text = header(screen)
    assert ("tests could not run: pytest could not start (exit 4): "
            "ModuleNotFoundError: No module named 'flask'") in text
    assert "before: could not run · after: could not run" in text


async def test_hunks_carry_the_files_line_numbers_in_both_views(project, script):
    app = EvoApp(root=project.path, model=script([]), mine_on_start=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_review(pilot, ReviewRequest(FIX_PATCH + TESTS_HUNK, key="k"))
        calc, tests = screen.hunks()
        assert columns(calc) == (["3", "4", "5", "", "6"], ["3", "4", "", "5", "6"],
                                 ["", "", "-", "+", ""])
        assert columns(tests) == (["8", "9", "", "", "", ""],
                                  ["8", "9", "10", "11", "12", "13"],
                                  ["", "", "+", "+", "+", "+"])
        await pilot.press("v")  # split: each side numbers its own lines
        await pilot.pause()
        old, _marks, new = [[c.plain.strip("▎ ") for c in column.numbers]
                            for column in list(calc.query(LineAnnotations))[:3]]
        assert [n for n in old if n.isdigit()] == ["3", "4", "5", "6"]
        assert [n for n in new if n.isdigit()] == ["3", "4", "5", "6"]


async def test_a_new_file_shows_only_its_added_lines(project, script):
    app = EvoApp(root=project.path, model=script([]), mine_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_review(pilot, ReviewRequest(NEW_FILE, key="k"))
        [hunk] = screen.hunks()
        old, new, marks = columns(hunk)
    assert marks == ["+", "+"]
    assert old == ["", ""]
    assert new == ["1", "2"]


def shown_actions(screen: ReviewScreen) -> set[str]:
    return {b.binding.action for b in screen.active_bindings.values() if b.binding.show}


async def test_a_read_only_review_offers_no_decision(project, script):
    app = EvoApp(root=project.path, model=script([]), mine_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.status.model, what="session")
        closed = []
        app.push_screen(ReviewScreen(ReviewRequest(FIX_PATCH, "Genome diff", key="g1",
                                                   read_only=True)), closed.append)
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen), what="review")
        screen = app.screen
        await pilot.pause()
        assert not shown_actions(screen) & DECIDING
        assert {"close", "toggle_split"} <= shown_actions(screen)
        assert "[x]" not in str(screen.hunks()[0].query_one(".hunk-head", Static).render())
        await pilot.press("space", "a", "c", "k", "r")  # deciding keys do nothing
        assert app.screen is screen and screen.hunks()[0].accepted and not screen.commit
        assert "read-only" in header(screen)
        await pilot.press("escape")
        await wait_for(pilot, lambda: closed, what="closed")
    assert closed == [None]


async def test_escape_closes_the_review_without_deciding(project, script):
    app = EvoApp(root=project.path, model=script([]), mine_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_review(pilot, ReviewRequest(FIX_PATCH, "Run r1", key="r1"))
        assert "escape" in screen.active_bindings
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.main, what="closed")
        await wait_for(pilot, lambda: "Review closed" in notes(app), what="the note")
        assert "Rejected" not in notes(app)
    assert (project.path / "calc.py").read_text() == CALC
    assert subprocess.run(["git", "status", "--porcelain"], cwd=project.path,
                          capture_output=True, text=True, check=True).stdout == ""
