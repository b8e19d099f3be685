"""`evoagent bench` harness cost on a real repository, with a scripted agent.

    .venv/bin/python bench/bench_harness.py --repo PATH [--tasks N] [--jobs 1,2] [--ray]

PATH must hold mined tasks (`evoagent tasks mine`) and memory (`evoagent mine`). The agent is
a scripted policy that applies each task's gold code patch (write the patch, `git apply` it
in the sandbox, finish), so the kernel's scoring runs the hidden tests for real and every
task should resolve — the resolved count is printed as a sanity check.

Prints, per executor setting:
- wall seconds, tasks/minute;
- a warm-up task first (one-time start-up: imports, the first code index), not counted;
- with J = 1 (in process): seconds spent in the repository's own test runs (every
  `run_tests` call: the agent's baseline and post-finish runs and the kernel's scoring run,
  sandbox start included) and the harness overhead per task = (wall − tests) / tasks
  (target <= 1 s);
- J = 2 (a pool of spawned processes) and, with --ray, the Ray executor on a local cluster
  (`ray.init(num_cpus=J)`): throughput against J = 1 (ratio) and Ray against the local pool.
Figures only; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

POLICY = '''
import json

PATCHES = json.loads({patches!r})


def call(name, **arguments):
    return {{"tool_calls": [{{"name": name, "arguments": arguments}}]}}


def respond(messages, tools):
    task = next(m["content"] for m in messages if m["role"] == "user")
    patch = next((p for key, p in PATCHES.items() if key in task), "")
    step = sum(1 for m in messages if m["role"] == "assistant")
    if step == 0 and patch:
        return call("write", path=".gold.patch", content=patch)
    if step == 1 and patch:
        return call("run", command="git apply .gold.patch && rm .gold.patch")
    return call("finish", summary="applied the gold patch")
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--tasks", type=int, default=6)
    parser.add_argument("--jobs", default="1,2")
    parser.add_argument("--ray", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import warnings

    warnings.filterwarnings("ignore", message="lancedb fork support")
    os.chdir(args.repo)

    import evoagent.sandbox.testrun as testrun
    from evoagent.agent.bench import run as bench_module
    from evoagent.agent.bench.run import BenchOptions, run_bench
    from evoagent.agent.repo_context import RepoContext
    from evoagent.agent.tasks.store import TaskStore

    ctx = RepoContext.open(args.repo)
    tasks = sorted(TaskStore(ctx.state.dir / "tasks").tasks(), key=lambda t: t.id)[: args.tasks]
    if not tasks:
        sys.exit(f"no tasks in {args.repo} (run `evoagent tasks mine` there)")
    # Key each gold patch by the statement's first line (what the policy sees of the task).
    patches = {t.problem_statement.splitlines()[0]: t.patch for t in tasks}
    policy = Path(tempfile.mkdtemp(prefix="evoagent-bench-")) / "gold_policy.py"
    policy.write_text(POLICY.format(patches=json.dumps(patches)))
    ids = [t.id for t in tasks]

    # Time every test run of this process (J = 1 runs in process), sandbox start included.
    spent = {"seconds": 0.0, "runs": 0}
    original = testrun.run_tests

    def timed(*a, **k):
        begun = time.monotonic()
        try:
            return original(*a, **k)
        finally:
            spent["seconds"] += time.monotonic() - begun
            spent["runs"] += 1

    testrun.run_tests = timed
    import evoagent.agent.solve as solve
    import evoagent.agent.tasks.validate as task_mining

    task_mining.run_tests = timed
    if hasattr(solve, "run_tests"):
        solve.run_tests = timed
    del bench_module  # (imported so its modules are loaded before timing)

    settings: list[tuple[str, int]] = [("local", int(j)) for j in args.jobs.split(",")]
    if args.ray:
        settings.append(("ray", max(int(j) for j in args.jobs.split(","))))
    walls: dict[tuple[str, int], float] = {}
    print(f"{args.repo.name}: {len(ids)} tasks, scripted gold-patch agent")
    # One task first, not counted: the one-time start-up (importing litellm and LanceDB,
    # indexing the code at the first base) is paid once per process, not per task.
    begun = time.monotonic()
    run_bench(ctx, BenchOptions(ids=ids[:1], model=f"scripted/{policy}"))
    print(f"  warm-up (one task, imports and first code index): {time.monotonic() - begun:.1f}s")
    for executor, jobs in settings:
        spent.update(seconds=0.0, runs=0)
        begun = time.monotonic()
        summary = run_bench(ctx, BenchOptions(ids=ids, model=f"scripted/{policy}", jobs=jobs,
                                              executor=executor))
        wall = time.monotonic() - begun
        walls[(executor, jobs)] = wall
        line = (f"  {executor:<5} J={jobs}: {wall:6.1f}s wall, {60 * len(ids) / wall:5.1f} tasks/min,"
                f" resolved {summary['resolved']}/{summary['done']}")
        if executor == "local" and jobs == 1:
            overhead = (wall - spent["seconds"]) / len(ids)
            line += (f"; tests {spent['seconds']:.1f}s in {spent['runs']} runs;"
                     f" harness overhead {overhead:.2f}s/task (target <= 1 s)")
        print(line)
    base = walls.get(("local", 1))
    for (executor, jobs), wall in walls.items():
        if base and (executor, jobs) != ("local", 1):
            print(f"  throughput {executor} J={jobs} vs local J=1: {base / wall:.2f}x")
    pool = walls.get(("local", settings[-1][1]))
    if args.ray and pool:
        ray_wall = walls[("ray", settings[-1][1])]
        print(f"  ray vs local pool (same J): {ray_wall / pool:.2f}x the wall time")


if __name__ == "__main__":
    main()
