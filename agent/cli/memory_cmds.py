"""Memory commands: init, mine, recall, locate."""

from __future__ import annotations

import sys

import click

from ..errors import EvoError
from ..memory_text import commit_date, locate_lines, recall_lines
from ..repo_context import RepoContext
from .output import ProgressLine, echo, emit_json

store_option = click.option(
    "--store", metavar="URI", help="LanceDB URI of the memory store (default .evoagent/memory)."
)
k_option = click.option(
    "--k", "-k", default=10, show_default=True, type=click.IntRange(min=1), help="How many results."
)
as_of_option = click.option(
    "--as-of", "as_of", metavar="REV", help="See only history REV can reach (and code at REV)."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.command()
def init() -> None:
    """Create .evoagent/ here (config, memory, runs, the agent's genome); keep it out of git."""
    from ..genome import init_genome

    ctx = RepoContext.open()
    created = init_genome(ctx.state.dir / "agent")
    echo(f"evoagent state in {ctx.state.dir}")
    if created:
        echo(f"agent genome (its own git repository, branch main) in {ctx.state.dir / 'agent'}")


@click.command()
@store_option
@json_option
@click.option(
    "--rebuild", is_flag=True,
    help="Mine every commit again into a new memories table (the repair for a damaged store). "
    "Approved fixes are kept, or moved aside into a backup folder if they cannot be read.",
)
def mine(store: str | None, as_json: bool, rebuild: bool) -> None:
    """Mine the repository's git history into memories (incremental, resumable)."""
    from evoagent.memory.mine import mine as run_mine

    ctx = RepoContext.open(store=store)
    progress = ProgressLine("rebuilding" if rebuild else "mining", "commits")
    try:
        result = run_mine(ctx.root, ctx.store, progress=progress,
                          batch_size=ctx.settings.mine_batch, rebuild=rebuild)
    finally:
        progress.close()
    for name in result.moved_aside:  # moved, every byte kept: the person decides
        if name == "memories":
            echo(f"note: the previous memories table (unreadable, or holding commits HEAD no "
                 f"longer reaches) is kept in {result.backup}", err=True)
        elif name == "_meta":
            echo(f"note: the unreadable _meta table was moved to {result.backup}; its marks "
                 "were written afresh", err=True)
        else:
            echo(f"warning: the {name} table could not be read and cannot be rebuilt from git: "
                 f"moved, every byte kept, to {result.backup}/{name}.lance", err=True)
    if as_json:
        report = {
            "stored": result.stored,
            "skipped": result.skipped,
            "total": result.total,
            "seconds": round(result.seconds, 3),
            "shallow": result.shallow,
            "empty": result.empty,
            "store": ctx.store.path,
        }
        if rebuild:
            report.update(rebuilt=True, backup=result.backup, moved_aside=result.moved_aside)
        emit_json(report)
        return
    if result.empty:
        echo("no commits yet: nothing to mine")
        return
    if result.rebuilt:
        echo(f"rebuilt the memories from git: {result.stored} commit(s) ({result.seconds:.1f}s)")
    else:
        echo(
            f"stored {result.stored} new commit(s), {result.skipped} already known, "
            f"{result.total} in history ({result.seconds:.1f}s)"
        )
    if result.shallow:
        echo("note: this is a shallow clone; only the history present was mined")


@click.command()
@click.argument("query", nargs=-1, required=True)
@k_option
@as_of_option
@store_option
@json_option
def recall(query: tuple[str, ...], k: int, as_of: str | None, store: str | None, as_json: bool) -> None:
    """Search memories: past commits most relevant to QUERY (then approved fixes)."""
    from evoagent.memory.knowledge import KnowledgeStore
    from evoagent.memory.search import recall as run_recall
    from evoagent.memory.search import recall_knowledge

    ctx = RepoContext.open(store=store)
    text, point = " ".join(query), ctx.as_of(as_of)
    hits = run_recall(ctx.store, text, k=k, as_of=point)
    known = recall_knowledge(KnowledgeStore(ctx.store), text, k=k, as_of=point)
    if as_json:
        emit_json(
            [
                {
                    "kind": "memory",
                    "sha": h.memory.sha,
                    "date": commit_date(h.memory.committed_at),
                    "subject": h.memory.subject,
                    "files": h.memory.paths,
                    "score": round(h.score, 6),
                }
                for h in hits
            ]
            + [
                {
                    "kind": "knowledge",
                    "id": h.knowledge.id,
                    "intent": h.knowledge.intent,
                    "files": h.knowledge.files,
                    "score": round(h.score, 6),
                    "approved_by": h.knowledge.approved_by,
                    "run_id": h.knowledge.run_id,
                }
                for h in known
            ]
        )
        return
    if not hits:
        echo("no matching memories" + ("" if ctx.store.count() else " (run `evoagent mine`)"))
    for line in recall_lines(hits, known):
        echo(line)


def _read_issue(query: tuple[str, ...], file: str | None) -> str:
    if file:
        try:
            with open(file, encoding="utf-8", errors="replace") as handle:
                return handle.read()
        except OSError as exc:
            raise EvoError(f"cannot read {file}: {exc.strerror}") from exc
    if query == ("-",):
        return sys.stdin.read()
    return " ".join(query)


@click.command()
@click.argument("query", nargs=-1)
@click.option("--file", "file", metavar="PATH", help="Read the issue text from a file.")
@k_option
@as_of_option
@store_option
@json_option
def locate(
    query: tuple[str, ...], file: str | None, k: int, as_of: str | None, store: str | None, as_json: bool
) -> None:
    """Rank the files and symbols an issue most likely needs changed (no model call).

    The issue is QUERY, the text of --file PATH, or stdin when QUERY is `-`.
    """
    from evoagent.memory.knowledge import KnowledgeStore
    from evoagent.memory.locate import locate as run_locate

    text = _read_issue(query, file)
    if not text.strip():
        raise EvoError("locate needs an issue: QUERY, --file PATH, or - for stdin")
    ctx = RepoContext.open(store=store)
    if not ctx.has_commits():
        raise EvoError("this repository has no commits yet: there is no code to locate in")
    result = run_locate(
        ctx.root, text, store=ctx.store, cache_dir=ctx.state.cache_dir, k=k, as_of=ctx.as_of(as_of),
        knowledge=KnowledgeStore(ctx.store),
    )
    if as_json:
        emit_json(result.to_json())
        return
    for line in locate_lines(result, k):
        echo(line)


COMMANDS = [init, mine, recall, locate]
