"""Snapshots of every screen at a fixed size, with deterministic content: fixed commit
identities and dates, a fixed script name, events fed in directly where a live run would
print a timestamped run id. Baselines live in __snapshots__/ and are reviewed like code."""

from __future__ import annotations

import asyncio
import json

import pytest
from conftest import BUGGY, FIXED, REQUEST, SIZE
from evoagent.agent import events as ev
from evoagent.agent.scripted_provider import register_script, unregister_script
from evoagent.tui.app import EvoApp
from evoagent.tui.screens.memory import MemoryScreen
from evoagent.tui.screens.no_model import NoModelScreen
from evoagent.tui.screens.review import ReviewRequest, ReviewScreen
from evoagent.tui.screens.runs import RunsScreen
from evoagent.tui.widgets.tool_call import ToolCallView

BLANK_CONTEXT = " "  # a context line for an empty line: one space
PATCH = f"""diff --git a/calc.py b/calc.py
--- a/calc.py
+++ b/calc.py
@@ -1,6 +1,6 @@
 def clamp(value, low, high):
     if value < low:
         return low
{''.join('-' + line + chr(10) for line in BUGGY.splitlines())}{''.join('+' + line + chr(10) for line in FIXED.splitlines())}     return value
diff --git a/tests/test_calc.py b/tests/test_calc.py
--- a/tests/test_calc.py
+++ b/tests/test_calc.py
@@ -7,3 +7,7 @@ def test_inside():
{BLANK_CONTEXT}
 def test_above():
     assert clamp(15, 0, 10) == 10
+
+
+def test_at_bound():
+    assert clamp(10, 0, 10) == 10
"""
MODEL = "scripted/snapshot"


@pytest.fixture
def snapshot_model():
    register_script("snapshot", [])
    yield MODEL
    unregister_script("snapshot")


