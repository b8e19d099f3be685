"""Runs, memory and recall flows: open a past run's patch in the review, resume a run into
the conversation, retract a knowledge record after confirming, /recall in the conversation."""

from __future__ import annotations

import json

from clamp_project import CALC, FIX_PATCH
from conftest import FIXED, REQUEST, SIZE
from evoagent.memory.knowledge import Knowledge
from evoagent.tui.app import EvoApp
from evoagent.tui.screens.confirm import ConfirmScreen
from evoagent.tui.screens.main import MainScreen
from evoagent.tui.screens.memory import MemoryScreen
from evoagent.tui.screens.review import ReviewScreen
from evoagent.tui.screens.runs import RunsScreen
from helpers import wait_for

RUN_ID = "20240102-090000-clamp-upper-bound-a1b2"


def write_run(project, patch: str = FIX_PATCH) -> None:
    run_dir = project.path / ".evoagent" / "runs" / RUN_ID
    run_dir.mkdir(parents=True)
    report = {"run_id": RUN_ID, "issue": REQUEST, "status": "fixed", "cost_usd": 0.01,
              "summary": "clamp returns high above the upper bound"}
    (run_dir / "report.json").write_text(json.dumps(report))
    (run_dir / "patch.diff").write_text(patch)


def notes(app) -> str:
    return "\n".join(str(n.render()) for n in app.main.query("Note"))


async def open_runs(pilot) -> RunsScreen:
    app = pilot.app
    await wait_for(pilot, lambda: app.status.model, what="session")
    await pilot.press("f3")
    screen = app.screen
    assert isinstance(screen, RunsScreen)
    await wait_for(pilot, lambda: len(screen.runs) == 1, what="runs")
    return screen


async def test_runs_screen_opens_a_runs_patch_in_the_review(project, script):
    write_run(project)
    app = EvoApp(root=project.path, model=script([]), mine_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await open_runs(pilot)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen),
                       what=f"review {[n.message for n in app._notifications]}", timeout=10)
        review = app.screen
        assert review.request.key == RUN_ID
        assert "+        return high" in review.request.diff
        assert [h.unit for h in review.hunks()] == ["0:0"]
        await pilot.press("r")  # reject: back to the runs, nothing applied
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), what="back")
    assert (project.path / "calc.py").read_text() == CALC


async def test_resumed_run_comes_back_into_the_conversation(project, script):
    write_run(project)
    app = EvoApp(root=project.path, model=script([]), mine_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await open_runs(pilot)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen), what="review")
        assert isinstance(app.screen_stack[-2], MainScreen)  # the runs screen closed
        assert f"Resumed run {RUN_ID}: {REQUEST}" in notes(app)
        assert app.main.prompt.value == REQUEST
        await pilot.press("a")
        await wait_for(pilot, lambda: FIXED in (project.path / "calc.py").read_text(),
                       what="the accepted hunk")
        assert isinstance(app.screen, MainScreen)


def add_knowledge(app) -> Knowledge:
    record = Knowledge(intent="clamp returns the upper bound above it",
                       solution="return high in the upper branch", diff=FIX_PATCH,
                       files=["calc.py"], approved_by="t", run_id=RUN_ID, base_sha="0" * 40)
    return app.controller.ctx.knowledge.add(record)


async def search(pilot, screen: MemoryScreen, query: str) -> None:
    screen.hits.clear_options()
    screen.search_input.focus()
    screen.search_input.value = query
    await pilot.press("enter")
    await wait_for(pilot, lambda: screen.hits.option_count, what="hits")


async def test_memory_retract_knowledge_after_confirming_then_search_omits_it(project, script):
    app = EvoApp(root=project.path, model=script([]), mine_on_start=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.status.memories == 2, what="mining")
        record = add_knowledge(app)
        await pilot.press("f2")
        screen = app.screen
        assert isinstance(screen, MemoryScreen)
        await search(pilot, screen, "clamp upper bound")
        assert screen.hits.get_option_at_index(0).id == f"k:{record.id}"
        assert screen.selected.id == record.id
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        await pilot.press("n")  # declined: still there
        await wait_for(pilot, lambda: app.screen is screen, what="declined")
        await pilot.pause(0.2)
        assert app.controller.ctx.knowledge.get(record.id).active
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        await pilot.press("y")
        await wait_for(pilot, lambda: not app.controller.ctx.knowledge.get(record.id).active,
                       what="retraction")
        await search(pilot, screen, "clamp upper bound")
        ids = [screen.hits.get_option_at_index(i).id for i in range(screen.hits.option_count)]
        assert f"k:{record.id}" not in ids
        assert any(i.startswith("m:") for i in ids)


async def test_recall_shows_matching_commits_in_the_conversation(project, script):
    app = EvoApp(root=project.path, model=script([]), mine_on_start=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.status.memories == 2, what="mining")
        app.main.prompt.value = "/recall parser bounds"
        await pilot.press("enter")
        await wait_for(pilot, lambda: "Recall 'parser bounds'" in notes(app), what="recall")
        assert isinstance(app.screen, MainScreen)
        text = notes(app)
        assert "Document the clamp parser bounds (#12)" in text
        lines = text[text.index("Recall 'parser bounds'"):].splitlines()
        assert lines[1].split(" ", 3)[-1] == "Document the clamp parser bounds (#12)"


async def test_a_run_the_model_failure_ended_still_shows_its_best_attempt(project, script):
    from conftest import BUGGY
    from evoagent.agent.model import litellm_module
    from evoagent.agent.scripted_provider import ScriptedReply, ScriptedToolCall

    wrong = {"path": "calc.py", "search": BUGGY, "replace": BUGGY.replace("low", "high - 1")}
    model = script([
        ScriptedReply(tool_calls=[ScriptedToolCall("edit", {"edits": [wrong]})]),
        ScriptedReply(tool_calls=[ScriptedToolCall("finish", {"summary": "off by one"})]),
        litellm_module().BadRequestError(message="provider down", model="scripted",
                                         llm_provider="scripted"),
    ])
    app = EvoApp(root=project.path, model=model, mode="full_auto", mine_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.status.model, what="session")
        app.main.prompt.value = REQUEST
        await pilot.press("enter")
        await wait_for(pilot, lambda: "provider down" in notes(app), what="the error", timeout=60)
        screen = await open_runs(pilot)
        [run] = screen.runs
        assert run.status == "error"
        assert [str(cell) for cell in screen.table.get_row_at(0)][3] == "yes"  # the patch column
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen), what="review")
        review = app.screen
        assert "+        return high - 1" in review.request.diff
        assert "attempt 2" in review.request.metadata["stopped"]
        assert "provider down" in review.request.metadata["stopped"]
