"""The evoagent Textual app: chat with the agent, review its diffs, browse memory and runs.

The app wires the non-widget `SessionController` (which owns the agent session and its
threads) to the screens: it receives the controller's messages, keeps the status bar's
`StatusInfo`, and hands events down to the main screen. Screens load on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evoagent.agent.terminal_text import one_line as safe_line
from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import var
from textual.screen import Screen

from .controller import SessionController, next_mode, one_line
from .messages import (
    AgentEvent,
    ConversationResumed,
    MemoryCount,
    MiningDone,
    MiningProgress,
    Notice,
    RequestDone,
    RequestFailed,
    SessionReady,
    SessionUnavailable,
)
from .state import StatusInfo, phase_line
from .terminal_filter import TERMINAL_SAFE

if TYPE_CHECKING:
    from textual.filter import LineFilter
    from textual.notifications import SeverityLevel

    from .screens.main import MainScreen
    from .screens.review import ReviewRequest

QUIT_WINDOW_S = 2.0
"""A second Ctrl+C within this many seconds quits."""


def _memory_screen() -> Screen:
    from .screens.memory import MemoryScreen

    return MemoryScreen()


def _runs_screen() -> Screen:
    from .screens.runs import RunsScreen

    return RunsScreen()


def _evolution_screen() -> Screen:
    from .screens.evolution import EvolutionScreen

    return EvolutionScreen()


def _help_screen() -> Screen:
    from .screens.help import HelpScreen

    return HelpScreen()


class EvoApp(App):
    """`evoagent` with no subcommand. `root`: where the repository is (default: cwd)."""

    TITLE = "evoagent"
    CSS_PATH = "app.tcss"
    SCREENS = {"memory": _memory_screen, "runs": _runs_screen, "evolution": _evolution_screen,
               "help": _help_screen}
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("ctrl+c", "interrupt", "Stop / quit", priority=True, show=False),
        Binding("ctrl+t", "cycle_mode", "Mode", tooltip="Cycle the approval mode"),
        Binding("ctrl+z", "undo", "Undo", tooltip="Undo the last accepted change"),
        Binding("f2", "show_memory", "Memory"),
        Binding("f3", "show_runs", "Runs"),
        # Hidden: the main footer is full at 80 columns; the help and the palette list it.
        Binding("f4", "show_evolution", "Evolution", show=False),
        Binding("f9", "toggle_copy_mode", "Copy mode",
                tooltip="Release the mouse so the terminal can select text"),
    ]

    status: var[StatusInfo] = var(StatusInfo)
    copy_mode: var[bool] = var(False)

    def __init__(
        self,
        root: Path | None = None,
        model: str | None = None,
        mode: str = "ask",
        mine_on_start: bool = True,
        resume: str | None = None,
    ):
        super().__init__()
        self.controller = SessionController(self, root, model, mode, mine_on_start)
        self.resume_on_start = resume
        """A saved conversation to reopen once the session is ready ("" for the last one)."""
        self.status = StatusInfo(mode=mode)
        self._last_interrupt = 0.0
        self._request_base = (0, 0, 0.0)
        self.no_model_hint = ""
        self.mining_progress: tuple[int, int] | None = None
        """(done, total) of the mining under way; None when none is."""

    # -- output -----------------------------------------------------------------------

    def get_line_filters(self) -> list[LineFilter]:
        # Widgets draw commit messages, file names, model text and command output as they
        # are: this last filter keeps their control characters off the terminal.
        return [*super().get_line_filters(), TERMINAL_SAFE]

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        # Notices quote errors, ids and paths that the repository or the model chose: never
        # read them as markup (`[@click=...]` runs an action, a stray `[/b]` crashes).
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    # -- screens ----------------------------------------------------------------------

    def get_default_screen(self) -> Screen:
        from .screens.main import MainScreen

        return MainScreen()

    @property
    def main(self) -> MainScreen:
        return self.screen_stack[0]  # type: ignore[return-value]

    def on_mount(self) -> None:
        # After the first frame is painted: the workers import litellm and lancedb, and
        # imports hold the GIL, which would otherwise delay that frame.
        self.call_after_refresh(self.controller.start)
        self.call_after_refresh(self.warm_up)

    def warm_up(self) -> None:
        """Import litellm and lancedb in the background once the first frame is up, so the
        first request and the first memory search do not wait for them. The same warm-up
        `fix` uses (agent/warmup.py, once per process); the thread worker ends when it has."""
        from evoagent.agent.warmup import start_warmup, wait_warm

        # Started here, on the UI thread: it sets LITELLM_LOCAL_MODEL_COST_MAP (offline cost
        # map) before its thread starts, never while another thread copies the environment.
        start_warmup()
        self.run_worker(wait_warm, thread=True, group="warm-up", exit_on_error=False,
                        name="warm up imports")

    def watch_status(self, status: StatusInfo) -> None:
        if self.screen_stack:
            self.main.status = status

    # -- controller messages ----------------------------------------------------------

    @on(SessionReady)
    def _session_ready(self, message: SessionReady) -> None:
        self.status = self.status.with_(model=message.model or None, mode=message.mode,
                                        isolated=message.isolated, starting=False)
        if message.model:
            self.main.note(f"Ready: {message.model}. Ask for a change or a question, "
                           "or type /help.")
            if self.resume_on_start is not None:
                chosen, self.resume_on_start = self.resume_on_start, None
                self.status = self.status.with_(busy=True, phase="reopening the conversation")
                self.controller.resume_conversation(chosen or None)

    @on(SessionUnavailable)
    def _session_unavailable(self, message: SessionUnavailable) -> None:
        self.status = self.status.with_(model=None, starting=False)
        if message.no_model:
            self.no_model_hint = message.hint
            self.main.note(f"No model: {message.hint}. Memory still works (F2).")
            self.action_show_no_model()
        else:
            self.main.note(f"evoagent: {message.hint}", error=True)

    @on(AgentEvent)
    async def _agent_event(self, message: AgentEvent) -> None:
        from evoagent.agent.events import ApprovalNeeded, CostUpdate

        event = message.event
        self._track_phase(event)
        if isinstance(event, CostUpdate):
            prompt, completion, cost = self._request_base
            total = None if event.cost_usd is None or cost is None else cost + event.cost_usd
            self.status = self.status.with_(prompt_tokens=prompt + event.prompt_tokens,
                                            completion_tokens=completion + event.completion_tokens,
                                            cost_usd=total)
        await self.main.show_event(event)
        if isinstance(event, ApprovalNeeded):
            self.ask_approval(event)

    def _track_phase(self, event: Any) -> None:
        """The status bar's phase: set by `Phase` events, cleared once the model speaks
        (a message or a tool call) or the run finishes."""
        from evoagent.agent.events import Finished, Message, Phase, ToolCall

        if isinstance(event, Phase):
            self.status = self.status.with_(phase=phase_line(event.name, event.detail))
        elif isinstance(event, Message | ToolCall | Finished) and self.status.phase:
            self.status = self.status.with_(phase="")

    @work
    async def ask_approval(self, event: Any) -> None:
        from .screens.approval import ApprovalScreen

        choice = await self.push_screen_wait(ApprovalScreen.for_event(event))
        event.answer(bool(choice), always=bool(getattr(choice, "always", False)))
        said = ("Allowed always" if getattr(choice, "always", False)
                else "Allowed" if choice else "Denied")
        self.main.note(f"{said}: {event.action}")

    @on(RequestDone)
    def _request_done(self, message: RequestDone) -> None:
        outcome = message.outcome
        self.status = self.status.with_(busy=False, phase="")
        self.main.show_outcome(outcome)
        self.refresh_status()
        # An answer leaves the pending change as it was: nothing new to review.
        if outcome.status != "answered" and outcome.patch.strip():
            self.review(self.review_request(outcome))

    @on(RequestFailed)
    def _request_failed(self, message: RequestFailed) -> None:
        self.status = self.status.with_(busy=False, phase="")
        self.main.conversation.end_live()  # a command left "running" by the failed request
        self.main.note(f"Request failed: {message.error}", error=True)

    @on(ConversationResumed)
    async def _conversation_resumed(self, message: ConversationResumed) -> None:
        saved = message.saved
        self.status = self.status.with_(busy=False, phase="")
        self.main.note(f"Resumed conversation {saved.id}: {len(saved.turns)} turn(s)"
                       + (", a change pending (F3 opens it)" if saved.pending.strip() else ""))
        for turn in saved.turns[-10:]:
            await self.main.conversation.add_request(turn.request)
            if turn.reply:
                self.main.note(f"{turn.status}: {turn.reply}")

    def _mining_views(self) -> list[Any]:
        """The screens showing mining progress: the main one, and the no-model dialog that
        would otherwise cover its bar on a first run."""
        return [s for s in self.screen_stack if callable(getattr(s, "mining_done", None))]

    @on(MiningProgress)
    def _mining_progress(self, message: MiningProgress) -> None:
        self.mining_progress = (message.done, message.total)
        for view in self._mining_views():
            view.mining(message.done, message.total)

    @on(MiningDone)
    def _mining_done(self, message: MiningDone) -> None:
        self.mining_progress = None
        for view in self._mining_views():
            view.mining_done()
        if message.error:
            self.main.note(f"Mining failed: {message.error}", error=True)
            return
        self.status = self.status.with_(memories=message.memories)

    @on(MemoryCount)
    def _memory_count(self, message: MemoryCount) -> None:
        self.status = self.status.with_(memories=message.memories)

    @on(Notice)
    def _notice(self, message: Notice) -> None:
        self.notify(message.text, severity=message.severity)  # type: ignore[arg-type]

    # -- flows ------------------------------------------------------------------------

    def send_request(self, text: str, read_only: bool = False) -> None:
        if self.controller.running or self.status.busy:
            self.notify("A request is already running (Ctrl+C stops it).", severity="warning")
            return
        if not self.status.model and not self.status.starting:
            self.action_show_no_model()
            return
        s = self.status
        self._request_base = (s.prompt_tokens, s.completion_tokens, s.cost_usd)
        self.status = s.with_(busy=True)
        self.controller.ask(text, read_only=read_only)

    def new_conversation(self) -> None:
        if self.controller.running or self.status.busy:
            self.notify("A request is running (Ctrl+C stops it).", severity="warning")
            return
        try:
            self.controller.new_conversation()
        except Exception as exc:
            self.main.note(f"evoagent: {one_line(exc)}", error=True)
            return
        self.main.note("New conversation: the next request starts afresh "
                       "(the last one stays saved: /sessions).")

    @work(group="conversations", exclusive=True)
    async def show_conversations(self, chosen: str = "") -> None:
        """/sessions lists saved conversations; /sessions ID reopens one."""
        if chosen:
            if self.controller.running or self.status.busy:
                self.notify("A request is running (Ctrl+C stops it).", severity="warning")
                return
            self.status = self.status.with_(busy=True, phase="reopening the conversation")
            self.controller.resume_conversation(chosen)
            return
        try:
            saved = await asyncio.to_thread(self.controller.list_conversations)
        except Exception as exc:
            self.main.note(f"evoagent: {one_line(exc)}", error=True)
            return
        if not saved:
            self.main.note("No saved conversations yet.")
            return
        lines = [f"{c.id}  {len(c.turns)} turn(s)  {one_line(c.title)[:60]}" for c in saved[:10]]
        self.main.note("Saved conversations (/sessions ID reopens one):\n" + "\n".join(lines))

    @work(group="compact", exclusive=True)
    async def compact(self) -> None:
        """/compact: summarize the older turns now."""
        try:
            event = await asyncio.to_thread(self.controller.compact)
        except Exception as exc:
            self.main.note(f"Not compacted: {one_line(exc)}", error=True)
            return
        if event is None:
            self.main.note("Nothing to compact yet.")

    def review_request(self, run: Any) -> ReviewRequest:
        """A review of a run's patch (a RequestOutcome or a ResumedRun)."""
        from .screens.review import ReviewRequest

        report = getattr(run, "report", None) or {}
        status = getattr(run, "status", None) or report.get("status", "")
        summary = getattr(run, "summary", None) or report.get("summary", "")
        tests = getattr(run, "tests", None) or report.get("tests")
        # A run the model's failure ended early says so: its patch is the best attempt before it.
        stopped = str(report.get("stopped") or "")
        return ReviewRequest(diff=run.patch, title=f"Run {run.run_id}",
                             metadata={"status": status, "stopped": stopped, "summary": summary},
                             tests=tests_lines(tests), key=run.run_id)

    def show_resumed(self, resumed: Any) -> None:
        """Bring a past run back into the conversation and review its patch again."""
        self.main.note(f"Resumed run {resumed.run_id}: {resumed.request.splitlines()[0]}")
        self.main.prompt.value = resumed.request
        if resumed.patch.strip():
            self.review(self.review_request(resumed))

    @work(group="review")
    async def review(self, request: ReviewRequest) -> None:
        """Show a run's patch for review, then apply what the person accepted."""
        from .screens.review import ReviewScreen

        result = await self.push_screen_wait(ReviewScreen(request))
        if result is None:
            self.main.note("Review closed without a decision: nothing applied, nothing "
                           "rejected; F3 (runs) opens it again.")
            return
        if not result.accepted:
            with contextlib.suppress(Exception):  # the run may be from a past conversation
                await asyncio.to_thread(self.controller.discard, request.key)
            self.main.note("Rejected: nothing was applied; the conversation goes on without it.")
            return
        try:
            accepted = await asyncio.to_thread(
                self.controller.accept, request.key, result.selected, result.commit, result.note
            )
        except Exception as exc:
            self.main.note(f"Could not apply: {one_line(exc)}", error=True)
            return
        lines = [f"Applied to {', '.join(accepted.paths) or 'nothing'} (Ctrl+Z undoes)."]
        if accepted.commit_sha:
            lines.append(f"Committed {accepted.commit_sha[:10]}.")
        if accepted.knowledge_id:
            lines.append(f"Kept as knowledge {accepted.knowledge_id}.")
        if accepted.knowledge_error:
            lines.append(f"Not kept as knowledge: {accepted.knowledge_error}")
        self.main.note(" ".join(lines))

    @work(group="undo", exclusive=True)
    async def undo(self) -> None:
        try:
            paths = await asyncio.to_thread(self.controller.undo)
        except Exception as exc:
            self.main.note(f"Nothing undone: {one_line(exc)}", error=True)
            return
        self.main.note(f"Undone: restored {', '.join(paths)}.")

    @work(group="status", exclusive=True)
    async def refresh_status(self) -> None:
        try:
            status = await asyncio.to_thread(self.controller.status)
        except Exception:
            return
        self.status = self.status.with_(
            prompt_tokens=status.prompt_tokens, completion_tokens=status.completion_tokens,
            cost_usd=status.cost_usd, memories=status.memory_count,
        )

    def switch_model(self, model: str) -> None:
        self.status = self.status.with_(model=None, starting=True)
        self.main.note(f"Switching to {model}…")
        self.controller.switch_model(model)

    def show_recall(self, query: str) -> None:
        """/recall QUERY: the matching knowledge and commits, in the conversation; with no
        query, the memory screen."""
        if query:
            self.recall_into_conversation(query)
        else:
            self._show("memory")

    @work(group="recall", exclusive=True)
    async def recall_into_conversation(self, query: str, k: int = 5) -> None:
        try:
            memories, knowledge = await asyncio.to_thread(self.controller.recall, query, k)
        except Exception as exc:
            self.main.note(f"Recall failed: {one_line(exc)}", error=True)
            return
        if not memories and not knowledge:
            self.main.note(f"Recall {query!r}: nothing found.")
            return
        lines = [f"Recall {query!r}: {len(memories)} commit(s), {len(knowledge)} knowledge"]
        lines += [f"  ★ {hit.knowledge.id} {hit.knowledge.intent}" for hit in knowledge]
        lines += [f"  {hit.memory.sha[:7]} {hit.memory.subject}" for hit in memories]
        lines.append("F2 opens memory for the details.")
        self.main.note("\n".join(lines))

    def set_mode(self, mode: str) -> None:
        self.controller.set_mode(mode)
        self.status = self.status.with_(mode=mode)

    # -- actions ----------------------------------------------------------------------

    def action_cycle_mode(self) -> None:
        self.set_mode(next_mode(self.status.mode))
        self.notify(f"Approval mode: {self.status.mode}", timeout=2)

    def action_undo(self) -> None:
        self.undo()

    def action_show_memory(self) -> None:
        self._show("memory")

    def action_show_runs(self) -> None:
        self._show("runs")

    def action_show_evolution(self) -> None:
        self._show("evolution")

    def action_show_help(self) -> None:
        self._show("help")

    def action_show_no_model(self) -> None:
        from .screens.no_model import NoModelScreen

        if not any(isinstance(s, NoModelScreen) for s in self.screen_stack):
            self.push_screen(NoModelScreen(self.no_model_hint, self.mining_progress))

    def _show(self, name: str) -> None:
        if self.screen is not self.get_screen(name):
            self.push_screen(name)

    def action_mine(self) -> None:
        self.controller.mine()

    def action_interrupt(self) -> None:
        """Ctrl+C: stop a running request; a second Ctrl+C soon after quits."""
        now = time.monotonic()
        if now - self._last_interrupt < QUIT_WINDOW_S:
            self.exit()
            return
        self._last_interrupt = now
        if self.controller.running:
            self.controller.cancel()
            self.notify("Stopping the request… (Ctrl+C again quits)", timeout=QUIT_WINDOW_S)
        else:
            self.notify("Press Ctrl+C again to quit", timeout=QUIT_WINDOW_S)

    def action_toggle_copy_mode(self) -> None:
        self.copy_mode = not self.copy_mode

    def watch_copy_mode(self, on: bool) -> None:
        from .copy_mode import set_mouse_reporting

        set_mouse_reporting(self, not on)
        if on:
            self.notify("Copy mode: select text with the mouse; F9 gives the mouse back.")

    async def action_quit(self) -> None:
        self.controller.shutdown()
        self.exit()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Approval mode: cycle", "ask → auto-edits → full-auto",
                            self.action_cycle_mode)
        for mode in ("ask", "auto_edits", "full_auto"):
            yield SystemCommand(f"Approval mode: {mode}", f"Switch to {mode}",
                                lambda m=mode: self.set_mode(m))
        yield SystemCommand("Undo", "Undo the last accepted change", self.action_undo)
        yield SystemCommand("Memory", "Search memories and knowledge", self.action_show_memory)
        yield SystemCommand("Runs", "Past runs: review, resume", self.action_show_runs)
        yield SystemCommand("Evolution", "The hyperagent's variants: diff, promote, roll back",
                            self.action_show_evolution)
        yield SystemCommand("Mine", "Mine new history into memory", self.action_mine)
        yield SystemCommand("Copy mode", "Release the mouse for text selection",
                            self.action_toggle_copy_mode)
        yield SystemCommand("Help", "Keys and slash commands", self.action_show_help)

    def on_unmount(self) -> None:
        self.controller.shutdown()


