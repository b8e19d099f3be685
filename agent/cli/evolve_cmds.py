"""`evoagent evolve run|list|show|diff|promote|rollback|reject` — hyperagent mode."""

from __future__ import annotations

import sys

import click

from ..errors import EvoError
from ..repo_context import RepoContext
from .output import echo, emit_json

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group()
def evolve() -> None:
    """Hyperagent mode: the agent proposes changes to its own genome on branches, scored on
    the repository's own tasks; a person reviews, promotes or rolls back every change."""


@evolve.command("run")
@click.option("--generations", "-n", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--parallel", "-p", default=1, show_default=True, type=click.IntRange(min=1),
              help="Variants proposed in parallel per generation.")
@click.option("--budget-usd", type=click.FloatRange(min=0), metavar="X",
              help="Stop when this much has been spent (meta agent and benchmarks).")
@click.option("--max-hours", type=click.FloatRange(min=0), metavar="H")
@click.option("--jobs", "-j", default=1, show_default=True, type=click.IntRange(min=1),
              help="Benchmark tasks in parallel.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--model", metavar="M", help="The task agent's model (default: as `fix` picks).")
@click.option("--meta-model", metavar="M", help="The meta agent's model (default: --model).")
@click.option("--small-stage", default=5, show_default=True, type=click.IntRange(min=1),
              help="Val tasks in the first scoring stage.")
@click.option("--seed", type=int, help="Seed parent selection (reproducible runs).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run.")
@click.option("--strict", is_flag=True, help="Refuse to run without bubblewrap isolation.")
@json_option
def run(generations, parallel, budget_usd, max_hours, jobs, executor, model, meta_model,
        small_stage, seed, resume, strict, as_json) -> None:
    """Run generations of propose → gates → score; every variant is archived."""
    from evoagent.agent.evolve.generations import EvolveOptions, run_evolution

    ctx = RepoContext.open()
    options = EvolveOptions(generations=generations, parallel=parallel, budget_usd=budget_usd,
                            max_hours=max_hours, jobs=jobs, executor=executor, model=model,
                            meta_model=meta_model, small_stage=small_stage, seed=seed,
                            strict=strict, resume=resume)
    tty = sys.stderr.isatty() and not as_json

    def progress(text: str) -> None:
        if tty:
            echo(f"  {text}", err=True)

    try:
        report = run_evolution(ctx, options, progress)
    except KeyboardInterrupt:
        echo("evoagent: interrupted; the archive is consistent — continue with "
             "`evoagent evolve run --resume`", err=True)
        sys.exit(130)
    if as_json:
        emit_json(report.to_json())
        return
    echo(f"{report.generations_done} generation(s), {len(report.variants)} variant(s): "
         f"{len(report.admitted)} admitted, {len(report.rejected)} rejected; "
         f"${report.cost_usd:.4f}, {report.seconds:.0f}s")
    for variant_id, reason in report.rejected.items():
        echo(f"  rejected {variant_id}: {reason}")
    if report.admitted:
        echo("review with `evoagent evolve show ID`; only you can `evoagent evolve promote ID`")


def _tree_lines(variants) -> list[str]:
    by_parent: dict[str | None, list] = {}
    for v in variants:
        by_parent.setdefault(v.parent, []).append(v)
    lines: list[str] = []

    def walk(parent: str | None, depth: int) -> None:
        for v in by_parent.get(parent, []):
            val = v.scores.get("val") or v.scores.get("small")
            score = f" {val.resolved}/{val.total}" if val else ""
            reason = f" — {v.reason}" if v.reason and v.status == "rejected" else ""
            lines.append(f"{'  ' * depth}{v.id}  {v.status}{score}{reason}"[:160])
            walk(v.id, depth + 1)

    roots = [v for v in variants if v.parent is None or v.parent not in {x.id for x in variants}]
    for root in roots:
        by_parent.setdefault("__root__", []).append(root)
    walk("__root__", 0)
    return lines


@evolve.command("list")
@json_option
def list_variants(as_json: bool) -> None:
    """The archive as a lineage tree, with scores and status."""
    from evoagent.agent.evolve.review import archive_of

    ctx = RepoContext.open()
    archive = archive_of(ctx)
    variants = archive.all()
    if as_json:
        emit_json({"variants": [v.to_json() | {"diff": None} for v in variants],
                   "meta": archive.meta_scores()})
        return
    if not variants:
        echo("no variants yet (run `evoagent evolve run`)")
        return
    for line in _tree_lines(variants):
        echo(line)
    meta = archive.meta_scores()
    if meta:
        echo("meta agent versions (meta/ tree): made / admitted / beat parent")
        for version, row in meta.items():
            echo(f"  {version[:12]}  {row['made']} / {row['admitted']} / {row['beat_parent']}")


