"""The request input: slash commands with completion, `@` to pick a file."""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.message import Message
from textual.suggester import SuggestFromList
from textual.widgets import Input

SLASH_COMMANDS = {
    "/help": "keys and commands",
    "/model": "show the model, or /model NAME to switch",
    "/mode": "cycle approval mode, or /mode ask|auto_edits|full_auto",
    "/undo": "undo the last accepted change",
    "/mine": "mine new history into memory",
    "/recall": "/recall QUERY: search memories and knowledge",
    "/runs": "past runs",
    "/evolve": "the hyperagent's variants: diff, promote, roll back",
}


class PromptInput(Input):
    """Posts `PickFile` when `@` is typed; Enter submits as usual."""

    DEFAULT_CSS = """
    PromptInput { margin: 0; }
    """

    @dataclass
    class PickFile(Message):
        """The person typed `@`: offer the fuzzy file finder."""

        input: PromptInput

    def __init__(self, **kwargs) -> None:
        super().__init__(
            placeholder="Ask for a change · / for commands · @ to add a file",
            suggester=SuggestFromList(list(SLASH_COMMANDS), case_sensitive=False),
            **kwargs,
        )

    async def _on_key(self, event: events.Key) -> None:
        before = self.value[: self.cursor_position]
        if event.character == "@" and (not before or before.endswith(" ")):
            event.prevent_default()
            event.stop()
            self.post_message(self.PickFile(self))
            return
        await super()._on_key(event)

    def insert_file(self, path: str) -> None:
        """Insert `@path ` at the cursor."""
        self.insert_text_at_cursor(f"@{path} ")
