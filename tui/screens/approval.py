"""The agent asks to edit a file or run a command: allow once, allow always, or deny.

Dismisses with an `ApprovalChoice`; the app answers the event with it
(`event.answer(choice.allowed, always=choice.always)`), and the agent's approver stores
the rule an "allow always" names. The rule shown is exactly what will be remembered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evoagent.agent.terminal_text import one_line
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

DETAIL_CHARS = 4000

ACTION_TITLES = {
    "edit": "The agent wants to edit a file (in its sandbox)",
    "write": "The agent wants to write a file (in its sandbox)",
    "command": "The agent wants to run a command (in its sandbox)",
}


@dataclass(frozen=True)
class ApprovalChoice:
    """What the person answered; true when allowed (once or always)."""

    allowed: bool
    always: bool = False

    def __bool__(self) -> bool:
        return self.allowed


def remembers(action: str, remember: str) -> Text:
    """What "allow always" will remember, for `remember` (the rule's label from the
    approver), the rule itself in bold; empty when it is not offered."""
    if not remember:
        return Text("")
    if action == "command" and remember.startswith("mcp "):
        what = [("every call of the MCP tool ", ""), (one_line(remember[4:], 120), "bold")]
    elif action == "command":
        what = [("commands starting with ", ""), (one_line(remember, 120), "bold")]
    else:
        what = [({"edit": "every edit", "write": "every file write"}.get(action)
                 or one_line(remember, 60), "bold")]
    return Text.assemble("Allow always remembers, for this repository: ", *what)


class ApprovalScreen(ModalScreen[ApprovalChoice]):
    CSS_PATH = "approval.tcss"
    BINDINGS = [
        Binding("y", "allow", "Allow once"),
        Binding("a", "allow_always", "Allow always"),
        Binding("n,escape", "deny", "Deny"),
    ]

    def __init__(self, action: str, detail: str, remember: str = "", notice: str = "") -> None:
        super().__init__()
        self.action_name = action
        self.detail = detail
        self.remember = remember
        self.notice = notice

    @classmethod
    def for_event(cls, event: Any) -> ApprovalScreen:
        """The screen for an `ApprovalNeeded` event."""
        return cls(event.action, event.detail, event.remember, event.notice)

    def compose(self) -> ComposeResult:
        with Vertical(id="approval-dialog"):
            yield Label(ACTION_TITLES.get(self.action_name, f"Approve: {one_line(self.action_name)}"),
                        id="approval-title", markup=False)
            if self.notice:
                yield Label(one_line(self.notice), id="approval-notice", markup=False)
            with VerticalScroll(id="approval-detail"):
                yield Static(Text(self.detail[:DETAIL_CHARS]))
            if self.remember:
                yield Label(remembers(self.action_name, self.remember), id="approval-remember",
                            markup=False)
            with Horizontal(id="approval-buttons"):
                yield Button("Allow once (y)", variant="success", id="allow")
                if self.remember:
                    yield Button("Allow always (a)", variant="primary", id="allow-always")
                yield Button("Deny (n)", variant="error", id="deny")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # No rule offered (a compound command, say): no key and no footer entry for it.
        return bool(self.remember) if action == "allow_always" else True

    @on(Button.Pressed, "#allow")
    def action_allow(self) -> None:
        self.dismiss(ApprovalChoice(True))

    @on(Button.Pressed, "#allow-always")
    def action_allow_always(self) -> None:
        if self.remember:
            self.dismiss(ApprovalChoice(True, always=True))

    @on(Button.Pressed, "#deny")
    def action_deny(self) -> None:
        self.dismiss(ApprovalChoice(False))
