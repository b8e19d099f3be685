"""`evoagent bench` (run, resume), `bench compare A B`, `bench list`, `bench show RUN`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import EvoError
from ..repo_context import RepoContext
from .output import echo, emit_json


def _store(ctx: RepoContext):
    from evoagent.agent.bench.run import bench_store

    return bench_store(ctx)


def _run(ctx: RepoContext, run_id: str):
    from evoagent.agent.bench.store import BenchStoreError

    try:
        return _store(ctx).get(run_id)
    except BenchStoreError as exc:
        raise EvoError(str(exc)) from exc


def _rate(summary: dict) -> str:
    low, high = summary["ci95"]
    return (f"{summary['resolved']}/{summary['done']} resolved "
            f"({summary['resolved_rate']:.0%}, 95% CI {low:.0%}–{high:.0%})")


@click.group(invoke_without_command=True)
@click.option("--split", type=click.Choice(["train", "val", "test", "all"]), default="val",
              show_default=True, help="Which tasks (ignored with --ids / --swebench).")
@click.option("--tasks", "limit", type=click.IntRange(min=1), metavar="N",
              help="Only the first N tasks of the split (by id).")
@click.option("--ids", multiple=True, metavar="ID", help="These task ids (repeatable).")
@click.option("--variant", default="main", show_default=True, metavar="REF",
              help="The genome version to score (a ref of .evoagent/agent).")
@click.option("--model", metavar="M", help="litellm model name (default: as `fix` picks).")
@click.option("--attempts", type=click.IntRange(min=1), metavar="K",
              help="Attempts per task (default: the genome's).")
@click.option("--jobs", "-j", default=1, show_default=True, type=click.IntRange(min=1),
              help="Tasks in parallel.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
              show_default=True)
@click.option("--ray-address", metavar="ADDR", help="An existing Ray cluster (default: local).")
@click.option("--statement", type=click.Choice(["original", "rewritten"]), default="original",
              show_default=True, help="Which problem statement the agent gets.")
@click.option("--swebench", type=click.Path(dir_okay=False, path_type=Path),
              help="Score SWE-bench instances of this repository instead of mined tasks.")
@click.option("--predictions", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write SWE-bench predictions (JSONL) here.")
@click.option("--resume", metavar="RUN", help="Continue an interrupted bench run.")
@click.option("--per-test-timeout", default=60.0, show_default=True,
              type=click.FloatRange(min=1), help="Seconds per test when scoring.")
@click.option("--strict", is_flag=True, help="Refuse to run without bubblewrap isolation.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def bench(click_ctx, split, limit, ids, variant, model, attempts, jobs, executor, ray_address,
          statement, swebench, predictions, resume, per_test_timeout, strict, as_json) -> None:
    """Score the agent on the repository's own tasks; scores come from the hidden tests only.

    The agent works at each task's parent commit with the problem statement only, memory as
    of that commit; then the kernel applies the hidden tests and runs FAIL_TO_PASS and
    PASS_TO_PASS. Results go to .evoagent/bench/<run-id>/.
    """
    if click_ctx.invoked_subcommand is not None:
        return
    from evoagent.agent.bench.run import BenchOptions, EmptySplit, run_bench, write_predictions

    ctx = RepoContext.open()
    options = BenchOptions(
        split=None if split == "all" else split, limit=limit, ids=list(ids), variant=variant,
        model=model, attempts=attempts, jobs=jobs, executor=executor, ray_address=ray_address,
        statement=statement, strict=strict, resume=resume, swebench=swebench,
        per_test_timeout=per_test_timeout,
    )
    tty = sys.stderr.isatty() and not as_json

    def progress(run, result, done: int, total: int) -> None:
        if not tty:
            return
        summary = run.summary()
        cost = f"${summary['cost_usd']:.4f}" if summary["cost_usd"] is not None else "$?"
        verdict = "resolved" if result.resolved else (result.reason or "unresolved")
        echo(f"[{done}/{total}] {summary['resolved']} resolved · {cost} · "
             f"{result.task_id}: {verdict[:80]}", err=True)

    try:
        summary = run_bench(ctx, options, progress)
    except EmptySplit as exc:
        fullest = exc.fullest()
        raise EvoError(f"{exc.message} — try --split {fullest}" if fullest else exc.message,
                       exc.code) from exc
    except KeyboardInterrupt:
        latest = _store(ctx).latest()
        hint = f"; continue with `evoagent bench --resume {latest.id}`" if latest else ""
        echo(f"evoagent: interrupted, finished tasks kept{hint}", err=True)
        sys.exit(130)
    if predictions is not None:
        write_predictions(_run(ctx, summary["run_id"]), predictions, summary["model"])
    if as_json:
        run = _run(ctx, summary["run_id"])
        emit_json(summary | {"results": [r.to_json() for r in run.results()]})
        return
    cost = "unknown" if summary["cost_usd"] is None else f"${summary['cost_usd']:.4f}"
    echo(f"bench {summary['run_id']}: {_rate(summary)}; {summary['tokens']} tokens, "
         f"cost {cost}, {summary['wall_seconds']:.1f}s")
    if summary["tampered"]:
        echo(f"  test tampering flagged: {', '.join(summary['tampered'])}")


@bench.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_runs(as_json: bool) -> None:
    """Bench runs, oldest first."""
    ctx = RepoContext.open()
    rows = [run.summary() for run in _store(ctx).runs()]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        echo("no bench runs yet (run `evoagent bench`)")
    for row in rows:
        echo(f"{row['run_id']}  {row['variant']:<16} {_rate(row)}")


@bench.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(run_id: str, as_json: bool) -> None:
    """One bench run: totals and each task's verdict."""
    ctx = RepoContext.open()
    run = _run(ctx, run_id)
    summary, results = run.summary(), run.results()
    if as_json:
        emit_json(summary | {"results": [r.to_json() for r in results]})
        return
    echo(f"{run.id}  variant {summary['variant']}  model {summary['model']}")
    echo(f"  {_rate(summary)}")
    for r in sorted(results, key=lambda r: r.task_id):
        mark = "✓" if r.resolved else "✗"
        echo(f"  {mark} {r.task_id}  {r.steps} steps  {r.seconds:.1f}s  {r.reason}")


@bench.command("compare")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def compare(run_a: str, run_b: str, as_json: bool) -> None:
    """Paired comparison of two runs on the tasks both ran (exact McNemar test)."""
    from evoagent.agent.bench.stats import pair

    ctx = RepoContext.open()
    a, b = _run(ctx, run_a), _run(ctx, run_b)
    paired = pair({r.task_id: r.resolved for r in a.results()},
                  {r.task_id: r.resolved for r in b.results()})
    if paired.shared == 0:
        raise EvoError(f"{a.id} and {b.id} share no finished task")
    if as_json:
        emit_json({"a": a.id, "b": b.id, "shared": paired.shared, "both": paired.both,
                   "only_a": paired.only_a, "only_b": paired.only_b, "neither": paired.neither,
                   "p_value": paired.p_value, "verdict": paired.verdict()})
        return
    echo(f"A = {a.id} ({a.plan().get('variant')})")
    echo(f"B = {b.id} ({b.plan().get('variant')})")
    echo(f"{paired.shared} shared tasks: both {len(paired.both)}, only A "
         f"{len(paired.only_a)}, only B {len(paired.only_b)}, neither {len(paired.neither)}")
    for label, ids in (("only A", paired.only_a), ("only B", paired.only_b)):
        for task_id in ids:
            echo(f"  {label}: {task_id}")
    echo(paired.verdict())


COMMANDS = [bench]
