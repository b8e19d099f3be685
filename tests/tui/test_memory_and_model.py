"""Without a model the app opens, explains how to configure one, and memory still works:
first-run mining in the background, then search finds a mined commit."""

from __future__ import annotations

from conftest import REQUEST, SIZE
from evoagent.agent.model_select import NO_MODEL_HINT
from evoagent.tui.app import EvoApp
from evoagent.tui.screens.memory import MemoryScreen
from evoagent.tui.screens.no_model import NoModelScreen
from evoagent.tui.widgets.status_bar import render_status
from helpers import wait_for


async def test_no_model_opens_explains_and_refuses_requests_without_crashing(project):
    app = EvoApp(root=project.path, mine_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, NoModelScreen), what="no-model")
        assert app.screen.hint.startswith(NO_MODEL_HINT)
        assert "no model" in render_status(app.status).plain
        await pilot.press("escape")
        app.main.prompt.value = REQUEST
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert isinstance(app.screen, NoModelScreen)  # a request shows how to configure one
        assert not app.status.busy


async def test_first_run_mines_in_background_and_memory_search_finds_the_commit(project):
    app = EvoApp(root=project.path, mine_on_start=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.status.memories == 2, what="mining")
        await pilot.press("escape")  # the no-model explanation
        await pilot.press("f2")
        assert isinstance(app.screen, MemoryScreen)
        screen = app.screen
        screen.search_input.value = "parser bounds"
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.hits.option_count, what="hits")
        first = screen.hits.get_option_at_index(0)
        assert "Document the clamp parser bounds (#12)" in str(first.prompt)
        assert screen.selected.subject == "Document the clamp parser bounds (#12)"
        assert screen.selected.paths == ["README.md"]