def tests_lines(tests: dict[str, Any] | None) -> list[str]:
    """A report's test part (`solve.summarize`) as short lines for the review header:
    "tests could not run: <first error line>" when the verdict had no test run, "before: 12
    passed, 1 failed", "after: 13 passed", "reproduction: test_x fails without the fix,
    passes with it", what the patch policy left out of the verdict or dropped, and the
    kernel's notes. Every string is one terminal-safe line."""
    if not tests:
        return []
    lines = []
    not_run = tests.get("not_run")
    if not_run:
        lines.append(f"tests could not run: {text_line(not_run)}")
    for key in ("before", "after"):
        run = tests.get(key)
        if isinstance(run, dict):
            lines.append(f"{key}: {run_line(run, not_run)}")
    reproduction = tests.get("reproduction")
    if isinstance(reproduction, dict) and reproduction.get("tests"):
        lines.append("reproduction: " + reproduction_line(reproduction))
    policy = tests.get("policy") or {}
    for item in policy.get("left_out_of_verdict") or []:
        lines.append(f"left out of the verdict (test infrastructure): {text_line(item['path'])}"
                     f" — {text_line(item['reason'])}")
    for item in policy.get("dropped") or []:
        lines.append(f"dropped from the patch: {text_line(item['path'])} — "
                     f"{text_line(item['reason'])}")
    lines += [f"note: {text_line(note)}" for note in tests.get("notes") or []]
    return lines


