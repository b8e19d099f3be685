"""The benchmark harness: score an agent (a genome ref and a model) on mined tasks.

- `run.py` — `evoagent bench`: pick tasks, export the genome once, one job per task, resume.
- `job.py` — one unit of work as it travels to a worker, and `run_job`.
- `scoring.py` — the kernel's verdict on a patch: hidden tests applied, F2P/P2P read.
- `executors.py`, `executor_ray.py` — where jobs run: in process, a local pool, Ray.
- `store.py` — `.evoagent/bench/<run-id>/`: what was asked, results, summary.
- `stats.py` — Wilson intervals and the exact paired test.
- `genome_export.py` — a genome at a ref as tar bytes and files.

Depends on `tasks`; never on `evolve`.
"""
