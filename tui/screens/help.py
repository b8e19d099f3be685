"""Keys and slash commands, in a dialog that scrolls (keys, wheel) when the terminal is
shorter than the text."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from ..widgets.prompt_input import SLASH_COMMANDS

KEYS = """\
| key | what |
|---|---|
| Enter | send the request |
| @ | pick a file into the request |
| Ctrl+T | cycle the approval mode (ask → auto-edits → full-auto) |
| Ctrl+Z | undo the last accepted change |
| F2 / F3 / F4 | memory / runs / evolution |
| review: a · r · Esc | apply the selected hunks · reject · close without deciding (it stays pending) |
| review: space · f · c · k · v | toggle the hunk · the file · also commit · keep as knowledge · split view |
| memory: / · x | search · retract the selected knowledge (★) |
| runs: Enter · r · g | review the patch · resume in the conversation · reload |
| evolution: d · p · x | the variant's genome diff · promote (scores on test, asks) · reject |
| evolution: b · g | roll main back before the last promotion · reload |
| F9 | copy mode: release the mouse so the terminal selects text |
| Ctrl+P | command palette |
| Ctrl+C | stop the request; twice quits · Ctrl+Q quits |
"""


class HelpScreen(ModalScreen[None]):
    CSS_PATH = "help.tcss"
    BINDINGS = [Binding("escape,q", "close", "Close")]

    def compose(self) -> ComposeResult:
        known = SLASH_COMMANDS
        commands = "\n".join(f"| `{name}` | {text} |" for name, text in known.items())
        text = f"# Help\n\n{KEYS}\n| command | what |\n|---|---|\n{commands}\n"
        # Focused (the only focusable): arrows, Page Up/Down, Home/End and the wheel scroll it.
        with VerticalScroll(id="help-dialog"):
            yield Markdown(text)

    def action_close(self) -> None:
        self.dismiss(None)
