"""The app's session controller: owns the agent `Session`; never a widget.

Everything slow runs off the UI thread. Session start-up, requests and mining run in thread
workers the controller starts on the app; each agent event and each outcome comes back as a
message posted to the app (`post_message` is thread-safe). Quick calls the screens need
(accept, undo, runs, recall, retract) are plain blocking methods that screens call from
their own thread workers. Heavy modules (litellm, lancedb) are imported only in workers, so
the first frame never waits for them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from textual.app import App

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

if TYPE_CHECKING:
    from evoagent.agent.repo_context import RepoContext
    from evoagent.agent.session import (
        AcceptResult,
        ResumedRun,
        RunSummary,
        Session,
        SessionStatus,
    )

MODES = ("ask", "auto_edits", "full_auto")


class GenomeStatus(NamedTuple):
    main: str
    """The sha of the live genome's main."""
    tags: list[str]
    """`promoted/<n>-previous` tags, oldest first: the mains a rollback can restore."""


def next_mode(mode: str) -> str:
    return MODES[(MODES.index(mode) + 1) % len(MODES)] if mode in MODES else MODES[0]


def one_line(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return message.strip().splitlines()[0] if message.strip() else type(exc).__name__


class SessionController:
    """Runs the session for `app`; see the module docstring.

    `root` is where to look for the repository (None: the current directory); `model`
    overrides the configured one; `mine_on_start` mines new history in the background.
    """

    def __init__(
        self,
        app: App,
        root: Path | None = None,
        model: str | None = None,
        mode: str = "ask",
        mine_on_start: bool = True,
    ):
        self.app = app
        self.root = root
        self.model = model
        self.mode = mode
        self.mine_on_start = mine_on_start
        self.ctx: RepoContext | None = None
        self.session: Session | None = None
        self._ready = threading.Event()
        # LanceDB from two threads while one forks git was seen to hang (memory/mine.py):
        # memory operations of the app take turns.
        self._memory_lock = threading.Lock()
        self._genome_repo: Any = None

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> None:
        """Open the repository and the session in a thread worker, then mine."""
        self.app.run_worker(self._start, thread=True, group="session", exit_on_error=False,
                            name="open session")

    def _start(self) -> None:
        from evoagent.agent.approval import ApprovalMode
        from evoagent.agent.repo_context import RepoContext
        from evoagent.agent.session import Session

        try:
            self.ctx = RepoContext.open(self.root)
            self.session = Session.open(self.ctx, self.model, ApprovalMode(self.mode), self._emit)
            status = self.session.status()
        except Exception as exc:  # a user-facing failure (not a repo, bad config)
            self._post(SessionUnavailable(one_line(exc), no_model=False))
            return
        finally:
            self._ready.set()
        self._post(MemoryCount(status.memory_count))
        if status.model:
            self._post(SessionReady(status.model, status.mode.value, status.isolated))
        else:
            self._post(SessionUnavailable(status.model_hint))
            self._post(SessionReady("", status.mode.value, status.isolated))
        if self.mine_on_start:
            self._mine()

    def switch_model(self, model: str) -> None:
        """Open a new session on `model` (refused while a request runs)."""
        if self.running:
            self._post(Notice("A request is running: stop it first (Ctrl+C).", "warning"))
            return
        self.model = model
        self._ready.clear()
        self.mine_on_start = False
        self.start()

    def root_path(self) -> Path:
        """The repository root once known, else where the app was started."""
        if self.ctx is not None:
            return self.ctx.root
        return self.root or Path.cwd()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    def shutdown(self) -> None:
        """Stop a running request and drop the conversation's workspace (the conversation
        stays saved); the working tree is never touched here."""
        if self.session is not None:
            self.session.close()

    def _post(self, message) -> None:
        self.app.post_message(message)

    def _emit(self, event) -> None:
        self._post(AgentEvent(event))

    # -- requests ---------------------------------------------------------------------

    def ask(self, request: str, read_only: bool = False) -> None:
        """Run one request of the conversation in a thread worker (`read_only`: /ask);
        events stream back, then RequestDone."""
        self.app.run_worker(lambda: self._ask(request, read_only), thread=True, group="ask",
                            exit_on_error=False, name="ask")

    def _ask(self, request: str, read_only: bool = False) -> None:
        self._ready.wait()
        if self.session is None:
            self._post(RequestFailed("no session: see the message above"))
            return
        try:
            outcome = self.session.ask(request, read_only=read_only)
        except Exception as exc:
            self._post(RequestFailed(one_line(exc)))
            return
        self._post(RequestDone(outcome))

    def cancel(self) -> None:
        if self.session is not None:
            self.session.cancel()

    # -- conversations ----------------------------------------------------------------

    def resume_conversation(self, conversation_id: str | None = None) -> None:
        """Reopen a saved conversation (the last one without an id) in a thread worker:
        the workspace is rebuilt from its saved patch; ConversationResumed follows."""
        self.app.run_worker(lambda: self._resume(conversation_id), thread=True, group="ask",
                            exit_on_error=False, name="resume")

    def _resume(self, conversation_id: str | None) -> None:
        self._ready.wait()
        if self.session is None:
            self._post(RequestFailed("no session: see the message above"))
            return
        try:
            saved = self.session.resume_conversation(conversation_id)
        except Exception as exc:
            self._post(RequestFailed(one_line(exc)))
            return
        self._post(ConversationResumed(saved))

    def new_conversation(self) -> None:
        self._require().new_conversation()

    def list_conversations(self) -> list[Any]:
        return self._require().conversations.list()

    def compact(self) -> Any:
        return self._require().compact()

    def discard(self, run_id: str) -> None:
        """The person rejected the run's change: the conversation goes on without it."""
        self._require().discard(run_id)

    @property
    def running(self) -> bool:
        return self.session is not None and self.session.running

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        if self.session is not None:
            self.session.set_mode(mode)

    # -- blocking calls for screens' thread workers -------------------------------------

    def _require(self) -> Session:
        if self.session is None:
            from evoagent.agent.errors import EvoError

            raise EvoError("the session is not open")
        return self.session

    def status(self) -> SessionStatus:
        return self._require().status()

    def accept(self, run_id: str, hunk_ids: list[str] | None, commit: bool = False,
               note: str | None = None) -> AcceptResult:
        return self._require().accept(run_id, hunk_ids, commit=commit, note_as_knowledge=note)

    def undo(self) -> list[str]:
        return self._require().undo()

    def list_runs(self) -> list[RunSummary]:
        return self._require().list_runs()

    def resume(self, run_id: str) -> ResumedRun:
        return self._require().resume(run_id)

    def recall(self, query: str, k: int = 20) -> tuple[list[Any], list[Any]]:
        """Memories and active knowledge for `query` (empty when nothing is mined)."""
        from evoagent.memory.search import recall, recall_knowledge

        ctx = self._context()
        with self._memory_lock:
            memories = recall(ctx.store, query, k=k)
            knowledge = recall_knowledge(ctx.knowledge, query, k=k)
        return memories, knowledge

    def knowledge_list(self) -> list[Any]:
        ctx = self._context()
        with self._memory_lock:
            return ctx.knowledge.list(status="active")

    def retract(self, knowledge_id: str, reason: str) -> None:
        ctx = self._context()
        with self._memory_lock:
            ctx.knowledge.retract(knowledge_id, reason)

    def _context(self) -> RepoContext:
        self._ready.wait()
        if self.ctx is None:
            from evoagent.agent.errors import EvoError

            raise EvoError("not in a git repository")
        return self.ctx

    # -- mining -----------------------------------------------------------------------

    def mine(self) -> None:
        self.app.run_worker(self._mine, thread=True, group="mine", exclusive=True,
                            exit_on_error=False, name="mine")

    def _mine(self) -> None:
        from evoagent.memory.mine import mine

        ctx = self._context()
        progress: Callable[[int, int], None] = lambda done, total: self._post(  # noqa: E731
            MiningProgress(done, total)
        )
        try:
            with self._memory_lock:
                result = mine(ctx.root, ctx.store, progress=progress,
                              batch_size=min(ctx.settings.mine_batch, 200))
                count = ctx.store.count()
        except Exception as exc:
            self._post(MiningDone(0, 0, one_line(exc)))
            return
        self._post(MiningDone(result.stored, count))
        if result.stored:
            self._post(Notice(f"memory: mined {result.stored} commits"))

    # -- evolution (the hyperagent's archive and genome) -----------------------------------

    def list_variants(self) -> list[Any]:
        """Every archived variant (`Variant`s, by generation); an `evoagent evolve run` in
        another process adds to them as it goes."""
        from evoagent.agent.evolve.review import archive_of

        return archive_of(self._context()).all()

    def genome_status(self) -> GenomeStatus:
        """The live genome's main and the tags a rollback can go back to (newest last)."""
        repo = self._genome()
        return GenomeStatus(repo.sha("main"), [tag for _n, tag in repo.promoted_tags()])

    def variant_diff(self, variant_id: str) -> str:
        """The genome diff a variant made: its parent at the fork point → the variant."""
        from evoagent.agent.evolve.review import archive_of

        variant = archive_of(self._context()).get(variant_id)
        repo = self._genome()
        try:
            new = repo.sha(repo.ref_of(variant.id))
            parent = repo.sha(repo.ref_of(variant.parent or "main"))
            base = repo.git("merge-base", parent, new, check=False)
            if base == new and variant.commit:
                # The parent has moved onto the variant (it was promoted): the fork point is
                # the proposal commit's parent.
                base = repo.sha(f"{variant.commit}^")
            diff = repo.diff(base or parent, new)
        except Exception:
            diff = ""
        if not diff:  # no branch (yet, or any more): what the archive recorded
            return variant.diff
        return diff + "\n"  # the genome repo's git output comes stripped

    def promote_variant(self, variant_id: str, confirm: Callable[[str], bool],
                        progress: Callable[[int, int], None] | None = None) -> Any:
        """Score the variant and main on the test split (slow: the benchmark; `progress(done,
        total)` per task), ask `confirm(comparison text)`, then move main. (tag of the
        previous main, Comparison), or None when declined."""
        from evoagent.agent.evolve.review import promote

        bench: dict[str, Any] = {"model": self.model}
        if progress is not None:
            bench["progress"] = lambda _run, _result, done, total: progress(done, total)
        return promote(self._context(), variant_id, confirm, **bench)

    def reject_variant(self, variant_id: str, reason: str = "rejected by a person") -> Any:
        from evoagent.agent.evolve.review import reject

        return reject(self._context(), variant_id, reason)

    def rollback_genome(self, tag: str | None = None) -> str:
        """Move main back (default: before the last promotion); the sha main now has."""
        from evoagent.agent.evolve.review import rollback

        return rollback(self._context(), tag)

    def _genome(self) -> Any:
        from evoagent.agent.evolve.review import genome_repo_of

        if self._genome_repo is None:
            self._genome_repo = genome_repo_of(self._context())
        return self._genome_repo
