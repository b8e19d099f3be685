"""`evoagent bench`: score an agent (a genome version and a model) on the repo's own tasks.

The driver picks the tasks, exports the genome at the requested ref once, builds one `Job`
per task and hands them to an executor; each finished result is appended to the run's
`results.jsonl` at once, so an interrupted run keeps what it finished and `--resume`
continues with the rest. Scores come from `scoring.score_patch` (the kernel), never from
the agent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import EvoError
from ..tasks.store import SPLITS, Task, TaskStore, TaskStoreError, split_of
from .genome_export import extract_tar, genome_sha, genome_tar
from .job import AgentSpec, Job, TaskResult
from .store import BenchRun, BenchStore


@dataclass
class BenchOptions:
    split: str | None = "val"
    limit: int | None = None
    ids: list[str] = field(default_factory=list)
    variant: str = "main"
    model: str | None = None
    attempts: int | None = None
    jobs: int = 1
    executor: str = "local"
    ray_address: str | None = None
    statement: str = "original"
    strict: bool = False
    resume: str | None = None
    """A bench run id (or prefix) to continue."""
    swebench: Path | None = None
    """SWE-bench-format instances (JSONL or a JSON list) for this repository."""
    per_test_timeout: float = 60.0
    run_timeout: float = 900.0


Progress = Callable[[BenchRun, TaskResult, int, int], None]


class EmptySplit(EvoError):
    """The split asked for holds no task. `counts`: tasks per split, so the caller can say
    where the tasks are (`message` already does, with how to get some when none has any)."""

    def __init__(self, split: str | None, counts: dict[str, int]):
        self.split = split
        self.counts = counts
        if any(counts.values()):
            others = ", ".join(f"{name} has {n}" for name, n in counts.items() if name != split)
            message = f"no tasks in split '{split}'; {others}"
        else:
            where = f"in split '{split}' nor in any other" if split else "yet"
            message = f"no tasks {where} — mine some with `evoagent tasks mine`"
        super().__init__(message)

    def fullest(self) -> str | None:
        """The split holding the most tasks, if any holds one."""
        name = max(self.counts, key=lambda n: self.counts[n])
        return name if self.counts[name] else None


def split_counts(ctx) -> dict[str, int]:
    """Tasks per split (train, val, test) in the repository's task store."""
    store = TaskStore(ctx.state.dir / "tasks")
    try:
        tasks, ratios = store.tasks(), store.ratios()
    except TaskStoreError as exc:
        raise EvoError(str(exc)) from exc
    counts = dict.fromkeys(SPLITS, 0)
    for task in tasks:
        counts[split_of(task.id, ratios)] += 1
    return counts


def bench_store(ctx) -> BenchStore:
    return BenchStore(ctx.state.dir / "bench")


def run_bench(ctx, options: BenchOptions, progress: Progress | None = None) -> dict[str, Any]:
    """Run (or resume) a benchmark; the summary. KeyboardInterrupt propagates after the
    summary of what finished is written."""
    from evoagent.agent.config import store_uri
    from evoagent.agent.genome import init_genome
    from evoagent.agent.model_select import select_model

    from .executors import make_executor

    store = bench_store(ctx)
    if options.resume:
        run = store.get(options.resume)
        plan = run.plan()
        options = _options_from_plan(plan, options)
    else:
        run = None
        plan = {}
    genome_repo = ctx.state.dir / "agent"
    init_genome(genome_repo)
    genome_sha(genome_repo, options.variant)  # a mistyped --variant first, before any model
    tasks = _select_tasks(ctx, options, plan.get("task_ids"))
    if not tasks:
        if options.swebench is not None:
            raise EvoError(f"no SWE-bench instances in {options.swebench}")
        raise EmptySplit(options.split, split_counts(ctx))
    model_name = select_model(options.model or ctx.settings.model or None).name
    genome_bytes = genome_tar(genome_repo, options.variant)
    if run is None:
        run = store.create(options.variant)
        run.write_plan({
            "variant": options.variant,
            "genome_sha": genome_sha(genome_repo, options.variant),
            "model": model_name,
            "split": options.split,
            "task_ids": [t.id for t in tasks],
            "attempts": options.attempts,
            "statement": options.statement,
            "executor": options.executor,
            "jobs": options.jobs,
            "swebench": str(options.swebench) if options.swebench else None,
            "started_at": time.time(),
        })
        if options.swebench:  # tasks from a file: keep them with the run, for --resume
            with open(run.dir / "tasks.jsonl", "w") as handle:
                for task in tasks:
                    handle.write(json.dumps(task.to_json()) + "\n")
    genome_dir = run.dir / "genome"
    if not genome_dir.is_dir():
        extract_tar(genome_bytes, genome_dir)
    done = {r.task_id for r in run.results()}
    todo = [t for t in tasks if t.id not in done]
    spec = AgentSpec(model_name, str(genome_dir), options.variant, options.attempts,
                     options.statement, options.strict, options.per_test_timeout,
                     options.run_timeout)
    settings = ctx.settings.model_dump() | {
        "store": store_uri(ctx.state, ctx.settings),
        "venv": str(ctx.venv) if ctx.venv else None,
        "model": model_name,
    }
    jobs = [Job(t.to_json(), spec, str(ctx.root), settings, str(run.dir)) for t in todo]
    executor = make_executor(options.executor, options.jobs, options.ray_address, genome_bytes)
    total, finished = len(tasks), len(done)
    started = time.monotonic()
    interrupted = False
    try:
        for data in executor.run(jobs):
            result = TaskResult.from_json(data)
            run.add(result)
            finished += 1
            if progress:
                progress(run, result, finished, total)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        run.write_summary({"interrupted": interrupted,
                           "wall_seconds": round(time.monotonic() - started, 3)})
    return run.write_summary({"interrupted": False,
                              "wall_seconds": round(time.monotonic() - started, 3)})


