"""The benchmark on a Ray cluster: each job is a Ray task running `run_job` on a worker.

What travels (through Ray's object store, once per run, not per task):
- the repository at the tasks' base commits, as a git bundle of parentless commits holding
  only those trees (no history: the worker needs none, and the agent must see none);
- the genome as the tar of its commit.
Memory and settings reach the worker as the job's settings: the memory store is a URI, a
local path for a local cluster or shared storage (LanceDB reads s3:// and friends) for a real
one. Model keys are never in a payload: a worker's model calls use the worker's environment.

Ray is imported here only, and only when this executor runs (`pip install evoagent[ray]`).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import EvoError
from .genome_export import extract_tar
from .job import Job, run_job

INSTALL_HINT = "the ray executor needs Ray: pip install 'evoagent[ray]'"


def import_ray():
    try:
        import ray
    except ImportError as exc:
        raise EvoError(INSTALL_HINT) from exc
    return ray


def bundle_bases(repo: Path, bases: list[str], work: Path) -> tuple[bytes, dict[str, str]]:
    """A git bundle with one parentless commit per base holding its tree; base -> that commit."""
    scratch = work / "bundle-repo"
    subprocess.run(["git", "init", "-q", "--bare", str(scratch)], check=True)
    common = subprocess.run(["git", "-C", str(repo), "rev-parse", "--path-format=absolute",
                             "--git-common-dir"], capture_output=True, text=True, check=True)
    (scratch / "objects" / "info" / "alternates").write_text(
        str(Path(common.stdout.strip()) / "objects") + "\n")
    env = {**os.environ, "GIT_DIR": str(scratch), "GIT_AUTHOR_NAME": "evoagent",
           "GIT_AUTHOR_EMAIL": "evoagent@localhost", "GIT_COMMITTER_NAME": "evoagent",
           "GIT_COMMITTER_EMAIL": "evoagent@localhost"}

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], env=env, capture_output=True, text=True,
                              check=True).stdout.strip()

    mapping: dict[str, str] = {}
    for base in dict.fromkeys(bases):
        tree = git("rev-parse", f"{base}^{{tree}}")
        date = git("show", "-s", "--format=%cI", base)
        mapping[base] = subprocess.run(
            ["git", "commit-tree", tree, "-m", f"evoagent: {base} (history withheld)"],
            env={**env, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date},
            capture_output=True, text=True, check=True).stdout.strip()
        git("update-ref", f"refs/bench/{base}", mapping[base])
    out = work / "bases.bundle"
    git("-c", "pack.window=0", "-c", "pack.compression=1", "bundle", "create", "-q", str(out),
        "--glob=refs/bench/*")
    return out.read_bytes(), mapping


def _ray_job(job: Job, bundle: bytes, genome: bytes) -> dict[str, Any]:
    """On the worker: materialize the repo and the genome, then the ordinary `run_job`."""
    from .executors import worker_init

    worker_init()
    work = Path(tempfile.mkdtemp(prefix="evoagent-ray-"))
    try:
        repo = work / "repo"
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        (work / "bases.bundle").write_bytes(bundle)
        subprocess.run(["git", "-C", str(repo), "fetch", "-q", str(work / "bases.bundle"),
                        "+refs/bench/*:refs/bench/*"], check=True)
        # A branch to stand on: the agent refuses a repository without commits.
        subprocess.run(["git", "-C", str(repo), "update-ref", "HEAD", job.base_rev], check=True)
        genome_dir = extract_tar(genome, work / "genome")
        spec = dataclasses.replace(job.spec, genome_dir=str(genome_dir))
        return run_job(dataclasses.replace(job, repo=str(repo), spec=spec))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _as_of(repo: Path, base: str):
    """Memory's view as of `base`, resolved here: the worker's copy has no history to walk."""
    from evoagent.memory.revisions import AsOf

    as_of = AsOf.resolve(repo, base)
    as_of.reachable  # computed now, so it travels with the job  # noqa: B018
    return as_of


class RayExecutor:
    name = "ray"

    def __init__(self, jobs: int = 1, address: str | None = None, genome: bytes = b""):
        self.jobs = max(1, jobs)
        self.address = address
        self.genome = genome
        """The genome's tar (set by the bench driver)."""

    def run(self, jobs: list[Job]) -> Iterator[dict[str, Any]]:
        if not jobs:
            return
        ray = import_ray()
        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
            else:  # a local cluster for this run
                ray.init(num_cpus=self.jobs, include_dashboard=False, log_to_driver=False)
        repo = Path(jobs[0].repo)
        with tempfile.TemporaryDirectory(prefix="evoagent-bundle-") as tmp:
            bases = [job.task["base_commit"] for job in jobs]
            bundle, mapping = bundle_bases(repo, bases, Path(tmp))
        bundle_ref, genome_ref = ray.put(bundle), ray.put(self.genome)
        remote = ray.remote(num_cpus=1, max_retries=0)(_ray_job)
        pending = [
            remote.remote(
                dataclasses.replace(job, base_rev=mapping[job.task["base_commit"]],
                                    as_of=_as_of(repo, job.task["base_commit"])),
                bundle_ref, genome_ref)
            for job in jobs
        ]
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                yield ray.get(done[0])
        finally:
            for ref in pending:  # Ctrl-C: stop what is still queued or running
                ray.cancel(ref, force=True)
