"""The main screen: the conversation, the request input and the status bar."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from textual import getters, on, work
from textual.app import ComposeResult
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer

from ..prompt_history import session_history
from ..state import StatusInfo
from ..widgets.conversation import Conversation
from ..widgets.mining_bar import MiningBar
from ..widgets.prompt_input import SLASH_COMMANDS, PromptInput
from ..widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from ..app import EvoApp

MODES = ("ask", "auto_edits", "full_auto")


class MainScreen(Screen):
    CSS_PATH = "main.tcss"
    AUTO_FOCUS = "PromptInput"

    status: reactive[StatusInfo] = reactive(StatusInfo)

    conversation = getters.query_one(Conversation)
    prompt = getters.query_one(PromptInput)
    mining_bar = getters.query_one(MiningBar)

    @property
    def evo(self) -> EvoApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Conversation(id="conversation")
        yield PromptInput(id="prompt", history=partial(session_history, self.evo.controller))
        yield MiningBar()
        yield StatusBar(id="status").data_bind(info=MainScreen.status)
        yield Footer()

    def on_mount(self) -> None:
        self.status = self.evo.status

    # -- called by the app (attributes down) -----------------------------------------

    async def show_event(self, event) -> None:
        await self.conversation.add_event(event)

    def show_outcome(self, outcome: Any) -> None:
        if outcome.status == "answered":
            return  # the reply is in the conversation already; nothing to review
        files = len(outcome.files)
        text = f"Run {outcome.run_id}: {outcome.status}"
        error = (outcome.report or {}).get("error")
        if error:  # the model failed mid-turn; its best attempt (if any) is still reviewed
            self.note(f"The model failed: {error}", error=True)
        if outcome.patch.strip():
            text += f", {files} file(s) changed — opening the review"
        else:
            text += ", no change proposed"
        self.note(text, success=outcome.status == "fixed")

    def note(self, text: str, error: bool = False, success: bool = False) -> None:
        kind = "error" if error else "success" if success else ""
        self.conversation.add_note(text, kind)

    def mining(self, done: int, total: int) -> None:
        self.mining_bar.show_progress(done, total)

    def mining_done(self) -> None:
        self.mining_bar.finish()

    # -- input ------------------------------------------------------------------------

    @on(PromptInput.Submitted, "#prompt")
    async def _submitted(self, event: PromptInput.Submitted) -> None:
        text = event.text.strip()  # the input has cleared itself and kept it in its history
        if not text:
            return
        if text.startswith("/"):
            await self.slash(text)
            return
        await self.conversation.add_request(text)
        self.evo.send_request(text)

    async def slash(self, text: str) -> None:
        command, _, arg = text.partition(" ")
        arg = arg.strip()
        app = self.evo
        if command == "/help":
            app.action_show_help()
        elif command == "/mode":
            if arg and arg not in MODES:
                self.note(f"unknown mode {arg!r}: choose {', '.join(MODES)}", error=True)
            elif arg:
                app.set_mode(arg)
                self.note(f"Approval mode: {arg}")
            else:
                app.action_cycle_mode()
        elif command == "/model":
            if arg:
                app.switch_model(arg)
            else:
                self.note(f"Model: {self.status.model or 'none'}"
                          + ("" if self.status.model else f" — {app.no_model_hint}"))
        elif command == "/undo":
            app.action_undo()
        elif command == "/mine":
            app.action_mine()
            self.note("Mining new history…")
        elif command == "/recall":
            app.show_recall(arg)
        elif command == "/runs":
            app.action_show_runs()
        elif command == "/evolve":
            app.action_show_evolution()
        elif command == "/ask":
            if not arg:
                self.note("/ask QUESTION: the agent reads the code and answers; nothing changes",
                          error=True)
                return
            await self.conversation.add_request(f"/ask {arg}")
            app.send_request(arg, read_only=True)
        elif command == "/new":
            app.new_conversation()
        elif command == "/sessions":
            app.show_conversations(arg)
        elif command == "/compact":
            app.compact()
        else:
            known = ", ".join(SLASH_COMMANDS)
            self.note(f"unknown command {command}: try {known}", error=True)

    @on(PromptInput.PickFile)
    @work
    async def _pick_file(self, event: PromptInput.PickFile) -> None:
        from .file_finder import FileFinderScreen

        path = await self.app.push_screen_wait(FileFinderScreen(self.evo.controller.root_path()))
        if path:
            event.input.insert_file(path)
        event.input.focus()