@evolve.command("show")
@click.argument("variant_id")
@json_option
def show(variant_id: str, as_json: bool) -> None:
    """A variant: proposal, gates, per-task outcomes beside its parent's."""
    from evoagent.agent.evolve.review import archive_of

    ctx = RepoContext.open()
    v = archive_of(ctx).get(variant_id)
    if as_json:
        emit_json(v.to_json())
        return
    echo(f"{v.id}  (parent {v.parent}, generation {v.generation})  {v.status}"
         f"{': ' + v.reason if v.reason else ''}")
    if v.proposal:
        echo("\n" + v.proposal.strip() + "\n")
    for gate in v.gates:
        echo(f"  gate {gate.name:<10} {'pass' if gate.passed else 'FAIL'}  {gate.detail}"[:200])
    for stage, score in v.scores.items():
        parent = v.parent_scores.get(stage)
        echo(f"  {stage}: {score.resolved}/{score.total}"
             f"{f' (parent {parent.resolved}/{parent.total})' if parent else ''}")
        for task_id, ok in sorted(score.outcomes.items()):
            theirs = parent.outcomes.get(task_id) if parent else None
            mark = "✓" if ok else "✗"
            other = "" if theirs is None else f"  parent {'✓' if theirs else '✗'}"
            echo(f"    {mark} {task_id}{other}")
    echo(f"  cost ${v.cost_usd:.4f}, {v.tokens} tokens, {v.seconds:.0f}s")


@evolve.command("diff")
@click.argument("variant_id")
@click.option("--against", metavar="REF", help="Compare with this genome ref (default: parent).")
def diff(variant_id: str, against: str | None) -> None:
    """The variant's genome diff against its parent (or REF)."""
    from evoagent.agent.evolve.review import archive_of, genome_repo_of

    ctx = RepoContext.open()
    v = archive_of(ctx).get(variant_id)
    repo = genome_repo_of(ctx)
    echo(repo.diff(against or repo.ref_of(v.parent or "main"), repo.ref_of(v.id)))


@evolve.command("promote")
@click.argument("variant_id")
@click.option("--yes", is_flag=True, help="Do not ask (scripts).")
@click.option("--model", metavar="M", help="Model for the held-out scoring.")
@click.option("--jobs", "-j", default=1, show_default=True, type=click.IntRange(min=1))
def promote(variant_id: str, yes: bool, model: str | None, jobs: int) -> None:
    """Score VARIANT and main on the held-out test split, show the comparison, and on your
    confirmation make VARIANT the live agent (the old main is tagged)."""
    from evoagent.agent.evolve.review import promote as do_promote

    ctx = RepoContext.open()

    def confirm(text: str) -> bool:
        echo(text)
        if yes:
            return True
        if not sys.stdin.isatty():
            raise EvoError("promotion needs confirmation: run it in a terminal or pass --yes")
        return click.confirm(f"promote {variant_id} to main?", default=False)

    done = do_promote(ctx, variant_id, confirm, model=model, jobs=jobs)
    if done is None:
        echo("not promoted")
        return
    tag, _ = done
    echo(f"main is now {variant_id}; the previous main is tagged {tag} "
         f"(`evoagent evolve rollback` restores it)")


@evolve.command("rollback")
@click.argument("tag", required=False)
def rollback(tag: str | None) -> None:
    """Restore an earlier main (default: the one before the last promotion)."""
    from evoagent.agent.evolve.review import rollback as do_rollback

    ctx = RepoContext.open()
    sha = do_rollback(ctx, tag)
    echo(f"main is now {sha[:12]}")


@evolve.command("reject")
@click.argument("variant_id")
@click.option("--reason", default="rejected by a person", show_default=True)
def reject(variant_id: str, reason: str) -> None:
    """Mark a variant rejected (it stays in the archive, never a parent again)."""
    from evoagent.agent.evolve.review import reject as do_reject

    ctx = RepoContext.open()
    v = do_reject(ctx, variant_id, reason)
    echo(f"{v.id} rejected")


COMMANDS = [evolve]
