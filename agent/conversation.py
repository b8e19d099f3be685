"""One workspace and one message history, many requests: the kernel every front end drives.

Headless `fix` is a conversation of one turn (`run_request`); the app's `Session` and the ACP
server keep one open, so a follow-up continues in the same context and the same workspace
(the pending change grows, each turn's review shows the whole of it since the base), and a
question is answered without a change — the model's actions decide the kind, not a mode:
a turn that changes nothing ends `answered` and runs no tests. `read_only` turns (/ask)
offer only the reading tools.

Each turn writes its own run record (`.evoagent/runs/<id>/`: trajectory, patch of the whole
pending change, report), so the runs screen, accept and knowledge work per turn as before.
The conversation itself (messages, pending patch) is what `SessionStore` saves for resume.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import genome_code
from .errors import EXIT_BY_STATUS, EXIT_NOT_FIXED, EvoError, RunStopped
from .events import (
    CommandOutput,
    CostUpdate,
    Event,
    Finished,
    Phase,
    SessionStarted,
    TestCommandChosen,
)
from .genome import Genome, init_genome
from .loop import Cancelled
from .model import Model
from .model_check import check_model
from .repo_context import RepoContext
from .run_record import RunRecord, new_run_id
from .solve import Solver, SolveResult, _diff_paths, summarize
from .tool_context import build_tool_context
from .tools import tool_schemas
from .tools.base import ToolContext
from .tools.protocol import text_protocol_help
from .usage import Budget, SessionTotals, SessionUsage

SYSTEM_MAP_TOKENS = 1024  # the repo map in the system prompt, centred on locate's best files

@dataclass
class RunControls:
    """What a front end adds to one run beyond the request: headless `fix` sets `strict` and
    `after_solve` (apply/commit), the app's Session sets approval, cancel and sandbox hooks."""

    strict: bool = False
    """Refuse to run without bubblewrap isolation."""
    approve: Callable[[str, str], bool] | None = None
    """`ToolContext.approve`: asked before edits, writes and commands (None: never asks)."""
    should_stop: Callable[[], bool] | None = None
    """Polled at step boundaries; true ends the run with status "cancelled"."""
    on_sandbox: Callable[[Any, Any], None] | None = None
    """Called with (Workspace, Runner) once the sandbox exists (isolation, process kill)."""
    after_solve: Callable[[SolveResult, RunRecord, dict[str, Any]], None] | None = None
    """Called after the patch is written, before the report: may add to the report."""
    baseline: Baseline | None = None
    """Start from a past commit instead of the user's HEAD (a benchmark task at P)."""
    genome: Genome | None = None
    """Run this genome instead of the live one (a variant being scored)."""
    runs_dir: Path | None = None
    """Where the run record goes (default `.evoagent/runs`)."""
    stream: bool = True
    """Stream model replies (a front end shows them as they come); a benchmark does not."""
    mcp: bool = False
    """Offer MCP servers' tools (the app and ACP; never fix, bench, evolve or the safety
    scenarios, whose runs must not depend on the person's servers)."""
    mcp_servers: tuple[Any, ...] = ()
    """`mcp_config.ServerDef`s a front end adds to the configured ones, trusted as the
    person's: an ACP client's `mcpServers` come from the person's own editor config."""


@dataclass
class Baseline:
    """A run pinned to commit `rev`: the workspace holds `rev`'s tree only (no history, so
    no later commit can be dug out of it), and memory answers as of `rev` (nothing after it
    reaches the agent). Knowledge usage is not counted: a benchmark is not real use."""

    rev: str
    as_of: Any
    """`evoagent.memory.revisions.AsOf` for `rev`."""


@dataclass
class TurnOutcome:
    """What one turn produced; `FixOutcome` in fix.py is the same shape."""

    run_id: str
    run_dir: Any
    status: str
    exit_code: int
    report: dict[str, Any]
    patch: str
    """The whole pending change since the base ("" when there is none)."""
    usage: SessionTotals | None = None
    answer: str = ""
    """The model's reply when the turn ended `answered`."""


