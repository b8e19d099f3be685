"""Knowledge commands: approve a run's fix; knowledge list|show|retract|supersede|path."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ..errors import EvoError
from ..repo_context import RepoContext
from .output import echo, emit_json

if TYPE_CHECKING:
    from evoagent.memory.knowledge import Knowledge, KnowledgeStore

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
store_option = click.option(
    "--store", metavar="URI", help="LanceDB URI of the memory store (default .evoagent/memory)."
)


def _open(store: str | None) -> tuple[RepoContext, KnowledgeStore]:
    from evoagent.memory.knowledge import KnowledgeStore

    ctx = RepoContext.open(store=store)
    return ctx, KnowledgeStore(ctx.store)


def _summary_line(k: Knowledge) -> str:
    status = "" if k.active else f"  [{k.status}]"
    return f"{k.id}  {k.approved_date}  {k.intent}{status}"


@click.command()
@click.argument("run_id")
@click.option("--note", default="", metavar="TEXT", help="Why this fix is worth keeping.")
@click.option("--force", is_flag=True, help="Keep a run that did not end fixed.")
@store_option
@json_option
def approve(run_id: str, note: str, force: bool, store: str | None, as_json: bool) -> None:
    """Keep the fix of run RUN_ID (or a unique prefix) as long-term knowledge."""
    from ..knowledge_capture import capture_from_run, default_approver, resolve_run

    ctx, knowledge = _open(store)
    run_dir = resolve_run(ctx.state.runs_dir, run_id)
    record = capture_from_run(run_dir, default_approver(ctx.root), note, knowledge, force=force)
    if as_json:
        emit_json(record.to_json())
        return
    echo(f"kept run {record.run_id} as knowledge {record.id}: {record.intent}")
    if record.files:
        echo(f"    files: {', '.join(record.files)}")


@click.group(invoke_without_command=True)
@click.pass_context
def knowledge(ctx: click.Context) -> None:
    """Approved fixes kept as knowledge: list, show, retract, supersede (default: list)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_knowledge)


@knowledge.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include retracted and superseded records.")
@store_option
@json_option
def list_knowledge(show_all: bool = False, store: str | None = None, as_json: bool = False) -> None:
    """List knowledge records, newest first (active ones unless --all)."""
    _, ks = _open(store)
    records = ks.list(None if show_all else "active")
    if as_json:
        emit_json([r.to_json(diff=False) for r in records])
        return
    if not records:
        echo("no knowledge yet (keep a fix with `evoagent approve RUN_ID`)")
        return
    for record in records:
        echo(_summary_line(record))


@knowledge.command()
@click.argument("id")
@store_option
@json_option
def show(id: str, store: str | None, as_json: bool) -> None:
    """Show one knowledge record (ID or a unique prefix) with its provenance and diff."""
    _, ks = _open(store)
    record = ks.require(id)
    if as_json:
        emit_json(record.to_json())
        return
    rows = [
        ("id", record.id),
        ("status", record.status),
        ("intent", record.intent),
        ("root cause", record.root_cause),
        ("solution", record.solution),
        ("files", ", ".join(record.files)),
        ("tests", ", ".join(record.tests)),
        ("note", record.note),
        ("approved", f"by {record.approved_by} on {record.approved_date}"),
        ("run", record.run_id),
        ("base", record.base_sha),
        ("commit", record.commit_sha),
        ("superseded by", record.superseded_by),
        ("retracted", record.retracted_reason),
        ("used", f"{record.uses} time(s), helped {record.helped}"),
    ]
    for label, value in rows:
        if value:
            echo(f"{label + ':':<15}{value}")
    echo("")
    echo(record.diff.rstrip("\n"))


@knowledge.command()
@click.argument("id")
@click.option("--reason", default="", metavar="TEXT", help="Why it no longer holds (required).")
@store_option
def retract(id: str, reason: str, store: str | None) -> None:
    """Retract a record: kept for the record, never surfaced again."""
    # Checked here rather than by click so a missing reason is one line through main().
    if not reason.strip():
        raise EvoError("knowledge retract needs --reason TEXT")
    _, ks = _open(store)
    record = ks.retract(id, reason)
    echo(f"retracted knowledge {record.id}")


@knowledge.command()
@click.argument("old_id")
@click.argument("new_id")
@store_option
def supersede(old_id: str, new_id: str, store: str | None) -> None:
    """Replace record OLD_ID by NEW_ID: only the new one is surfaced from now on."""
    _, ks = _open(store)
    record = ks.supersede(old_id, new_id)
    echo(f"knowledge {record.id} superseded by {record.superseded_by}")


@knowledge.command()
@store_option
def path(store: str | None) -> None:
    """Print where knowledge is stored (the LanceDB database it shares with memories)."""
    _, ks = _open(store)
    echo(ks.path)


COMMANDS = [approve, knowledge]
