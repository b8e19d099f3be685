"""The interactive session: what the app (and the ACP server) drive; headless `fix` is the
one-turn case of the same `Conversation`.

One `Session` per app. `ask()` runs one request of the session's conversation: the first
opens a sandbox workspace from the current working tree; later ones continue in the same
context and workspace (the pending change grows; `RequestOutcome.patch` is all of it), and a
question is answered without a change (status "answered": no tests, no review). `ask(...,
read_only=True)` is /ask. The user's tree is never touched by a request: the person then
`accept()`s all or some hunks (applied with `git apply`, or written through a front end's
`files` — an editor's buffers over ACP — when every file is a text modification or
creation; remembered with their writer for `undo()`), optionally committing them and
keeping them as knowledge, or `discard()`s the pending change; either way the conversation
goes on from what the tree now holds.

Conversations are saved after every turn (`conversation_store`): `resume_conversation()`
reopens one with its messages and pending change (the workspace rebuilt from the saved patch).

Threading: `ask()` blocks and is meant for a worker thread; every event goes through the
`emit` given to `open()`, from that thread. `cancel()`, `set_mode()` and `status()` are safe
from any thread; `ApprovalNeeded` events are answered with `event.answer(allowed, always=False)`
from any thread. `accept`/`undo`/`list_runs`/`resume` are quick git/file operations on the
runs under `.evoagent/runs` (`session_runs`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import patches
from .approval import ApprovalMode, Approver
from .approval_rules import ApprovalRules
from .conversation import Conversation, RunControls, TurnOutcome
from .conversation_store import ConversationStore, SavedConversation, Turn
from .errors import EvoError
from .events import Event, Message
from .knowledge_capture import capture_from_run, default_approver, read_run, resolve_run
from .model_select import NO_MODEL_HINT, NoModelAvailable, select_model
from .patches import AppliedChange, FileAccess
from .repo_context import RepoContext
from .sandbox_kill import kill_sandboxed
from .session_runs import (
    AcceptResult,
    RequestOutcome,
    ResumedRun,
    RunSummary,
    apply_run,
    list_runs,
    note_accepted,
    resume_run,
    update_report,
)
from .usage import SessionTotals

REAP_INTERVAL = 0.1
"""Seconds between kills of sandboxed processes while a cancelled request unwinds."""


@dataclass(frozen=True)
class SessionStatus:
    model: str | None
    """The litellm model name, or None when no model is available."""
    model_hint: str
    """Why there is no model and how to configure one ("" when there is one)."""
    isolated: bool
    """True when sandboxed commands run under bubblewrap."""
    mode: ApprovalMode
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    """None when some call's price is unknown."""
    cost_label: str
    """"$0.0123", "unknown" or "$0.0000" — ready to show."""
    memory_count: int
    """Commits in the repo's memory store (0 when not mined yet)."""
    running: bool
    """A request is in progress."""
    can_undo: bool
    """There is an accepted change `undo()` would restore."""


