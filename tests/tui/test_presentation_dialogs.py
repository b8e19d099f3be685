"""Dialogs a new user meets first (#13): the help scrolls when the terminal is shorter than
it, and first-run mining stays in sight, percentage and all, while the no-model dialog is
open (and on a narrow main screen)."""

from __future__ import annotations

from conftest import SIZE
from evoagent.tui.app import EvoApp
from evoagent.tui.messages import MiningDone, MiningProgress
from evoagent.tui.screens.help import HelpScreen
from evoagent.tui.screens.no_model import NoModelScreen
from evoagent.tui.widgets.mining_bar import MiningBar
from helpers import wait_for
from textual import events
from textual.widget import Widget


def scroll_event(widget: Widget) -> events.MouseScrollDown:
    """A wheel turn over `widget`, as a terminal driver posts it."""
    x, y = widget.region.offset + (2, 2)
    return events.MouseScrollDown(widget=None, x=x, y=y, delta_x=0, delta_y=1, button=0,
                                  shift=False, meta=False, ctrl=False, screen_x=x, screen_y=y)


async def test_help_scrolls_with_keys_and_the_wheel(project):
    app = EvoApp(root=project.path, mine_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, NoModelScreen), what="no-model")
        await pilot.press("escape")
        app.main.prompt.value = "/help"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        dialog = app.screen.query_one("#help-dialog")
        await wait_for(pilot, lambda: dialog.max_scroll_y > 0, what="help taller than 24 rows")
        await pilot.press("down", "down")
        await wait_for(pilot, lambda: dialog.scroll_y > 0, what="arrow scroll")
        await pilot.press("end")
        await wait_for(pilot, lambda: dialog.scroll_y == dialog.max_scroll_y, what="end")
        await pilot.press("home")
        await wait_for(pilot, lambda: dialog.scroll_y == 0, what="home")
        app.post_message(scroll_event(dialog))
        await wait_for(pilot, lambda: dialog.scroll_y > 0, what="wheel scroll")


def shown_whole(widget: Widget, within: Widget) -> bool:
    """`widget` is on the top screen, inside `within` and not covered where it starts."""
    region = widget.region
    screen = widget.screen
    return (widget.screen is widget.app.screen and region.width > 0
            and within.region.contains_region(region)
            and screen.region.contains_region(region)
            and screen.get_widget_at(*region.offset)[0] is widget)


async def test_first_run_mining_stays_in_sight_over_the_no_model_dialog(project):
    app = EvoApp(root=project.path, mine_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, NoModelScreen), what="no-model")
        dialog = app.screen
        await wait_for(pilot, lambda: dialog.query(MiningBar), what="the dialog's bar")
        app.post_message(MiningProgress(40, 120))  # as the controller posts it
        bar = dialog.query_one(MiningBar)
        await wait_for(pilot, lambda: bar.display and bar.region.height, what="dialog bar")
        percentage = bar.query_one("#percentage")
        assert str(percentage.render()) == "33%"
        assert shown_whole(percentage, bar)
        assert "40/120" in str(bar.query_one("#mining-label").render())

        await pilot.press("escape")  # the main screen's bar carries on where it was
        await wait_for(pilot, lambda: app.screen is app.main, what="main")
        app.main.prompt.value = "fix it"
        await pilot.press("enter")  # no model: the dialog again, with the progress so far
        await wait_for(pilot, lambda: isinstance(app.screen, NoModelScreen), what="again")
        bar = app.screen.query_one(MiningBar)
        await wait_for(pilot, lambda: bar.display and bar.region.height, what="seeded bar")
        assert str(bar.query_one("#percentage").render()) == "33%"
        app.post_message(MiningDone(120, 120))
        await wait_for(pilot, lambda: not bar.display, what="bar gone")
        assert not app.main.mining_bar.display


async def test_mining_percentage_is_whole_on_a_narrow_main_screen(project):
    app = EvoApp(root=project.path, mine_on_start=False)
    async with app.run_test(size=(44, SIZE[1])) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, NoModelScreen), what="no-model")
        await pilot.press("escape")
        app.post_message(MiningProgress(99, 100))
        bar = app.main.mining_bar
        await wait_for(pilot, lambda: bar.display and bar.region.height, what="main bar")
        percentage = bar.query_one("#percentage")
        assert str(percentage.render()) == "99%"
        assert shown_whole(percentage, bar)
