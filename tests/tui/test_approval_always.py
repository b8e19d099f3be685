"""The approval screen with a real approver: "allow always" is asked once and remembered in
the repository's approvals file; a compound command offers no "always" and is asked each
time. The host app answers approvals the way the app does: the agent's thread emits, the
screen is pushed, its choice answers the event."""

from __future__ import annotations

import json

from evoagent.agent.approval import ApprovalMode, Approver
from evoagent.agent.approval_rules import ApprovalRules
from evoagent.agent.events import ApprovalNeeded
from evoagent.agent.tools import call_tool
from evoagent.agent.tools.base import ToolContext
from evoagent.tui.screens.approval import ApprovalScreen
from helpers import wait_for
from textual import work
from textual.app import App
from textual.widgets import Button, Label

SIZE = (90, 24)


class AgentHost(App):
    """Runs `commands` through the real `run` tool on a worker thread, asking `approver`."""

    def __init__(self, state_dir, commands: list[str]) -> None:
        super().__init__()
        self.commands = commands
        # A question left open by a failing test must not keep the thread (and pytest) alive.
        self.approver = Approver(ApprovalMode.ASK, self.emit, timeout=60,
                                 rules=ApprovalRules.for_repo(state_dir))
        self.asked: list[ApprovalNeeded] = []
        self.ran: list[str] = []
        self.done = False

    def on_mount(self) -> None:
        self.run_worker(self.agent, thread=True)

    def on_unmount(self) -> None:
        self.approver.refuse_pending()

    def agent(self) -> None:
        def run_command(command: str, timeout: float) -> tuple[int, str]:
            self.ran.append(command)
            return 0, "ok"

        ctx = ToolContext(workspace=self.approver.rules.path.parent, run_command=run_command,
                          approve=self.approver.approve)
        for command in self.commands:
            call_tool("run", {"command": command}, ctx)
        self.done = True

    def emit(self, event) -> None:  # on the agent's thread
        if isinstance(event, ApprovalNeeded):
            self.asked.append(event)
            self.call_from_thread(self.ask, event)

    @work
    async def ask(self, event: ApprovalNeeded) -> None:
        choice = await self.push_screen_wait(ApprovalScreen.for_event(event))
        event.answer(choice.allowed, always=choice.always)


def asking(app: AgentHost) -> bool:
    """An approval screen is up and composed."""
    return isinstance(app.screen, ApprovalScreen) and bool(app.screen.query("#deny"))


def label(screen, selector: str) -> str:
    return str(screen.query_one(selector, Label).render())


async def test_allow_always_is_asked_once_and_remembered_for_the_repository(tmp_path):
    app = AgentHost(tmp_path, ["pytest -q tests/test_calc.py", "pytest -q tests/test_calc.py"])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: asking(app), what="approval")
        assert "commands starting with pytest" in label(app.screen, "#approval-remember")
        await pilot.press("a")
        await wait_for(pilot, lambda: app.done, what="both commands")
        assert not isinstance(app.screen, ApprovalScreen)
    assert app.ran == ["pytest -q tests/test_calc.py"] * 2
    assert len(app.asked) == 1
    saved = json.loads((tmp_path / "approvals.json").read_text())
    assert saved["commands"] == [["pytest"]]


async def test_a_compound_command_offers_no_always_and_is_asked_every_time(tmp_path):
    command = "pytest -q; rm -rf build"
    app = AgentHost(tmp_path, [command, command])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: asking(app), what="approval")
        first = app.screen
        assert not first.query("#allow-always") and not first.query("#approval-remember")
        await pilot.press("a")  # not offered: nothing happens
        await pilot.pause(0.1)
        assert app.screen is first
        await pilot.press("y")
        await wait_for(pilot, lambda: len(app.asked) == 2 and asking(app)
                       and app.screen is not first, what="the second question")
        await pilot.press("n")
        await wait_for(pilot, lambda: app.done, what="the end")
    assert app.ran == [command]
    assert not (tmp_path / "approvals.json").exists()


async def test_the_buttons_answer_like_the_keys_and_a_damaged_file_is_shown_once(tmp_path):
    (tmp_path / "approvals.json").write_text("{oops")
    app = AgentHost(tmp_path, ["make test", "make test", "make test"])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: asking(app), what="approval")
        assert "approvals.json is damaged (not JSON" in label(app.screen, "#approval-notice")
        await pilot.click("#allow")
        await wait_for(pilot, lambda: len(app.asked) == 2 and asking(app),
                       what="the second question")
        assert not app.screen.query("#approval-notice")  # one warning, not one per question
        assert str(app.screen.query_one("#allow-always", Button).label) == "Allow always (a)"
        await pilot.click("#allow-always")
        await wait_for(pilot, lambda: app.done, what="the end")
    assert app.ran == ["make test"] * 3 and len(app.asked) == 2
    assert json.loads((tmp_path / "approvals.json").read_text())["commands"] == [["make", "test"]]
    assert [p.read_text() for p in tmp_path.glob("approvals.json.damaged-*")] == ["{oops"]


class ScreenHost(App):
    def on_mount(self) -> None:
        event = ApprovalNeeded("command", "python -m pytest -x tests/test_calc.py",
                               remember="python -m pytest",
                               notice=".evoagent/approvals.json is damaged (not JSON: "
                                      "JSONDecodeError): no \"allow always\" rule applies")
        self.push_screen(ApprovalScreen.for_event(event))


def test_approval_screen_snapshot(snap_compare):
    assert snap_compare(ScreenHost(), terminal_size=SIZE)
