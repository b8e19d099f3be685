"""Task commands: tasks mine|rewrite|list|show|export|path — the repository's own benchmark."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import EvoError
from ..repo_context import RepoContext
from .output import StatusLine, clock_text, echo, emit_json, emit_json_line

if TYPE_CHECKING:
    from evoagent.agent.tasks.mine import MineReport
    from evoagent.agent.tasks.rewrite import RewriteResult
    from evoagent.agent.tasks.store import Task, TaskStore
    from evoagent.memory.knowledge import Knowledge

    from ..model import Model

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
TASKS_DIR = "tasks"


def _store(ctx: RepoContext) -> TaskStore:
    from evoagent.agent.tasks.store import TaskStore

    return TaskStore(ctx.state.dir / TASKS_DIR)


def _checked(call):
    """Task-store errors a user can cause become one line and exit code 2."""
    from evoagent.agent.tasks.store import TaskStoreError

    try:
        return call()
    except TaskStoreError as exc:
        raise EvoError(str(exc)) from exc


def _knowledge(ctx: RepoContext) -> list[Knowledge]:
    """Every knowledge record (any status), when a memory store exists."""
    if ctx.settings.store is None and not any(ctx.state.memory_dir.iterdir()):
        return []
    return ctx.knowledge.list()


def _model(ctx: RepoContext, model: str | None) -> Model:
    """The model `fix` would use (flag, config, env keys, Ollama); none is exit 3, one line."""
    from ..model import Model
    from ..model_select import select_model

    return Model(name=select_model(model or ctx.settings.model or None).name,
                 api_base=ctx.settings.api_base, context_limit=ctx.settings.context_limit)


def _rewrite(store: TaskStore, found: list[Task], llm: Model, as_json: bool) -> list[RewriteResult]:
    from evoagent.agent.tasks.rewrite import rewrite_tasks

    def progress(result: RewriteResult) -> None:
        if not as_json and sys.stderr.isatty():
            echo(
                f"  rewrote {result.task.id}"
                if result.kept
                else f"  kept the original of {result.task.id}: {result.reason}",
                err=True,
            )

    return rewrite_tasks(store, found, llm, progress)


def _rewrite_summary(results: list[RewriteResult]) -> dict:
    return {
        "rewritten": [r.task.id for r in results if r.kept],
        "refused": {r.task.id: r.reason for r in results if not r.kept},
    }


def _echo_rewrites(results: list[RewriteResult], model: str) -> None:
    kept = sum(r.kept for r in results)
    echo(f"rewrote {kept} of {len(results)} statement(s) with {model}")
    for result in results:
        if not result.kept:
            echo(f"  kept the original of {result.task.id}: {result.reason}")


class _MineStatus:
    """`tasks mine` progress on stderr (stdout stays the result, JSON or text): what is
    left once the history is walked, then a status after each decision."""

    def __init__(self, jobs: int, want: int | None):
        self.jobs, self.want = jobs, want
        self.status = StatusLine()

    def planned(self, report: MineReport) -> None:
        fixes = (
            f", {report.knowledge_examined} approved fixes "
            f"({report.knowledge_already_decided} already decided)"
            if report.knowledge_examined
            else ""
        )
        self.status.line(
            f"{report.examined} first-parent commits ({report.already_decided} already "
            f"decided){fixes}: {report.to_decide} to decide"
        )

    def decided(self, report: MineReport, note: str) -> None:
        eta = clock_text(report.eta_seconds(self.jobs, self.want))
        self.status.update(
            f"candidate {report.decided}/{report.to_decide} · tasks found "
            f"{len(report.tasks)} · ETA {eta}"
        )


def _mine_heading(last: int | None, since: str | None, want: int | None, runs: int,
                  jobs: int) -> str:
    """What `tasks mine` is about to do, said before the history is walked (which is slow
    on a long history, as is opening the memory store)."""
    where = f"the newest {last} first-parent commits" if last else "first-parent history"
    when = f" since {since}" if since else ""
    until = f", want: {want}" if want else ""
    return f"mining tasks from {where}{when} (runs per side: {runs}, jobs: {jobs}{until})…"


@click.group(invoke_without_command=True)
@click.pass_context
def tasks(ctx: click.Context) -> None:
    """Replay tasks mined from this repository's history and approved fixes: mine, rewrite,
    list, show, export."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_tasks)


