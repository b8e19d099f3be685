"""`evoagent fix`: issue in, sandboxed fix proven by the repo's tests out.

Wires the parts together for one session (`run_request`): the genome, the model, a sandbox
workspace, memory (locate/recall as evidence), the tools, the solver, and the run record.
Front ends pass an `emit` callable and get every event; `run_fix` (headless) and the app's
`Session.ask` both run through `run_request`, differing only in their `RunControls`.

The user's working tree is written only with `apply=True`; `commit=True` makes a branch
from HEAD without touching the working tree or the index.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import genome_code
from .errors import EXIT_BUDGET, EXIT_NO_VERDICT, EXIT_NOT_FIXED, EXIT_OK, EvoError
from .events import CostUpdate, Event, Finished, SessionStarted, TestCommandChosen
from .genome import Genome, init_genome
from .loop import Cancelled
from .model import Model
from .model_select import select_model
from .repo_context import RepoContext
from .run_record import RunRecord, new_run_id
from .solve import Solver, SolveResult, summarize
from .tool_context import build_tool_context
from .tools import tool_schemas
from .tools.base import ToolContext
from .tools.protocol import text_protocol_help
from .usage import Budget, SessionTotals, SessionUsage

EXIT_INTERRUPTED = 130
"""Ctrl-C, as shells report SIGINT."""

SYSTEM_MAP_TOKENS = 1024  # the repo map in the system prompt, centred on locate's best files

EXIT_BY_STATUS = {
    "fixed": EXIT_OK,
    "not_fixed": EXIT_NOT_FIXED,
    "not_verified": EXIT_NO_VERDICT,
    "tests_did_not_run": EXIT_NO_VERDICT,
    "budget_exhausted": EXIT_BUDGET,
    "interrupted": EXIT_INTERRUPTED,
    "cancelled": EXIT_INTERRUPTED,
}


@dataclass
class FixOptions:
    issue: str
    model: str | None = None
    apply: bool = False
    commit: bool = False
    strict: bool = False
    """Refuse to run without bubblewrap isolation."""


@dataclass
class FixOutcome:
    run_id: str
    run_dir: Path
    status: str
    exit_code: int
    report: dict[str, Any]
    patch: str = ""
    """The proposed patch (also in run_dir/patch.diff)."""
    usage: SessionTotals | None = None
    """Tokens and cost of this run."""


def read_github_event(path: Path) -> str:
    """The issue text of a GitHub Actions `issues`/`issue_comment` event payload."""
    try:
        payload = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise EvoError(f"cannot read GitHub event {path}: {exc}") from exc
    issue = payload.get("issue") if isinstance(payload, dict) else None
    if not isinstance(issue, dict) or not (issue.get("title") or issue.get("body")):
        raise EvoError(f"{path}: not a GitHub issue event (no issue.title/body)")
    number = issue.get("number")
    head = f"{issue.get('title', '').strip()}" + (f" (#{number})" if number else "")
    return f"{head}\n\n{issue.get('body') or ''}".strip()


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


@dataclass
class Baseline:
    """A run pinned to commit `rev`: the workspace holds `rev`'s tree only (no history, so
    no later commit can be dug out of it), and memory answers as of `rev` (nothing after it
    reaches the agent). Knowledge usage is not counted: a benchmark is not real use."""

    rev: str
    as_of: Any
    """`evoagent.memory.revisions.AsOf` for `rev`."""


def run_fix(
    ctx: RepoContext, options: FixOptions, emit: Callable[[Event], None] = lambda e: None
) -> FixOutcome:
    def deliver(result: SolveResult, record: RunRecord, report: dict[str, Any]) -> None:
        if result.status == "fixed" and result.patch.strip():
            if options.apply:
                report["applied"] = _apply(ctx.root, record.patch_path)
            if options.commit:
                report["branch"] = _commit_branch(ctx.root, result, record.run_id, options.issue)

    return run_request(ctx, options.issue, options.model, emit,
                       RunControls(strict=options.strict, after_solve=deliver))


def run_request(
    ctx: RepoContext,
    request: str,
    model: str | None,
    emit: Callable[[Event], None],
    controls: RunControls | None = None,
) -> FixOutcome:
    """One run end to end in a fresh sandbox: genome, model, workspace, tools, evidence,
    solver, run record. The user's tree is touched only by `controls.after_solve`."""
    from evoagent.sandbox.local import make_runner
    from evoagent.sandbox.testdetect import detect_test_command
    from evoagent.sandbox.workspace import Workspace

    controls = controls or RunControls()
    if not ctx.has_commits():
        raise EvoError("this repository has no commits yet: nothing to fix against")
    genome = controls.genome or load_genome(ctx)
    baseline = controls.baseline
    model_name = select_model(model or ctx.settings.model or None).name
    loop = genome.settings.loop
    session = SessionUsage()
    budget = Budget(loop.max_steps * (loop.refine_attempts + 1), loop.max_cost_usd or None, loop.max_seconds)
    llm = Model(name=model_name, session=session, budget=budget, stream=controls.stream)
    record = RunRecord(controls.runs_dir or ctx.state.runs_dir,
                       new_run_id(request.splitlines()[0]))
    started = time.monotonic()

    def publish(event: Event) -> None:
        record.write_event(event)
        emit(event)

    publish(SessionStarted(record.run_id, request, model_name))
    if baseline is None:
        workspace = Workspace.create(ctx.root, ctx.state.dir / "sandboxes", id=record.run_id)
    else:
        workspace = Workspace.create(ctx.root, ctx.state.dir / "sandboxes", rev=baseline.rev,
                                     include_user_changes=False, id=record.run_id, history=False)
    report: dict[str, Any] = {"run_id": record.run_id, "issue": request, "model": model_name}
    status = "error"
    error_code: int | None = None
    patch = ""
    try:
        # No bytecode cache: a .pyc records its source's mtime in whole seconds and its size,
        # so an edit of the same size within a second of a test run would run stale code.
        config = workspace.sandbox_config(allow_network=genome.policy.network, venv=ctx.venv,
                                          env={"PYTHONDONTWRITEBYTECODE": "1"})
        if genome.code_enabled:  # its tools and hooks are imported inside the sandbox
            config = genome_code.readable_genome(config, genome.path)
        runner = make_runner(config, strict=controls.strict)
        if controls.on_sandbox is not None:
            controls.on_sandbox(workspace, runner)
        test_command = detect_test_command(workspace.path, ctx.settings.test_command)
        publish(TestCommandChosen(list(test_command.argv), test_command.source)
                if test_command else TestCommandChosen())
        tools_ctx = build_tool_context(ctx, genome, workspace, runner, publish, baseline)
        tools_ctx.approve = controls.approve
        tools_ctx.extra_tools, hooks = genome_code.for_run(genome, runner, workspace.path, request)
        native = supports_native_tools(model_name)
        solver = Solver(workspace, runner, llm, genome, tools_ctx, publish, test_command,
                        native_tools=native, should_stop=controls.should_stop, hooks=hooks)
        tools_ctx.run_tests = lambda ids: _tests_text(solver.run_tests(ids))
        locate_hits, recall_hits, knowledge_used = _evidence(ctx, tools_ctx, request, baseline)
        system = genome.render(
            "system",
            tools=[{"name": s["function"]["name"], "description": s["function"]["description"]}
                   for s in tool_schemas(genome.tools, tools_ctx.extra_tools)] if native else [],
            tool_protocol="" if native else text_protocol_help(genome.tools, tools_ctx.extra_tools),
            project_instructions=project_instructions(workspace.path),
            skills=genome.skills_index(),
            repo_map=tools_ctx.repo_map(
                SYSTEM_MAP_TOKENS, [f["path"] for f in locate_hits.get("files", [])[:5]]
            ),
        )
        task = genome.render(
            "task", issue=request, locate_hits=locate_hits, recall_hits=recall_hits,
            require_reproduction=loop.require_reproduction,
            test_command=" ".join(test_command.argv) if test_command else "",
        )
        result = solver.solve(system, task)
        status = "error" if result.error is not None else result.status
        if status == "fixed" and knowledge_used and baseline is None:
            ctx.knowledge.mark_helped(knowledge_used)
        totals = session.totals()
        publish(CostUpdate(totals.prompt_tokens, totals.completion_tokens, totals.cost_usd))
        patch = result.patch
        record.write_patch(patch)
        report.update(_report(result, workspace.base, totals, time.monotonic() - started))
        if result.error is not None:
            # The model failed for good: the best attempt is written above, and the run ends
            # as the model error it is (exit 3), saying where that attempt is.
            report["error"] = result.error.message
            kept = (f"; the best attempt so far (attempt {result.best.number}) is in "
                    f"{record.patch_path}" if result.best and patch.strip() else "")
            raise EvoError(result.error.message + kept, result.error.code) from result.error
        if controls.after_solve is not None:
            controls.after_solve(result, record, report)
    except Cancelled:
        status = "cancelled"
        totals = session.totals()
        publish(CostUpdate(totals.prompt_tokens, totals.completion_tokens, totals.cost_usd))
        report.update({"base_sha": workspace.base, "cost_usd": totals.cost_usd,
                       "cost": totals.cost_label,
                       "tokens": {"prompt": totals.prompt_tokens,
                                  "completion": totals.completion_tokens}})
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
        exit_code = error_code if error_code is not None else EXIT_BY_STATUS.get(status, EXIT_NOT_FIXED)
        publish(Finished(status, report.get("summary", ""), exit_code))
        record.close()
        workspace.remove()
    return FixOutcome(record.run_id, record.dir, status, exit_code, report, patch,
                      session.totals())