async def settle(pilot, condition, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out"
        await pilot.pause(0.05)


async def steady(pilot) -> None:
    """Layout and scrolling settled, no blinking cursors, no toasts: only content."""
    app = pilot.app
    for field in app.screen.query("Input, TextArea"):
        field.cursor_blink = False
    app.clear_notifications()
    # Diff views and Markdown finish their layout a few frames after mounting: wait until
    # three frames in a row are the same.
    previous, same = None, 0
    for _ in range(100):
        await pilot.wait_for_scheduled_animations()
        await pilot.pause(0.05)
        frame = app.export_screenshot(simplify=True)
        same = same + 1 if frame == previous else 0
        if same >= 2:
            return
        previous = frame
    raise AssertionError("the frame never settled")


def conversation_events() -> list[ev.Event]:
    answer = "The upper branch returns `low`; it should return **`high`**.\n\n- fix `clamp`\n"
    return [
        *[ev.MessageDelta(answer[i:i + 8]) for i in range(0, len(answer), 8)],
        ev.Message(answer),
        ev.ToolCall("c1", "read", {"path": "calc.py"}),
        ev.ToolResult("c1", "read", CALC_PREVIEW),
        ev.ToolCall("c2", "edit", {"edits": [{"path": "calc.py", "search": BUGGY,
                                               "replace": FIXED}]}),
        ev.ToolResult("c2", "edit", "edited calc.py"),
        ev.CommandRun("pytest -q", 1, "1 failed, 1 passed", 0.8, True),
        ev.TestResult(1, passed=2, failed=0, errors=0),
        ev.Finished("fixed", "clamp returns high above the upper bound"),
    ]


CALC_PREVIEW = "1 def clamp(value, low, high):\n2     if value < low:"


SMALL = (80, 24)


def test_main_screen(project, snapshot_model, snap_compare):
    assert_main_screen(project, snapshot_model, snap_compare, SIZE)


def test_main_screen_80x24(project, snapshot_model, snap_compare):
    assert_main_screen(project, snapshot_model, snap_compare, SMALL)


def assert_main_screen(project, snapshot_model, snap_compare, size) -> None:
    app = EvoApp(root=project.path, model=snapshot_model, mine_on_start=False)

    async def run_before(pilot) -> None:
        await settle(pilot, lambda: app.status.model)
        app.status = app.status.with_(isolated=True, memories=2)
        await app.main.conversation.add_request(REQUEST)
        for event in conversation_events():
            await app.main.show_event(event)
        views = list(app.main.query(ToolCallView))
        await settle(pilot, lambda: all(str(v._title.label).endswith("✓") for v in views))
        await steady(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [(80, 24), (120, 36)])
def test_review_screen(project, snapshot_model, snap_compare, size):
    app = EvoApp(root=project.path, model=snapshot_model, mine_on_start=False)

    async def run_before(pilot) -> None:
        await settle(pilot, lambda: app.status.model)
        request = ReviewRequest(PATCH, "Run fix-clamp", {"status": "fixed", "summary":
                                "clamp returns high"}, ["before: 1 passed, 1 failed",
                                                        "after: 3 passed"], "fix-clamp")
        app.push_screen(ReviewScreen(request))
        await steady(pilot)  # diff views laid out before moving (moving scrolls)
        await pilot.press("down", "space")  # reject the test hunk
        await steady(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_review_screen_split_light_theme(project, snapshot_model, snap_compare):
    app = EvoApp(root=project.path, model=snapshot_model, mine_on_start=False)

    async def run_before(pilot) -> None:
        await settle(pilot, lambda: app.status.model)
        app.theme = "textual-light"
        app.push_screen(ReviewScreen(ReviewRequest(PATCH, "Run fix-clamp", key="k")))
        await steady(pilot)
        await pilot.press("v")
        await steady(pilot)

    assert snap_compare(app, terminal_size=(120, 30), run_before=run_before)


def test_memory_screen(project, snapshot_model, snap_compare):
    assert_memory_screen(project, snapshot_model, snap_compare, SIZE)


def test_memory_screen_80x24(project, snapshot_model, snap_compare):
    assert_memory_screen(project, snapshot_model, snap_compare, SMALL)


def assert_memory_screen(project, snapshot_model, snap_compare, size) -> None:
    app = EvoApp(root=project.path, model=snapshot_model, mine_on_start=True)

    async def run_before(pilot) -> None:
        await settle(pilot, lambda: app.status.memories == 2)
        await pilot.press("f2")
        screen = app.screen
        assert isinstance(screen, MemoryScreen)
        screen.search("clamp bounds")
        await settle(pilot, lambda: screen.hits.option_count == 2)
        await pilot.pause()
        await steady(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def write_run(project, run_id: str, issue: str, status: str, cost: float | None,
              patch: str) -> None:
    run_dir = project.path / ".evoagent" / "runs" / run_id
    run_dir.mkdir(parents=True)
    report = {"run_id": run_id, "issue": issue, "status": status, "cost_usd": cost,
              "model": MODEL, "summary": issue}
    (run_dir / "report.json").write_text(json.dumps(report))
    (run_dir / "patch.diff").write_text(patch)


def test_runs_screen(project, snapshot_model, snap_compare):
    assert_runs_screen(project, snapshot_model, snap_compare, SIZE)


def test_runs_screen_80x24(project, snapshot_model, snap_compare):
    assert_runs_screen(project, snapshot_model, snap_compare, SMALL)


def assert_runs_screen(project, snapshot_model, snap_compare, size) -> None:
    write_run(project, "20240102-090000-clamp-upper-bound-a1b2", REQUEST, "fixed", 0.0123, PATCH)
    write_run(project, "20240101-080000-rename-helpers-c3d4", "rename the helpers", "not_fixed",
              None, "")
    app = EvoApp(root=project.path, model=snapshot_model, mine_on_start=False)

    async def run_before(pilot) -> None:
        await settle(pilot, lambda: app.status.model)
        await pilot.press("f3")
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        await settle(pilot, lambda: len(screen.runs) == 2)
        await pilot.pause()
        await steady(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_no_model_screen(project, snap_compare):
    app = EvoApp(root=project.path, mine_on_start=False)

    async def run_before(pilot) -> None:
        await settle(pilot, lambda: isinstance(app.screen, NoModelScreen))
        app.status = app.status.with_(isolated=True)
        await pilot.pause()
        await steady(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