@dataclass
class Conversation:
    """See the module docstring. `controls` is fix.RunControls; `emit` gets every event."""

    ctx: RepoContext
    request_model: str | None
    emit: Callable[[Event], None]
    controls: Any
    conversational: bool = True
    """False: headless fix (the task prompt, baseline tests first, a reply in words does not
    end an attempt). True: the app's and ACP's conversation."""
    id: str = ""
    """The workspace's id (default: the first turn's run id)."""
    on_turn_end: Callable[[Conversation, TurnOutcome], None] | None = None
    """Called after every turn, with the record written (a session saves itself here)."""

    genome: Genome | None = field(default=None, init=False)
    model_name: str = field(default="", init=False)
    workspace: Any = field(default=None, init=False)
    solver: Solver | None = field(default=None, init=False)
    turns: int = field(default=0, init=False)
    _usage: SessionUsage | None = field(default=None, init=False)
    _record: RunRecord | None = field(default=None, init=False)
    _test_command: Any = field(default=None, init=False)
    _tools_ctx: Any = field(default=None, init=False)
    _knowledge_used: list[str] = field(default_factory=list, init=False)
    _note: str = field(default="", init=False)
    _mcp: Any = field(default=None, init=False)

    # -- lifecycle --------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.solver is not None

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.solver.loop.messages if self.solver is not None else []

    def pending_patch(self) -> str:
        """The deliverable change since the base (after the patch policy)."""
        if self.solver is None:
            return ""
        return self.solver.review(self.workspace.checkpoint("evoagent pending",
                                                            allow_empty=False)).kept

    def rebase(self, accepted: str, note: str) -> None:
        """The person decided on the pending change: `accepted` (maybe "") went to their
        tree. The workspace becomes base + accepted, which is the new base, so the next
        review shows only what comes after; `note` tells the model at its next turn."""
        if self.solver is None or self.workspace is None:
            return
        ws = self.workspace
        ws.reset_to(ws.base)
        ws.apply(accepted)
        ws.base = ws.checkpoint("evoagent: what the person accepted")
        self.solver.kept = None
        self.solver.forget_baseline()
        self._note = note

    def compact(self) -> Any:
        """Summarize the older turns now (/compact); the ContextCompacted event, or None
        when there is nothing to compact yet."""
        if self.solver is None or self.solver.loop is None:
            return None
        return self.solver.model.compact(self.solver.loop.messages)

    def close(self) -> None:
        """Remove the workspace (the run records and the saved conversation stay)."""
        if self._mcp is not None:
            self._mcp.close()
            self._mcp = None
        if self.workspace is not None:
            self.workspace.remove()
            self.workspace = None
        self.solver = None

    def _publish(self, event: Event) -> None:
        # Live output is for the screen: the record keeps the bounded whole (CommandRun).
        if self._record is not None and not isinstance(event, CommandOutput):
            self._record.write_event(event)
        self.emit(event)

    def _open(self, first_request: str, restore: list[dict[str, Any]] | None = None,
              pending: str = "") -> None:
        """Genome, model, workspace, sandbox, tools and solver, once per conversation."""
        from evoagent.sandbox.local import make_runner
        from evoagent.sandbox.testdetect import detect_test_command
        from evoagent.sandbox.workspace import Workspace

        ctx, controls = self.ctx, self.controls
        if not ctx.has_commits():
            raise EvoError("this repository has no commits yet: nothing to fix against")
        genome = self.genome = controls.genome or load_genome(ctx)
        baseline = controls.baseline
        checked = check_model(self.request_model or ctx.settings.model or None)
        self.model_name = checked.name
        self._publish(Phase("model_check", checked.detail))
        loop = genome.settings.loop
        self._usage = SessionUsage()
        budget = Budget(loop.max_steps * (loop.refine_attempts + 1), loop.max_cost_usd or None,
                        loop.max_seconds)
        llm = Model(name=self.model_name, session=self._usage, budget=budget,
                    stream=controls.stream, genome=genome, on_event=self._publish,
                    api_base=ctx.settings.api_base, context_limit=ctx.settings.context_limit)
        started = time.monotonic()
        sandboxes = ctx.state.dir / "sandboxes"
        if baseline is None:
            self.workspace = Workspace.create(ctx.root, sandboxes, id=self.id)
        else:
            self.workspace = Workspace.create(ctx.root, sandboxes, rev=baseline.rev,
                                              include_user_changes=False, id=self.id,
                                              history=False)
        workspace = self.workspace
        self._publish(Phase("workspace", f"ready in {time.monotonic() - started:.1f} s"))
        # No bytecode cache: a .pyc records its source's mtime in whole seconds and its size,
        # so an edit of the same size within a second of a test run would run stale code.
        config = workspace.sandbox_config(allow_network=genome.policy.network, venv=ctx.venv,
                                          env={"PYTHONDONTWRITEBYTECODE": "1"})
        if genome.code_enabled:  # its tools and hooks are imported inside the sandbox
            config = genome_code.readable_genome(config, genome.path)
        runner = make_runner(config, strict=controls.strict)
        if controls.on_sandbox is not None:
            controls.on_sandbox(workspace, runner)
        test_command = self._test_command = detect_test_command(workspace.path,
                                                                ctx.settings.test_command)
        self._publish(TestCommandChosen(list(test_command.argv), test_command.source)
                      if test_command else TestCommandChosen())
        tools_ctx = self._tools_ctx = build_tool_context(ctx, genome, workspace, runner,
                                                         self._publish, baseline)
        tools_ctx.approve = controls.approve
        tools_ctx.extra_tools, hooks = genome_code.for_run(genome, runner, workspace.path,
                                                           first_request)
        if controls.mcp and genome.policy.mcp:
            from .mcp_config import load_servers
            from .mcp_tools import open_mcp

            # Warnings are phases, never stderr: the app owns the terminal. They include one
            # line per repository server waiting for the person's approval (and how to give it).
            def warn(line: str) -> None:
                self._publish(Phase("mcp", line.removeprefix("evoagent: ")))

            self._mcp = open_mcp(load_servers(ctx.root, warn, extra=controls.mcp_servers), runner,
                                 workspace.path, warn, policy=genome.policy,
                                 tool_settings=genome.settings.tools)
        # Native tool calling is decided in `_begin`: asking litellm imports it, and that
        # import (seconds) runs meanwhile in the warm-up thread, beside the baseline tests.
        solver = Solver(workspace, runner, llm, genome, tools_ctx, self._publish, test_command,
                        should_stop=controls.should_stop, hooks=hooks,
                        on_baseline=self._baseline_phase)
        tools_ctx.run_tests = lambda ids: _tests_text(solver.run_tests(ids))
        self.solver = solver
        if restore:
            self._add_mcp_tools()
            solver.native_tools = supports_native_tools(self.model_name)
            solver.begin(str(restore[0].get("content") or ""), self.conversational)
            solver.loop.messages[:] = restore
        if pending.strip():
            try:
                workspace.apply(pending)
            except Exception as exc:  # GitError: the tree moved on since it was saved
                self._publish(Phase("restore", f"the saved change no longer applies ({exc})"
                                    .splitlines()[0][:200]))

    def _begin(self, hits: dict[str, Any]) -> None:
        """The system prompt and the loop, once the first request's evidence is known."""
        genome, tools_ctx, solver = self.genome, self._tools_ctx, self.solver
        assert genome is not None and solver is not None
        offered = self._add_mcp_tools()
        native = solver.native_tools = supports_native_tools(self.model_name)
        system = genome.render(
            "system",
            tools=[{"name": s["function"]["name"], "description": s["function"]["description"]}
                   for s in tool_schemas(offered, tools_ctx.extra_tools)] if native else [],
            tool_protocol="" if native else text_protocol_help(offered, tools_ctx.extra_tools),
            project_instructions=project_instructions(self.workspace.path),
            skills=genome.skills_index(),
            repo_map=tools_ctx.repo_map(
                SYSTEM_MAP_TOKENS, [f["path"] for f in hits.get("files", [])[:5]]),
            conversation=self.conversational,
        )
        solver.begin(system, self.conversational)

    def _add_mcp_tools(self) -> list[str]:
        """The MCP servers' tools join the run's tools (waits, at most the start timeout,
        for servers still starting); the names offered to the model."""
        assert self.genome is not None and self.solver is not None
        mcp = self._mcp.tools() if self._mcp is not None else {}
        self._tools_ctx.extra_tools = {**self._tools_ctx.extra_tools, **mcp}
        self.solver.extra_tool_names = sorted(mcp)
        return [*self.genome.tools, *sorted(mcp)]

    def _baseline_phase(self, run: Any) -> None:
        if run is None:
            detail = "no test command"
        elif run.not_run:
            detail = f"could not run: {run.not_run}"
        else:
            detail = f"{len(run.passed)} passed, {len(run.failed) + len(run.errors)} failed"
        self._publish(Phase("baseline_tests", detail))

    def restore(self, messages: list[dict[str, Any]], pending: str) -> None:
        """Reopen a saved conversation: its messages, and its pending change applied to a
        fresh workspace from the person's current tree (a note when it no longer applies)."""
        self._open("", restore=messages, pending=pending)

    # -- one turn ---------------------------------------------------------------------

    def turn(self, request: str, read_only: bool = False) -> TurnOutcome:
        """One request, with its own run record; raises EvoError (after writing the record)
        when the model failed for good, keeping the best attempt's patch."""
        ctx, controls = self.ctx, self.controls
        record = self._record = RunRecord(controls.runs_dir or ctx.state.runs_dir,
                                          new_run_id(request.splitlines()[0] if request else "run"))
        self.id = self.id or record.run_id
        self.turns += 1
        started = time.monotonic()
        self._publish(SessionStarted(record.run_id, request,
                                     self.model_name or self.request_model or ""))
        report: dict[str, Any] = {"run_id": record.run_id, "issue": request,
                                  "conversation": self.id, "turn": self.turns}
        status, error_code, patch, answer = "error", None, "", ""
        usage_before = self._usage.totals() if self._usage else None
        try:
            if self.solver is None:
                self._open(request)
            report["model"] = self.model_name
            solver = self.solver
            assert solver is not None and self.genome is not None and self._usage is not None
            self._publish(Phase("locating", "memory and code index"))
            hits, recalled, self._knowledge_used = _evidence(ctx, self._tools_ctx, request,
                                                             controls.baseline)
            if not self.conversational:
                solver.baseline()  # a fix run's verdict needs it; a conversation runs it lazily
            if solver.loop is None:
                self._begin(hits)
            message = self._message(request, read_only, hits, recalled)
            self._publish(Phase("model_call", self.model_name))
            result = solver.turn(message, read_only=read_only)
            status = "error" if result.error is not None else result.status
            if status == "fixed" and self._knowledge_used and controls.baseline is None:
                ctx.knowledge.mark_helped(self._knowledge_used)
            totals = self._usage.totals()
            self._publish(CostUpdate(totals.prompt_tokens, totals.completion_tokens,
                                     totals.cost_usd))
            totals = _since(totals, usage_before) or totals  # the report is this turn's
            # An answer leaves the pending change as it was (also one restored from a save).
            patch = result.patch if status != "answered" else self.pending_patch()
            answer = result.summary
            record.write_patch(patch)
            report.update(_report(result, self.workspace.base, totals,
                                  time.monotonic() - started))
            if status == "answered":
                report["summary"] = answer
            if result.error is not None:
                # The model failed for good: the best attempt is written above, and the run
                # ends as the model error it is (exit 3), saying where that attempt is.
                report["error"] = result.error.message
                kept = (f"; the best attempt so far (attempt {result.best.number}) is in "
                        f"{record.patch_path}" if result.best and patch.strip() else "")
                if not self.conversational:
                    raise RunStopped(result.error.message + kept, result.error.code,
                                     patch=patch, run_dir=record.dir) from result.error
                # A conversation goes on: the turn ends in error with its best attempt
                # pending (the app reviews it, ACP shows it, the save keeps it).
                error_code = result.error.code
            if controls.after_solve is not None:
                controls.after_solve(result, record, report)
        except Cancelled:
            status = "cancelled"
            totals = self._usage.totals() if self._usage else None
            if totals is not None:
                self._publish(CostUpdate(totals.prompt_tokens, totals.completion_tokens,
                                         totals.cost_usd))
                report.update({"cost_usd": totals.cost_usd, "cost": totals.cost_label,
                               "tokens": {"prompt": totals.prompt_tokens,
                                          "completion": totals.completion_tokens}})
            if self.workspace is not None:
                report["base_sha"] = self.workspace.base
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        except EvoError as exc:  # model error, bad genome, patch that does not apply, ...
            report.setdefault("error", exc.message)
            error_code = exc.code
            raise
        finally:
            report["status"] = status
            report.setdefault("seconds", round(time.monotonic() - started, 3))
            record.write_report(report)
            exit_code = (error_code if error_code is not None
                         else EXIT_BY_STATUS.get(status, EXIT_NOT_FIXED))
            self._publish(Finished(status, str(report.get("summary") or ""), exit_code))
            record.close()
            self._record = None
        usage = self._usage.totals() if self._usage else None
        outcome = TurnOutcome(record.run_id, record.dir, status, exit_code, report, patch,
                              _since(usage, usage_before), answer)
        if self.on_turn_end is not None:
            self.on_turn_end(self, outcome)
        return outcome

    def _message(self, request: str, read_only: bool, hits: dict[str, Any],
                 recalled: list[dict[str, Any]]) -> str:
        """The user message of this turn: the genome's task prompt for headless fix, its
        turn prompt in a conversation; both carry what memory suggests, as evidence."""
        assert self.genome is not None and self.solver is not None
        genome = self.genome
        test_command = " ".join(self._test_command.argv) if self._test_command else ""
        if not self.conversational:
            return genome.render(
                "task", issue=request, locate_hits=hits, recall_hits=recalled,
                require_reproduction=genome.settings.loop.require_reproduction,
                test_command=test_command,
            )
        pending_files = _diff_paths(self.pending_patch())
        if self._note:
            request, self._note = f"({self._note})\n\n{request}", ""
        variables = dict(request=request, read_only=read_only, locate_hits=hits,
                         recall_hits=recalled, pending_files=pending_files,
                         test_command=test_command)
        return genome.render("turn", **variables)