def text_line(value: Any) -> str:
    """Report text (a test id, an error line, a path) as one terminal-safe line."""
    return safe_line(str(value))


def count(value: Any) -> int:
    """A count in a report: test ids (a list) or a number."""
    if isinstance(value, list | tuple):
        return len(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def run_line(run: dict[str, Any], shown_not_run: Any = None) -> str:
    """One test run: "12 passed, 1 failed"; "could not run" (and why, unless the line above
    says it); the exit status when the runner reported no per-test outcomes."""
    if run.get("not_run"):
        same = run["not_run"] == shown_not_run
        return "could not run" + ("" if same else f" — {text_line(run['not_run'])}")
    counts = [(count(run.get(k)), k) for k in ("passed", "failed", "errors")]
    shown = [f"{n} {label}" for n, label in counts if n]
    if shown:
        return ", ".join(shown)
    if run.get("junit") is False and isinstance(run.get("exit_code"), int):
        verdict = "passed" if run["exit_code"] == 0 else "failed"
        return f"{verdict} (exit {run['exit_code']}; no per-test report)"
    return "no tests ran"


def reproduction_line(reproduction: dict[str, Any]) -> str:
    """"test_x fails without the fix, passes with it" (or what it did instead)."""
    names = [text_line(name) for name in reproduction.get("tests") or []]
    subject = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    one = len(names) == 1
    fails, passes = ("fails", "passes") if one else ("fail", "pass")
    without = fails if reproduction.get("failed_without_fix") else passes
    with_fix = passes if reproduction.get("passed_with_fix") else fails
    return f"{subject} {without} without the fix, {with_fix} with it"


def run(root: Path | None = None, model: str | None = None, grace: float = 0.5,
        resume: str | None = None) -> None:
    """Run the app; on quit, give background threads `grace` seconds, then exit.

    A thread may still be importing litellm, mining, or winding down a cancelled request.
    None of them writes the user's working tree, mining is resumable and run records are
    flushed per event, so the process does not wait for them (Python would, at exit).
    """
    import os
    import sys
    import threading

    app = EvoApp(root=root, model=model, resume=resume)
    # Our own loop: `asyncio.run` would wait for every worker thread at exit.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    app.run(loop=loop)
    deadline = time.monotonic() + grace
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(app.return_code or 0)