@tasks.command()
@click.option(
    "--last",
    type=click.IntRange(min=1),
    metavar="N",
    help="Look at the newest N first-parent commits.",
)
@click.option(
    "--since", metavar="DATE", help="Only commits after DATE (anything git log --since takes)."
)
@click.option(
    "--want", type=click.IntRange(min=1), metavar="K", help="Stop after K new valid tasks."
)
@click.option(
    "--jobs",
    "-j",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Parallel validators.",
)
@click.option(
    "--per-test-timeout",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=1),
    help="Seconds per test.",
)
@click.option(
    "--run-timeout",
    default=900.0,
    show_default=True,
    type=click.FloatRange(min=1),
    help="Seconds per test run.",
)
@click.option(
    "--runs",
    default=3,
    show_default=True,
    type=click.IntRange(min=1),
    metavar="N",
    help="Runs per side when a task is possible: a kept test passes at the commit in all N, "
    "a test that varies is flaky and left out (1: one run per side).",
)
@click.option(
    "--cascade-limit",
    default=20,
    show_default=True,
    type=click.IntRange(min=1),
    help="Flag a task whose FAIL_TO_PASS has more tests than this.",
)
@click.option(
    "--ratios",
    metavar="TRAIN,VAL,TEST",
    help="Split ratios, kept for later commands (default 0.6,0.2,0.2).",
)
@click.option(
    "--venv",
    type=click.Path(file_okay=False, path_type=Path),
    help="Virtualenv to run tests in (default: the venv setting, else the repo's .venv).",
)
@click.option("--strict", is_flag=True, help="Refuse to run without bubblewrap isolation.")
@click.option(
    "--test-command", metavar="CMD", help="Override the configured/detected test command."
)
@click.option("--no-knowledge", is_flag=True, help="Skip approved fixes (knowledge records).")
@click.option(
    "--rewrite",
    is_flag=True,
    help="Have a model write each new task's statement as a bug report (see `tasks rewrite`).",
)
@click.option("--model", "-m", metavar="MODEL", help="Model for --rewrite (as for `fix`).")
@json_option
def mine(
    last,
    since,
    want,
    jobs,
    per_test_timeout,
    run_timeout,
    runs,
    cascade_limit,
    ratios,
    venv,
    strict,
    test_command,
    no_knowledge,
    rewrite,
    model,
    as_json,
) -> None:
    """Mine validated fail→pass tasks from first-parent history, newest first, then from
    approved fixes that bring a failing test (incremental: nothing is validated twice)."""
    from evoagent.agent.tasks.mine import mine_tasks
    from evoagent.agent.tasks.store import parse_ratios
    from evoagent.agent.tasks.validate import ValidationConfig
    from evoagent.sandbox.local import SandboxUnavailable
    from evoagent.sandbox.testdetect import detect_test_command

    ctx = RepoContext.open(test_command=test_command, model=model)
    if not ctx.has_commits():
        raise EvoError("this repository has no commits yet: nothing to mine")
    # Chosen before mining: a missing model should not surface after an hour of validation.
    llm = _model(ctx, model) if rewrite else None
    store = _store(ctx)
    if ratios:
        store.set_ratios(_checked(lambda: parse_ratios(ratios)))
    command = detect_test_command(ctx.root, ctx.settings.test_command)
    if command is None:
        raise EvoError(
            "no test command configured or detected (set test_command in .evoagent/config.toml)"
        )
    if venv is None:
        venv = ctx.venv  # the `venv` setting, else the repo's .venv: as fix and bench use
    config = ValidationConfig(
        command,
        venv.resolve() if venv else None,
        per_test_timeout,
        run_timeout,
        cascade_limit=cascade_limit,
        strict=strict,
        runs=runs,
    )

    echo(_mine_heading(last, since, want, runs, jobs), err=True)
    progress = _MineStatus(jobs, want)
    records = _knowledge(ctx)
    try:
        report = mine_tasks(
            ctx.root,
            store,
            config,
            ctx.state.dir / "sandboxes",
            last=last,
            since=since,
            want=want,
            jobs=jobs,
            knowledge_intents={k.commit_sha: k.intent for k in records if k.commit_sha},
            knowledge=None if no_knowledge else records,
            runs_dir=ctx.state.runs_dir,
            progress=progress,
        )
    except SandboxUnavailable as exc:
        raise EvoError(str(exc)) from exc
    finally:
        progress.status.close()
    rewrites = _rewrite(store, report.tasks, llm, as_json) if llm else []
    if as_json:
        extra = {"store": str(store.path)}
        if llm:
            extra["rewrite"] = _rewrite_summary(rewrites) | {"model": llm.name}
        emit_json(report.to_json() | extra)
        return
    echo(
        f"looked at {report.examined} commits ({report.already_decided} already decided): "
        f"{report.candidates} candidates, {len(report.tasks)} new tasks, "
        f"{len(report.rejects)} rejected in {report.seconds:.1f}s"
    )
    for reason, count in report.reasons().items():
        echo(f"  {count:>5}  {reason}")
    if report.knowledge_examined or report.knowledge_skipped:
        echo(
            f"approved fixes: {report.knowledge_examined} active "
            f"({report.knowledge_already_decided} already decided), "
            f"{report.knowledge_skipped} retracted or superseded skipped"
        )
    for task in report.tasks:
        flag = "  [cascade]" if task.cascade else ""
        echo(
            f"task {task.id}: {len(task.fail_to_pass)} fail→pass, "
            f"{len(task.pass_to_pass)} pass→pass{flag}"
        )
    if llm:
        _echo_rewrites(rewrites, llm.name)