def supports_native_tools(model_name: str) -> bool:
    """Native tool calling unless litellm knows the model lacks it (then: text protocol)."""
    if model_name.startswith("scripted/"):
        return True
    from .model import litellm_module

    try:
        return bool(litellm_module().supports_function_calling(model=model_name))
    except Exception:  # unknown to litellm's table: try native, the common case
        return True


def _since(now: SessionTotals | None, before: SessionTotals | None) -> SessionTotals | None:
    """This turn's usage (the model's totals are per conversation)."""
    if now is None or before is None:
        return now
    return SessionTotals(
        calls=now.calls - before.calls,
        prompt_tokens=now.prompt_tokens - before.prompt_tokens,
        completion_tokens=now.completion_tokens - before.completion_tokens,
        cached_tokens=now.cached_tokens - before.cached_tokens,
        known_cost_usd=now.known_cost_usd - before.known_cost_usd,
        unknown_cost_calls=now.unknown_cost_calls - before.unknown_cost_calls,
        elapsed_s=now.elapsed_s - before.elapsed_s,
    )



def load_genome(ctx: RepoContext) -> Genome:
    """The live genome (`.evoagent/agent`, branch main), created from the template once."""
    path = ctx.state.dir / "agent"
    init_genome(path)
    return Genome.load(path)


