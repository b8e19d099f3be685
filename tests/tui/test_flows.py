"""Key flows of the app, driven by the scripted model in a real repository with the real
sandbox: request → streamed answer → review → accept → undo; reject; approval modes."""

from __future__ import annotations

import subprocess

from clamp_project import CALC
from conftest import FIXED, REQUEST, SIZE, fix_steps
from evoagent.tui.app import EvoApp
from evoagent.tui.screens.approval import ApprovalScreen
from evoagent.tui.screens.review import ReviewScreen
from evoagent.tui.widgets.assistant_message import AssistantMessage
from evoagent.tui.widgets.tool_call import ToolCallView
from genome_settings import configure_genome
from helpers import wait_for


def status(project) -> str:
    return subprocess.run(["git", "status", "--porcelain"], cwd=project.path,
                          capture_output=True, text=True, check=True).stdout


async def send(pilot, text: str) -> None:
    pilot.app.main.prompt.value = text
    await pilot.press("enter")


async def test_request_streams_answer_then_accepted_hunk_lands_and_undo_restores(project, script):
    app = EvoApp(root=project.path, model=script(fix_steps()), mode="full_auto",
                 mine_on_start=False)
    calc = project.path / "calc.py"
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.status.model, what="session")
        await send(pilot, REQUEST)
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen)
                       and app.screen.hunks(), what="review")
        answer = app.main.query_one(AssistantMessage)
        assert "should return `high`" in answer.text
        calls = list(app.main.query(ToolCallView))
        assert [c.tool_name for c in calls] == ["read", "edit", "finish"]
        assert all(c.collapsed for c in calls)
        review = app.screen
        assert [h.unit for h in review.hunks()] == ["0:0"]
        assert calc.read_text() == CALC  # proposed, not applied
        await pilot.press("a")
        await wait_for(pilot, lambda: FIXED in calc.read_text(), what="the accepted hunk")
        assert status(project) == " M calc.py\n"
        await pilot.press("ctrl+z")
        await wait_for(pilot, lambda: calc.read_text() == CALC, what="undo")
        assert status(project) == ""


async def test_rejected_patch_changes_nothing(project, script):
    app = EvoApp(root=project.path, model=script(fix_steps()), mode="full_auto",
                 mine_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.status.model, what="session")
        await send(pilot, REQUEST)
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen), what="review")
        await pilot.press("r")
        await wait_for(pilot, lambda: not isinstance(app.screen, ReviewScreen), what="close")
        await pilot.pause(0.2)
    assert (project.path / "calc.py").read_text() == CALC
    assert status(project) == ""


async def test_ask_mode_denied_edit_proposes_nothing(project, script):
    configure_genome(project.path, refine_attempts=0)
    app = EvoApp(root=project.path, model=script(fix_steps()), mode="ask", mine_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.status.model, what="session")
        await send(pilot, REQUEST)
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen), what="approval")
        assert app.screen.action_name == "edit"
        assert "+        return high" in app.screen.detail
        await pilot.press("n")
        await wait_for(pilot, lambda: not app.status.busy, what="the request to end")
        assert not isinstance(app.screen, ReviewScreen)
        notes = " ".join(str(n.render()) for n in app.main.query("Note"))
        assert "Denied: edit" in notes  # and the model's reply ends the turn: no review
    assert (project.path / "calc.py").read_text() == CALC
    assert status(project) == ""


async def test_mode_key_cycles_modes_and_reaches_the_session(project, script):
    app = EvoApp(root=project.path, model=script([]), mode="ask", mine_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.status.model, what="session")
        seen = []
        for _ in range(3):
            await pilot.press("ctrl+t")
            seen.append((app.status.mode, app.controller.session.approver.mode.value))
    assert seen == [("auto_edits", "auto_edits"), ("full_auto", "full_auto"), ("ask", "ask")]


async def test_ctrl_c_twice_quits_without_touching_the_tree(project, script):
    app = EvoApp(root=project.path, model=script([]), mine_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.status.model, what="session")
        await pilot.press("ctrl+c")
        assert app.is_running
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: not app.is_running, what="quit")
    assert status(project) == ""


async def test_slash_commands_and_file_picker(project, script):
    app = EvoApp(root=project.path, model=script([]), mine_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.status.model, what="session")
        await send(pilot, "/mode full_auto")
        assert app.status.mode == "full_auto"
        await send(pilot, "/nope")
        notes = " ".join(str(n.render()) for n in app.main.query("Note"))
        assert "unknown command /nope" in notes
        await pilot.press("f", "i", "x", "space", "@")
        from evoagent.tui.screens.file_finder import FileFinderScreen

        await wait_for(pilot, lambda: isinstance(app.screen, FileFinderScreen), what="finder")
        await wait_for(pilot, lambda: app.screen.options.option_count, what="files")
        await pilot.press("t", "e", "s", "t", "c", "enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, FileFinderScreen), what="pick")
        assert app.main.prompt.value == "fix @tests/test_calc.py "
