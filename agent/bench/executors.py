"""Where benchmark jobs run. Every executor takes jobs and yields results as they finish;
what a job does is `job.run_job`, the same everywhere, so executors differ only in
where that function runs.

- `local`, J = 1: in this process, one task after another (no start-up cost).
- `local`, J > 1: a pool of J spawned processes (spawn, not fork: LanceDB and git
  subprocesses do not survive a fork of a threaded process — see docs/architecture.md).
- `ray`: Ray tasks on an existing cluster (`executor_ray.py`; Ray is an optional extra).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Protocol

from .job import Job, run_job


class Executor(Protocol):
    name: str

    def run(self, jobs: list[Job]) -> Iterator[dict[str, Any]]:
        """Yield each job's result dict as it finishes (any order)."""
        ...


def worker_init() -> None:
    import warnings

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    # As in the CLI's main: LanceDB's fork warning fires on every git/sandbox subprocess.
    warnings.filterwarnings("ignore", message="lancedb fork support")


class LocalExecutor:
    name = "local"

    def __init__(self, jobs: int = 1):
        self.jobs = max(1, jobs)

    def run(self, jobs: list[Job]) -> Iterator[dict[str, Any]]:
        if self.jobs == 1 or len(jobs) <= 1:
            for job in jobs:
                yield run_job(job)
            return
        pool = ProcessPoolExecutor(
            max_workers=min(self.jobs, len(jobs)),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=worker_init,
        )
        try:
            pending = {pool.submit(run_job, job) for job in jobs}
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        finally:
            # Ctrl-C: queued jobs are dropped; running workers got the same SIGINT.
            pool.shutdown(wait=True, cancel_futures=True)


def make_executor(
    kind: str, jobs: int = 1, ray_address: str | None = None, genome: bytes = b""
) -> Executor:
    """`genome` is the genome's tar: jobs name a directory, which a remote worker lacks."""
    if kind == "local":
        return LocalExecutor(jobs)
    if kind == "ray":
        from .executor_ray import RayExecutor, import_ray

        import_ray()  # fail before any work when Ray is not installed
        return RayExecutor(jobs=jobs, address=ray_address, genome=genome)
    raise ValueError(f"unknown executor {kind!r} (local or ray)")
