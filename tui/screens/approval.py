"""The agent asks to edit a file or run a command: allow or deny. Dismisses with a bool."""

from __future__ import annotations

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


class ApprovalScreen(ModalScreen[bool]):
    CSS_PATH = "approval.tcss"
    BINDINGS = [
        Binding("y", "allow", "Allow"),
        Binding("n,escape", "deny", "Deny"),
    ]

    def __init__(self, action: str, detail: str) -> None:
        super().__init__()
        self.action_name = action
        self.detail = detail

    def compose(self) -> ComposeResult:
        with Vertical(id="approval-dialog"):
            yield Label(ACTION_TITLES.get(self.action_name, f"Approve: {self.action_name}"),
                        id="approval-title", markup=False)
            with VerticalScroll(id="approval-detail"):
                yield Static(Text(self.detail[:DETAIL_CHARS]))
            with Horizontal(id="approval-buttons"):
                yield Button("Allow (y)", variant="success", id="allow")
                yield Button("Deny (n)", variant="error", id="deny")

    @on(Button.Pressed, "#allow")
    def action_allow(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#deny")
    def action_deny(self) -> None:
        self.dismiss(False)