def _options_from_plan(plan: dict[str, Any], given: BenchOptions) -> BenchOptions:
    """A resumed run keeps what it was started with (an agent or task set switched halfway
    would make its score meaningless); only how it runs may change."""
    return BenchOptions(
        split=plan.get("split"), variant=plan.get("variant") or "main",
        model=plan.get("model"), attempts=plan.get("attempts"),
        statement=plan.get("statement") or "original", strict=given.strict,
        jobs=given.jobs, executor=given.executor, ray_address=given.ray_address,
        resume=given.resume, swebench=Path(plan["swebench"]) if plan.get("swebench") else None,
        per_test_timeout=given.per_test_timeout, run_timeout=given.run_timeout,
    )


def _select_tasks(ctx, options: BenchOptions, planned: list[str] | None) -> list[Task]:
    if options.resume and options.swebench is not None:
        run = bench_store(ctx).get(options.resume)
        lines = (run.dir / "tasks.jsonl").read_text().splitlines()
        return [Task.from_json(json.loads(line)) for line in lines if line.strip()]
    if options.swebench is not None:
        tasks = load_swebench(ctx, options.swebench)
    else:
        store = TaskStore(ctx.state.dir / "tasks")
        try:
            tasks = store.in_split(None if options.ids else options.split)
        except TaskStoreError as exc:
            raise EvoError(str(exc)) from exc
    by_id = {t.id: t for t in tasks}
    if planned is not None:
        missing = [i for i in planned if i not in by_id]
        if missing:
            raise EvoError(f"cannot resume: task {missing[0]} is no longer in the task store")
        return [by_id[i] for i in planned]
    if options.ids:
        missing = [i for i in options.ids if i not in by_id]
        if missing:
            raise EvoError(f"unknown task id {missing[0]} (see `evoagent tasks list`)")
        return [by_id[i] for i in options.ids]
    tasks = sorted(tasks, key=lambda t: t.id)
    return tasks[: options.limit] if options.limit else tasks


def load_swebench(ctx, path: Path) -> list[Task]:
    """SWE-bench instances for this repository as tasks (their base commits must exist here)."""
    from evoagent.sandbox.testdetect import detect_test_command

    try:
        text = Path(path).read_text()
        rows = json.loads(text) if text.lstrip().startswith("[") else [
            json.loads(line) for line in text.splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise EvoError(f"cannot read SWE-bench instances {path}: {exc}") from exc
    command = detect_test_command(ctx.root, ctx.settings.test_command)
    tasks = []
    for row in rows:
        try:
            f2p, p2p = (_ids(row[key]) for key in ("FAIL_TO_PASS", "PASS_TO_PASS"))
            tasks.append(Task(
                id=row["instance_id"], repo=row.get("repo", ""), base_commit=row["base_commit"],
                commit="", patch=row.get("patch", ""), test_patch=row["test_patch"],
                fail_to_pass=f2p, pass_to_pass=p2p,
                test_command=" ".join(command.argv) if command else "python -m pytest",
                test_files=sorted({t.split("::", 1)[0] for t in f2p + p2p}),
                created_at=row.get("created_at", ""),
                problem_statement=row["problem_statement"], source="swebench",
            ))
        except (KeyError, TypeError, ValueError) as exc:
            raise EvoError(f"{path}: instance {row.get('instance_id', '?')} lacks {exc}") from exc
    unknown = [t for t in tasks if not ctx.as_of(t.base_commit)]
    if unknown:
        raise EvoError(f"{unknown[0].id}: base commit not in this repository")
    return tasks


def _ids(value: Any) -> list[str]:
    return list(json.loads(value) if isinstance(value, str) else value)


def write_predictions(run: BenchRun, path: Path, model_name: str) -> int:
    """SWE-bench predictions (one JSON per line) for every finished task; the count."""
    results = run.results()
    with open(path, "w") as handle:
        for result in results:
            handle.write(json.dumps({"instance_id": result.task_id,
                                     "model_name_or_path": model_name,
                                     "model_patch": result.patch}) + "\n")
    return len(results)