def project_instructions(root: Path) -> str:
    """AGENTS.md (CLAUDE.md as fallback) of the workspace, never through a link: a committed
    `AGENTS.md -> ~/.ssh/id_rsa` would otherwise put the key in the system prompt."""
    from evoagent.sandbox.untrusted_files import UntrustedFileError, read_untrusted

    for name in ("AGENTS.md", "CLAUDE.md"):
        try:
            data = read_untrusted(root / name, 1 << 20, root=root)
        except UntrustedFileError:
            continue
        return data.decode("utf-8", "replace")[:20_000]
    return ""


def _tests_text(run) -> str:
    if run is None:
        return "No test command was found for this repository."
    return run.digest() if not run.ok else f"{len(run.passed)} passed, 0 failed"


def _evidence(
    ctx: RepoContext, tools_ctx: ToolContext, issue: str, baseline: Baseline | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    """What memory suggests, shown to the model as evidence (never as instructions), and
    the ids of the knowledge records it was shown (their usefulness is tracked)."""
    from evoagent.memory.search import recall as run_recall
    from evoagent.memory.search import recall_knowledge

    as_of = baseline.as_of if baseline else None
    hits = tools_ctx.locate(issue, 8)
    known = recall_knowledge(ctx.knowledge, issue, k=3, as_of=as_of)
    recalled = [
        {"sha": h.knowledge.id, "subject": f"[approved fix] {h.knowledge.intent}",
         "files": h.knowledge.files}
        for h in known
    ] + [
        {"sha": h.memory.sha, "subject": h.memory.subject, "files": h.memory.paths}
        for h in run_recall(ctx.store, issue, k=5, as_of=as_of)
    ]
    used = [h.knowledge.id for h in known]
    if used and baseline is None:
        ctx.knowledge.mark_used(used)
    return hits, recalled, used


def _report(result: SolveResult, base: str, totals, seconds: float) -> dict[str, Any]:
    best = result.best
    return {
        "base_sha": base,
        "attempts": len(result.attempts),
        "best_attempt": best.number if best else None,
        "summary": best.outcome.summary if best else "",
        "steps": totals.calls,  # model calls; an attempt cut off by the budget counts too
        "tests": summarize(result),
        "tokens": {"prompt": totals.prompt_tokens, "completion": totals.completion_tokens},
        "cost_usd": totals.cost_usd,
        "cost": totals.cost_label,
        "budget": result.budget_reason or None,
        "seconds": round(seconds, 3),
        # A run the model's failure ended early: why, and the kernel's verdict on what is kept.
        **({"stopped": result.stopped, "verdict": result.status} if result.stopped else {}),
    }
