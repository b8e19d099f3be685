"""A running command's output shows live in its tool-call block (the tail, a ticking timer)
until its result arrives: the conversation fed events as the app receives them, then a
scripted session in a real repository and sandbox."""

from __future__ import annotations

from conftest import SIZE, call
from evoagent.agent import events as ev
from evoagent.tui.app import EvoApp
from evoagent.tui.widgets.command_output import TAIL_LINES, CommandOutput, LiveTail
from evoagent.tui.widgets.conversation import Conversation
from evoagent.tui.widgets.tool_call import ToolCallView
from genome_settings import configure_genome
from helpers import wait_for
from textual.app import App, ComposeResult


class ConversationApp(App):
    def compose(self) -> ComposeResult:
        yield Conversation()


def title(view: ToolCallView) -> str:
    return str(view.title)


def tail_text(view: ToolCallView) -> str:
    return str(view.query_one(LiveTail).render())


async def test_live_tail_and_timer_until_the_result_replaces_them():
    app = ConversationApp()
    async with app.run_test(size=SIZE) as pilot:
        conversation = app.query_one(Conversation)
        await conversation.add_event(ev.ToolCall("c1", "run", {"command": "make test"}))
        await conversation.add_event(ev.CommandOutput("c1", "", 0.0))  # started, silent
        await pilot.pause()
        view = app.query_one(ToolCallView)
        assert view.running and title(view) == "run make test  running 0 s"
        assert not view.query(LiveTail)

        lines = "".join(f"line {i}\n" for i in range(30))
        await conversation.add_event(ev.CommandOutput("c1", lines, 12.0))
        await conversation.add_event(ev.CommandOutput("c1", "[bold]as written[/bold]\n", 12.1))
        await pilot.pause()
        assert title(view) == "run make test  running 12 s"
        shown = tail_text(view).splitlines()
        assert len(shown) == TAIL_LINES and shown[0] == "line 11"
        assert shown[-1] == "[bold]as written[/bold]"  # never read as markup
        assert view.collapsed and view.query_one(LiveTail).region.height == TAIL_LINES
        await wait_for(pilot, lambda: "running 13 s" in title(view), timeout=10,
                       what="the timer to tick")

        await conversation.add_event(ev.CommandRun("make test", 0, lines, 13.2, True))
        await conversation.add_event(ev.ToolResult("c1", "run", "exit code 0\n" + lines))
        await pilot.pause()
        assert not view.running and not view.query(LiveTail)
        assert title(view) == "run make test  ✓"
        assert "exit 0" in str(app.query_one(CommandOutput).title)
        await pilot.pause(1.2)
        assert title(view) == "run make test  ✓"  # the timer is gone, not just paused


async def test_a_finished_request_stops_a_command_left_running():
    app = ConversationApp()
    async with app.run_test(size=SIZE) as pilot:
        conversation = app.query_one(Conversation)
        await conversation.add_event(ev.ToolCall("c1", "run", {"command": "sleep 60"}))
        await conversation.add_event(ev.CommandOutput("c1", "waiting\n", 0.5))
        await conversation.add_event(ev.Finished("cancelled"))
        await pilot.pause()
        view = app.query_one(ToolCallView)
        assert not view.running and not view.query(LiveTail)
        assert title(view) == "run sleep 60"


GO = "go-on"
COMMAND = f"echo first; while [ ! -e {GO} ]; do sleep 0.05; done; echo second"


async def test_a_scripted_session_streams_a_command_into_its_block(project, script):
    configure_genome(project.path, refine_attempts=0)
    model = script([call("run", command=COMMAND), call("finish", summary="looked")])
    app = EvoApp(root=project.path, model=model, mode="full_auto", mine_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.status.model, what="session")
        app.main.prompt.value = "show me the output"
        await pilot.press("enter")

        def live_view() -> ToolCallView | None:
            for view in app.main.query(ToolCallView):
                if view.tool_name == "run" and view.query(LiveTail):
                    return view
            return None

        await wait_for(pilot, lambda: live_view() and "first" in tail_text(live_view()),
                       what="live output")
        view = live_view()
        assert view.running and "running" in title(view)
        assert "second" not in tail_text(view)  # the command waits for us: still running
        [tree] = (project.path / ".evoagent" / "sandboxes").glob("*/tree")
        (tree / GO).touch()
        await wait_for(pilot, lambda: title(view).endswith("✓"), what="the call's result")
        assert not view.running and not view.query(LiveTail)
        await wait_for(pilot, lambda: app.main.query(CommandOutput), what="the command block")
        block = app.main.query_one(CommandOutput)
        assert "exit 0" in str(block.title)
        assert str(block.query_one("Contents > Static").render()) == "first\nsecond\n"
        assert "first\nsecond" in str(view.query_one(".tool-result").render())
        await wait_for(pilot, lambda: not app.status.busy, what="the request to end")
