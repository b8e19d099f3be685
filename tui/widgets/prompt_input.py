"""The request input: several lines, slash commands with completion, `@` to pick a file, and
Up/Down through the prompts sent before (kept per repository, see `prompt_history`).

Enter sends. A new line is Shift+Enter where the terminal tells it from Enter (the kitty
keyboard protocol, which Textual asks for) and Ctrl+J everywhere: a terminal without that
protocol sends a bare carriage return for Shift+Enter, which nothing can tell from Enter. A
paste arrives as one `Paste` event (bracketed paste), so its newlines stay newlines and never
send the request.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from textual import events
from textual.actions import SkipAction
from textual.binding import Binding
from textual.message import Message
from textual.widgets import TextArea
from textual.worker import get_current_worker

from ..prompt_history import LIMIT, PromptHistory

SLASH_COMMANDS = {
    "/help": "keys and commands",
    "/model": "show the model, or /model NAME to switch",
    "/mode": "cycle approval mode, or /mode ask|auto_edits|full_auto",
    "/undo": "undo the last accepted change",
    "/mine": "mine new history into memory",
    "/recall": "/recall QUERY: search memories and knowledge",
    "/runs": "past runs",
    "/evolve": "the hyperagent's variants: diff, promote, roll back",
    "/ask": "/ask QUESTION: answer from the code, change nothing",
    "/new": "start a new conversation (this one stays saved)",
    "/sessions": "saved conversations; /sessions ID reopens one",
    "/compact": "summarize older turns to free the model's context",
}

NEWLINE_KEYS = frozenset({"shift+enter", "ctrl+j", "alt+enter"})
"""Keys that insert a new line instead of sending (Alt+Enter too, where the terminal reports it)."""

PLACEHOLDER = "Ask for a change · / commands · @ add a file · Ctrl+J new line · ↑ history"


class PromptInput(TextArea):
    """One line tall when empty, growing with its text to 8 lines, then scrolling.

    `history`, when given, opens the repository's prompt history; it may block (it is called
    once, in a thread worker). Until it returns, prompts are remembered in memory and written
    once it has.
    """

    DEFAULT_CSS = """
    PromptInput {
        height: auto;
        max-height: 10;  /* 8 lines and the border */
        margin: 0;
    }
    """

    BINDINGS = [
        Binding("tab", "complete", "Complete a command", show=False),
        # Ctrl+Z belongs to the app (undo the last accepted change): the text area's own undo
        # would take it whenever the prompt has focus, which is nearly always. This binding
        # replaces that one and is always disabled (`check_action`), so the key and the footer
        # go on to the app's. Super+Z still undoes typing.
        Binding("ctrl+z", "defer_to_app", show=False),
    ]

    @dataclass
    class Submitted(Message):
        """Enter: the request, lines joined by "\\n" (never blank)."""

        text: str
        prompt: PromptInput

        @property
        def control(self) -> PromptInput:
            return self.prompt

    @dataclass
    class PickFile(Message):
        """The person typed `@` at a word start: offer the fuzzy file finder."""

        input: PromptInput

    def __init__(self, history: Callable[[], PromptHistory | None] | None = None,
                 **kwargs) -> None:
        super().__init__(placeholder=PLACEHOLDER, highlight_cursor_line=False, **kwargs)
        self._open_history = history
        self._store: PromptHistory | None = None
        self._entries: list[str] = []
        """Sent prompts, oldest first."""
        self._recalled: int | None = None
        """The index in `_entries` on show; None: the draft (what was being typed)."""
        self._draft = ""

    def on_mount(self) -> None:
        if self._open_history is not None:
            self.run_worker(self._load_history, thread=True, group="prompt-history",
                            exit_on_error=False, name="prompt history")

    # -- text -------------------------------------------------------------------------

    @property
    def value(self) -> str:
        """The text, lines joined by "\\n" whatever newlines a paste brought."""
        return "\n".join(self.document.lines)

    @value.setter
    def value(self, text: str) -> None:
        self.load_text(text)
        self.move_cursor(self.document.end)

    def insert_file(self, path: str) -> None:
        """Insert `@path ` at the cursor."""
        self.replace(f"@{path} ", *self.selection, maintain_selection_offset=False)

    def _at_word_start(self) -> bool:
        row, column = self.cursor_location
        before = self.document.get_line(row)[:column]
        return not before or before[-1].isspace()

    # -- keys -------------------------------------------------------------------------

    async def _on_key(self, event: events.Key) -> None:
        # Runs before TextArea's own handler (which would insert "\n" for Enter); a handled
        # key stops there.
        if self.read_only:
            return
        if event.key == "enter":
            self._handled(event)
            self.action_submit()
        elif event.key in NEWLINE_KEYS:
            self._handled(event)
            self.replace("\n", *self.selection, maintain_selection_offset=False)
        elif event.character == "@" and self._at_word_start():
            self._handled(event)
            self.post_message(self.PickFile(self))

    @staticmethod
    def _handled(event: events.Key) -> None:
        event.stop()
        event.prevent_default()

    def action_submit(self) -> None:
        text = self.value
        if not text.strip():
            return
        self._remember(text.strip())
        self._recalled, self._draft = None, ""
        self.load_text("")
        self.post_message(self.Submitted(text, self))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "defer_to_app":
            return False
        return super().check_action(action, parameters)

    # -- slash commands ---------------------------------------------------------------

    def _command_typed(self) -> str:
        """The `/command` being typed: the whole text, one word, the cursor at its end."""
        if self.document.line_count != 1:  # checked first: this runs on every cursor move
            return ""
        text = self.document.get_line(0)
        if (not text.startswith("/") or any(c.isspace() for c in text)
                or self.cursor_location != self.document.end):
            return ""
        return text

    def update_suggestion(self) -> None:
        """Ghost text completing a slash command (Right accepts it, as the old input did)."""
        typed = self._command_typed().lower()
        match = next((c for c in SLASH_COMMANDS if c.startswith(typed) and c != typed), "")
        self.suggestion = match[len(typed):] if typed and match else ""

    def watch_selection(self) -> None:
        # The ghost text is drawn at the cursor: once the cursor moves, it may no longer apply.
        self.update_suggestion()

    def action_complete(self) -> None:
        """Tab: complete a unique command prefix (or up to where the candidates differ); with
        no command to complete, Tab moves the focus as usual."""
        typed = self._command_typed().lower()
        matches = [c for c in SLASH_COMMANDS if c.startswith(typed)] if typed else []
        if not matches:
            raise SkipAction()
        completion = matches[0] + " " if len(matches) == 1 else os.path.commonprefix(matches)
        self.replace(completion, (0, 0), self.document.end, maintain_selection_offset=False)

    # -- history ----------------------------------------------------------------------

    def action_cursor_up(self, select: bool = False) -> None:
        first_row = self.navigator.is_first_wrapped_line(self.cursor_location)
        if select or not first_row or not self._recall(-1):
            super().action_cursor_up(select)

    def action_cursor_down(self, select: bool = False) -> None:
        last_row = self.navigator.is_last_wrapped_line(self.cursor_location)
        if select or not last_row or not self._recall(+1):
            super().action_cursor_down(select)

    def _recall(self, step: int) -> bool:
        """Show the previous (-1) or next (+1) prompt, past the newest the draft; False when
        there is none that way. Up leaves the cursor on the first line, Down on the last, so
        pressing on walks the history whatever the prompts' lengths."""
        newest = len(self._entries)
        shown = newest if self._recalled is None else self._recalled
        target = shown + step
        if not 0 <= target <= newest:
            return False
        if self._recalled is None:
            self._draft = self.value
        self._recalled = None if target == newest else target
        self.load_text(self._draft if target == newest else self._entries[target])
        if step < 0:
            self.move_cursor((0, len(self.document.get_line(0))))
        else:
            self.move_cursor(self.document.end)
        return True

    def _remember(self, text: str) -> None:
        if not self._entries or self._entries[-1] != text:
            self._entries.append(text)
            del self._entries[:-LIMIT]
        if self._store is not None:
            self._save([text])

    def _load_history(self) -> None:
        """Thread worker: open and read the history, then hand it to the widget."""
        store = self._open_history() if self._open_history else None
        if store is None:
            return
        entries = store.load()
        if get_current_worker().is_cancelled:  # the app is closing
            return
        self.app.call_from_thread(self._history_loaded, store, entries)

    def _history_loaded(self, store: PromptHistory, entries: list[str]) -> None:
        sent = self._entries  # while the history was being read
        self._store, self._entries = store, entries
        # The index was into the list just replaced; the next Up starts from the newest.
        self._recalled = None
        for text in sent:
            if not self._entries or self._entries[-1] != text:
                self._entries.append(text)
        del self._entries[:-LIMIT]
        if sent:
            self._save(sent)

    def _save(self, texts: list[str]) -> None:
        def append_all(store: PromptHistory) -> None:
            for text in texts:
                store.append(text)

        assert self._store is not None
        self.run_worker(partial(append_all, self._store), thread=True, group="prompt-history",
                        exit_on_error=False, name="save prompt")