def supports_native_tools(model_name: str) -> bool:
    """Native tool calling unless litellm knows the model lacks it (then: text protocol)."""
    if model_name.startswith("scripted/"):
        return True
    from .model import litellm_module

    try:
        return bool(litellm_module().supports_function_calling(model=model_name))
    except Exception:  # unknown to litellm's table: try native, the common case
        return True


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


def _apply(root: Path, patch: Path) -> bool:
    check = subprocess.run(["git", "-C", str(root), "apply", "--check", str(patch)],
                           capture_output=True, text=True)
    if check.returncode != 0:
        raise EvoError(f"the patch does not apply to the working tree: {check.stderr.strip()}")
    subprocess.run(["git", "-C", str(root), "apply", str(patch)], check=True)
    return True


def _commit_branch(root: Path, result: SolveResult, run_id: str, issue: str) -> str:
    """Commit the patch on `evoagent/fix-<slug>` from HEAD via a private index."""
    slug = run_id.split("-", 2)[-1].rsplit("-", 1)[0] or "issue"
    branch = f"evoagent/fix-{slug}"
    with tempfile.TemporaryDirectory(prefix="evoagent-commit-") as tmp:
        env = {**os.environ, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        patch = Path(tmp) / "patch.diff"
        patch.write_text(result.patch)

        def git(*args: str, stdin: str | None = None) -> str:
            return subprocess.run(["git", "-C", str(root), *args], env=env, input=stdin,
                                  capture_output=True, text=True, check=True).stdout.strip()

        git("read-tree", "HEAD")
        try:
            git("apply", "--cached", str(patch))
        except subprocess.CalledProcessError as exc:
            # The patch was proven on HEAD plus the user's uncommitted changes and touches them.
            reason = (exc.stderr.strip().splitlines() or ["does not apply"])[0]
            raise EvoError(f"cannot commit the patch on HEAD, it needs your uncommitted "
                           f"changes ({reason}); commit them first, or use --apply") from exc
        tree = git("write-tree")
        title = issue.splitlines()[0].strip()[:68] or "Fix issue"
        message = f"{title}\n\n{result.best.outcome.summary if result.best else ''}\n\nEvoagent-Run: {run_id}\n"
        sha = git("commit-tree", tree, "-p", "HEAD", stdin=message)
        # A second run on the same issue gets its own branch instead of moving the first.
        taken = git("for-each-ref", "--format=%(refname:short)", f"refs/heads/{branch}*").split()
        if branch in taken:
            branch = f"{branch}-{run_id.rsplit('-', 1)[-1]}"
        # The empty old value makes update-ref refuse to overwrite an existing ref.
        git("update-ref", f"refs/heads/{branch}", sha, "")
    return branch