@tasks.command("rewrite")
@click.argument("ids", nargs=-1)
@click.option("--model", "-m", metavar="MODEL", help="Any litellm model name (as for `fix`).")
@click.option("--force", is_flag=True, help="Without IDS: redo tasks already rewritten too.")
@json_option
def rewrite_cmd(ids: tuple[str, ...], model: str | None, force: bool, as_json: bool) -> None:
    """Have a model rewrite task statements as bug reports (symptom, no fix).

    IDS (ids, unique prefixes or commit prefixes) are rewritten again even when they have
    a rewrite; without IDS, every task that has none yet. A rewrite that names a file the
    fix changes or repeats a line it adds is refused and the original kept. The original
    statement is always kept. Exit 3 when no model is available.
    """
    ctx = RepoContext.open(model=model)
    store = _store(ctx)
    if ids:
        found = [_checked(lambda id=id: store.get(id)) for id in ids]
        found = list({t.commit: t for t in found}.values())
    else:
        found = [t for t in store.tasks() if force or not t.rewritten_statement]
    if not found:
        if as_json:
            emit_json({"rewritten": [], "refused": {}, "model": None})
        else:
            echo("nothing to rewrite (every task has a rewrite; --force redoes them)")
        return
    llm = _model(ctx, model)
    results = _rewrite(store, found, llm, as_json)
    if as_json:
        emit_json(_rewrite_summary(results) | {"model": llm.name})
        return
    _echo_rewrites(results, llm.name)


def _row(task: Task, split: str) -> str:
    subject = task.problem_statement.splitlines()[0] if task.problem_statement else ""
    flag = " [cascade]" if task.cascade else ""
    flag += " [rewritten]" if task.rewritten_statement else ""
    return f"{task.id}  {split:<5}  {len(task.fail_to_pass):>3} F2P  {subject[:70]}{flag}"


@tasks.command("list")
@click.option("--split", type=click.Choice(["train", "val", "test"]), help="Only this split.")
@json_option
def list_tasks(split: str | None = None, as_json: bool = False) -> None:
    """List mined tasks with their split."""
    ctx = RepoContext.open()
    store = _store(ctx)
    found = _checked(lambda: store.in_split(split))
    ratios = _checked(store.ratios)
    from evoagent.agent.tasks.store import split_of

    if as_json:
        emit_json(
            [
                {
                    "id": t.id,
                    "split": split_of(t.id, ratios),
                    "commit": t.commit,
                    "base_commit": t.base_commit,
                    "fail_to_pass": t.fail_to_pass,
                    "pass_to_pass": len(t.pass_to_pass),
                    "cascade": t.cascade,
                    "source": t.source,
                    "rewritten": bool(t.rewritten_statement),
                    "subject": t.problem_statement.splitlines()[0] if t.problem_statement else "",
                }
                for t in found
            ]
        )
        return
    if not found:
        echo("no tasks yet (mine some with `evoagent tasks mine`)")
        return
    for task in found:
        echo(_row(task, split_of(task.id, ratios)))


@tasks.command()
@click.argument("id")
@json_option
def show(id: str, as_json: bool) -> None:
    """Show one task (ID, a unique prefix, or a commit sha prefix)."""
    ctx = RepoContext.open()
    store = _store(ctx)
    task = _checked(lambda: store.get(id))
    split = _checked(lambda: store.split_of(task))
    if as_json:
        emit_json(task.to_json() | {"split": split})
        return
    rows = [
        ("id", task.id),
        ("split", split),
        ("repo", task.repo),
        ("base", task.base_commit),
        ("commit", task.commit),
        ("source", task.source if task.source != "history" else ""),
        ("created", task.created_at),
        ("test command", task.test_command),
        ("test files", ", ".join(task.test_files)),
        ("issue refs", ", ".join(task.issue_refs)),
        ("cascade", task.cascade_reason),
        ("flaky", ", ".join(task.flaky)),
    ]
    for label, value in rows:
        if value:
            echo(f"{label + ':':<13}{value}")
    echo(f"FAIL_TO_PASS ({len(task.fail_to_pass)}):")
    for test in task.fail_to_pass:
        echo(f"  {test}{'  (changed by the diff)' if test in task.diff_tests else ''}")
    echo(f"PASS_TO_PASS ({len(task.pass_to_pass)}):")
    for test in task.pass_to_pass:
        echo(f"  {test}")
    echo("")
    echo(f"problem statement ({', '.join(task.statement_sources)}):")
    echo(task.problem_statement)
    if task.rewritten_statement:
        echo("")
        echo(f"rewritten statement (model-written by {task.rewrite_model}):")
        echo(task.rewritten_statement)
    if task.rewrite_rejected:
        echo("")
        echo(f"last rewrite refused: {task.rewrite_rejected}")


@tasks.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--split", type=click.Choice(["train", "val", "test"]), help="Only this split.")
def export(file: Path, split: str | None) -> None:
    """Write tasks to FILE.jsonl as SWE-bench instances (`-` for stdout)."""
    ctx = RepoContext.open()
    found = _checked(lambda: _store(ctx).in_split(split))
    rows = [t.to_swebench() for t in found]
    if str(file) == "-":
        for row in rows:
            emit_json_line(row)
        return
    file.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    echo(f"wrote {len(found)} task(s) to {file}", err=True)


@tasks.command()
def path() -> None:
    """Print where tasks are stored."""
    echo(_store(RepoContext.open()).path)


COMMANDS = [tasks]