class Session:
    """See the module docstring. Create with `Session.open(...)`."""

    def __init__(self, ctx: RepoContext, model: str | None, model_hint: str, approver: Approver,
                 emit: Callable[[Event], None], mcp_servers: tuple[Any, ...] = ()):
        self.ctx = ctx
        self.mcp_servers = mcp_servers
        """`mcp_config.ServerDef`s the front end adds (an editor's own, over ACP)."""
        self.model = model
        self.model_hint = model_hint
        self.approver = approver
        self.emit = emit
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._running = False
        self._workspace: Path | None = None  # the running request's sandbox
        self._isolated: bool | None = None  # known once a sandbox was made
        self._applied: list[tuple[str, AppliedChange, str | None]] = []  # run, change, commit
        self._usage: list[SessionTotals] = []
        self._conversation: Conversation | None = None
        self._saved: SavedConversation | None = None
        self.conversations = ConversationStore(ctx.state.dir / "sessions")

    @classmethod
    def open(
        cls,
        ctx: RepoContext,
        model: str | None = None,
        mode: ApprovalMode = ApprovalMode.ASK,
        emit: Callable[[Event], None] = lambda e: None,
        mcp_servers: tuple[Any, ...] = (),
    ) -> Session:
        """A session on the repo; opens even without a model (then `ask` raises
        NoModelAvailable and `status().model_hint` says how to configure one). `mcp_servers`
        (`mcp_config.ServerDef`s, the person's) join the configured ones in its conversations."""
        try:
            name, hint = select_model(model or ctx.settings.model or None).name, ""
        except NoModelAvailable as exc:
            name, hint = None, exc.message
        rules = ApprovalRules.for_repo(ctx.state.dir)
        return cls(ctx, name, hint, Approver(mode, emit, rules=rules), emit, tuple(mcp_servers))

    @property
    def running(self) -> bool:
        return self._running

    def status(self) -> SessionStatus:
        from evoagent.sandbox.bwrap import bwrap_path

        prompt = sum(u.prompt_tokens for u in self._usage)
        completion = sum(u.completion_tokens for u in self._usage)
        costs = [u.cost_usd for u in self._usage]
        cost = None if any(c is None for c in costs) else float(sum(costs))
        return SessionStatus(
            model=self.model,
            model_hint=self.model_hint,
            isolated=self._isolated if self._isolated is not None else bwrap_path() is not None,
            mode=self.approver.mode,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost_usd=cost,
            cost_label="unknown" if cost is None else f"${cost:.4f}",
            memory_count=self._memory_count(),
            running=self._running,
            can_undo=bool(self._applied) and self._applied[-1][2] is None,
        )

    def _memory_count(self) -> int:
        if not self.ctx.state.memory_dir.is_dir() or not any(self.ctx.state.memory_dir.iterdir()):
            return 0  # never mined: do not create a store just to count nothing
        try:
            return self.ctx.store.count()
        except Exception:  # an unreadable store must not break the status line
            return 0

    def set_mode(self, mode: ApprovalMode | str) -> None:
        """Switch the approval mode; takes effect at the next approval (even mid-request)."""
        self.approver.set_mode(mode)

    def ask(self, request: str, read_only: bool = False) -> RequestOutcome:
        """Run one request of the conversation in the sandbox; never applies anything.

        Raises NoModelAvailable without a model, EvoError when a request is already running
        or the repository has no commits. A cancelled request returns status "cancelled".
        """
        if self.model is None:
            raise NoModelAvailable(self.model_hint or NO_MODEL_HINT)
        if not request.strip():
            raise EvoError("empty request: say what to change or ask")
        with self._busy(new_request=True):
            conversation = self._conversation or self._start_conversation()
            outcome = conversation.turn(request, read_only=read_only)
        if outcome.usage is not None:
            self._usage.append(outcome.usage)
        return RequestOutcome.from_turn(outcome, conversation.id)

    # -- the conversation -------------------------------------------------------------

    def _start_conversation(self, saved: SavedConversation | None = None) -> Conversation:
        controls = RunControls(approve=self.approver.approve, should_stop=self._cancel.is_set,
                               on_sandbox=self._on_sandbox, mcp=True,
                               mcp_servers=tuple(self.mcp_servers))
        conversation = Conversation(self.ctx, self.model, self.emit, controls,
                                    conversational=True, on_turn_end=self._save)
        if saved is not None:
            conversation.id = _fresh_id(self.ctx.state.dir / "sandboxes", saved.id)
            conversation.restore(saved.messages, saved.pending)
            conversation.turns = len(saved.turns)
        self._conversation, self._saved = conversation, saved
        return conversation

    def _save(self, conversation: Conversation, outcome: TurnOutcome) -> None:
        """After every turn: the messages and the pending change, atomically."""
        saved = self._saved
        if saved is None:
            title = (str(outcome.report.get("issue") or "").strip().splitlines() or [""])[0]
            saved = self._saved = SavedConversation(conversation.id, title[:80], time.time(),
                                                    time.time(), conversation.model_name)
        saved.turns.append(Turn(outcome.run_id, str(outcome.report.get("issue") or ""),
                                outcome.status,
                                outcome.answer or str(outcome.report.get("summary") or "")))
        saved.messages = list(conversation.messages)
        saved.pending = outcome.patch
        try:
            self.conversations.save(saved)
        except OSError as exc:  # a full disk must not lose the turn's result
            self.emit(Message(f"(the conversation could not be saved: {exc})"))

    def new_conversation(self, conversation_id: str = "") -> None:
        """Forget the current conversation (it stays saved) and its workspace; the next
        request starts a new one, saved under `conversation_id` when given (a front end that
        names its sessions, as ACP does), else under its first run's id."""
        self._require_idle()
        if self._conversation is not None:
            self._conversation.close()
        self._conversation = self._saved = None
        if conversation_id:
            self._start_conversation().id = conversation_id

    def resume_conversation(self, conversation_id: str | None = None) -> SavedConversation:
        """Reopen a saved conversation (the last one when no id): its messages, and its
        pending change on a workspace made from the current tree."""
        self._require_idle()
        saved = (self.conversations.get(conversation_id) if conversation_id
                 else self.conversations.last())
        if self.model is None:
            raise NoModelAvailable(self.model_hint or NO_MODEL_HINT)
        self.new_conversation()
        with self._busy():
            self._start_conversation(saved)
        return saved

    def compact(self) -> Any:
        """Summarize the conversation's older turns now (/compact): the ContextCompacted
        event (also emitted), or None when there is nothing to compact."""
        self._require_idle()
        if self._conversation is None:
            return None
        with self._busy():
            return self._conversation.compact()

    def pending_patch(self) -> str:
        """The conversation's pending change ("" when none)."""
        return self._conversation.pending_patch() if self._conversation is not None else ""

    def close(self) -> None:
        """End the session: stop a running request, remove the workspace (saved
        conversations, runs and the user's tree are untouched)."""
        self.cancel()
        if self._conversation is not None and not self._running:
            self._conversation.close()
            self._conversation = None

    def _require_idle(self) -> None:
        if self._running:
            raise EvoError("a request is running: wait for it or cancel it")

    @contextlib.contextmanager
    def _busy(self, new_request: bool = False) -> Iterator[None]:
        """Hold the running flag for the block (`cancel()`, `_reap` and `status()` read it),
        cleared however the block ends. A `new_request` also re-arms cancelling, which an
        earlier cancel left set."""
        with self._lock:
            if self._running:
                raise EvoError("a request is already running: wait for it or cancel it")
            self._running = True
            if new_request:
                self._cancel.clear()
        try:
            yield
        finally:
            with self._lock:
                self._running = False

    def _on_sandbox(self, workspace: Any, runner: Any) -> None:
        self._workspace, self._isolated = Path(workspace.path), bool(runner.isolated)

    def cancel(self) -> None:
        """Stop the running request at the next step boundary: refuse pending approvals and
        kill the sandboxed commands in flight. No-op when nothing runs."""
        if not self._running or self._cancel.is_set():
            return
        self._cancel.set()
        self.approver.refuse_pending()
        # The kernel may still start a test run between steps (it does not poll the flag),
        # so keep killing until the request has unwound.
        threading.Thread(target=self._reap, name="evoagent-cancel", daemon=True).start()

    def _reap(self) -> None:
        while self._running:
            workspace = self._workspace
            if workspace is not None:
                kill_sandboxed(workspace)
            time.sleep(REAP_INTERVAL)

    def accept(
        self,
        run_id: str,
        hunk_ids: list[str] | None = None,
        commit: bool = False,
        note_as_knowledge: str | None = None,
        files: FileAccess | None = None,
    ) -> AcceptResult:
        """Apply the run's patch (or only `hunk_ids`, ids from `RequestOutcome.files`) to the
        working tree; remembered for `undo()`. `commit` commits only those files;
        `note_as_knowledge` (a note, may be "") keeps the run as knowledge. EvoError (one
        line) when it does not apply (`patches.StaleFile` when a file's text in `files`
        no longer fits).

        `files` (an editor's buffers) writes the change instead of `git apply` when every
        file is a modification or creation of a UTF-8 text file (`patches.apply_through`);
        otherwise the whole change goes through `git apply`, and the result says why. A
        commit reads the files from disk, so it always goes through `git apply`."""
        run_dir = resolve_run(self.ctx.state.runs_dir, run_id)
        report, patch = read_run(run_dir)
        chosen = patch if hunk_ids is None else patches.select(patch, hunk_ids)
        if not chosen.strip():
            raise EvoError(f"run {run_dir.name}: nothing selected to apply")
        result, applied = apply_run(self.ctx.root, run_dir, report, chosen, commit, files)
        self._applied.append((run_dir.name, applied, result.commit_sha))
        self._decided(report, chosen, f"the person accepted {_hunks(hunk_ids)} of your "
                      "change into their tree; the rest was discarded")
        note_accepted(run_dir, hunk_ids, result)
        if note_as_knowledge is not None:
            try:
                kept = capture_from_run(run_dir, default_approver(self.ctx.root),
                                        note_as_knowledge, self.ctx.knowledge, patch=chosen)
                result.knowledge_id = kept.id
            except EvoError as exc:
                result.knowledge_error = exc.message
        return result

    def discard(self, run_id: str) -> None:
        """The person rejected the run's change: the conversation goes on without it."""
        report, _ = read_run(resolve_run(self.ctx.state.runs_dir, run_id))
        self._decided(report, "", "the person rejected your change; the workspace is back "
                      "to their tree")

    def _decided(self, report: dict[str, Any], accepted: str, note: str) -> None:
        """Rebase the current conversation when the decided run is its pending change."""
        conversation = self._conversation
        if (conversation is None or self._running
                or report.get("conversation") != conversation.id):
            return
        conversation.rebase(accepted, note)
        if self._saved is not None:
            self._saved.pending = ""
            with contextlib.suppress(OSError):
                self.conversations.save(self._saved)

    def undo(self) -> list[str]:
        """Restore the tree as it was before the last accepted change, through the writer
        that applied it (`git apply`'s bytes, or the editor's `files`); returns its paths.
        EvoError when there is nothing to undo, it was committed, or the files changed
        since (then nothing is restored and it stays undoable)."""
        if not self._applied:
            raise EvoError("nothing to undo")
        run_id, applied, sha = self._applied[-1]
        if sha is not None:
            raise EvoError(f"the change from run {run_id} was committed as {sha[:12]}: "
                           "use git revert")
        patches.undo(self.ctx.root, applied)
        self._applied.pop()
        update_report(self.ctx.state.runs_dir / run_id, {"accepted": None, "undone": True})
        return applied.paths

    def list_runs(self) -> list[RunSummary]:
        """Past runs under .evoagent/runs (those with a report.json), newest first."""
        return list_runs(self.ctx.state.runs_dir)

    def resume(self, run_id: str) -> ResumedRun:
        """A past run's request and patch (a unique id prefix works), to show it again."""
        return resume_run(self.ctx.state.runs_dir, run_id)


def _hunks(hunk_ids: list[str] | None) -> str:
    return "all" if hunk_ids is None else f"{len(hunk_ids)} hunk(s)"


def _fresh_id(sandboxes: Path, wanted: str) -> str:
    """`wanted`, or `wanted-2`, ... when a workspace of that id is still there (a crash)."""
    candidate, n = wanted, 1
    while (sandboxes / candidate).exists():
        n += 1
        candidate = f"{wanted}-{n}"
    return candidate


__all__ = [
    "AcceptResult", "ApprovalMode", "EvoError", "NoModelAvailable", "RequestOutcome",
    "ResumedRun", "RunSummary", "Session", "SessionStatus", "kill_sandboxed",
]
