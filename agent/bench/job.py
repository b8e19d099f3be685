"""One unit of benchmark work, as it travels to a worker: a task, the agent to run on it, and
where the repository is. `run_job` is the whole of what a worker does, in any executor.

A job is plain data (picklable, no open handles, no model key): the local pool sends it to
a spawned process, Ray to a remote worker. Keys reach the model only through the worker's
own environment.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..tasks.store import Task


@dataclass
class AgentSpec:
    """The agent under test: a model and a genome."""

    model: str
    genome_dir: str = ""
    """The genome's files, exported from `.evoagent/agent` at `variant` by the driver."""
    variant: str = "main"
    """The genome ref it came from, for the record."""
    attempts: int | None = None
    """Override the genome's attempts (refine_attempts + 1)."""
    statement: str = "original"
    """original | rewritten (the model-written issue-style statement, when a task has one)."""
    strict: bool = False
    per_test_timeout: float = 60.0
    run_timeout: float = 900.0


@dataclass
class Job:
    task: dict[str, Any]
    spec: AgentSpec
    repo: str
    """The repository root the workspace is made from (on a Ray worker: its materialized copy)."""
    settings: dict[str, Any]
    """The user's resolved settings, the memory store as an absolute URI (no keys in them)."""
    out_dir: str
    """The bench run's directory; the agent's run record goes under `runs/`."""
    base_rev: str = ""
    """The commit to start from in `repo` when it is not the task's base (a materialized copy)."""
    as_of: Any = None
    """Memory's point in history, resolved by the driver (shipped: a worker may lack history)."""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class TaskResult:
    task_id: str
    resolved: bool
    reason: str = ""
    tampered: bool = False
    status: str = ""
    """The agent's own status (fixed, not_fixed, ...) — recorded, never used for scoring."""
    fail_to_pass: dict[str, str] = field(default_factory=dict)
    pass_to_pass: dict[str, str] = field(default_factory=dict)
    attempts: int = 0
    steps: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0
    seconds: float = 0.0
    agent_seconds: float = 0.0
    score_seconds: float = 0.0
    patch: str = ""
    trajectory: str = ""
    error: str = ""
    variant: str = "main"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskResult:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})

    def comparable(self) -> dict[str, Any]:
        """What must not depend on where the task ran (timings and paths do)."""
        data = self.to_json()
        for key in ("seconds", "agent_seconds", "score_seconds", "trajectory"):
            data.pop(key)
        return data


def run_job(job: Job) -> dict[str, Any]:
    """Run the agent on the task, then score its patch. Always returns a result (an agent
    that crashes is unresolved with the error recorded); Ctrl-C propagates."""
    from evoagent.agent.config import Settings
    from evoagent.agent.conversation import Baseline, RunControls
    from evoagent.agent.errors import EvoError, RunStopped
    from evoagent.agent.fix import run_request
    from evoagent.agent.genome import Genome
    from evoagent.agent.repo_context import RepoContext
    from evoagent.agent.state import RepoState

    from .scoring import AGENT_ERROR, score_patch, scoring_config

    started = time.monotonic()
    task = Task.from_json(job.task)
    spec = job.spec
    result = TaskResult(task.id, False, variant=spec.variant)
    repo = Path(job.repo)
    ctx = RepoContext(RepoState(repo).ensure(), Settings(**job.settings))
    statement = task.problem_statement
    if spec.statement == "rewritten" and task.rewritten_statement:
        statement = task.rewritten_statement
    patch = ""
    try:
        genome = Genome.load(Path(spec.genome_dir or ""))
        if spec.attempts:
            genome.settings.loop.refine_attempts = spec.attempts - 1
        rev = job.base_rev or task.base_commit
        as_of = job.as_of or ctx.as_of(task.base_commit)
        controls = RunControls(strict=spec.strict, baseline=Baseline(rev, as_of), genome=genome,
                               runs_dir=Path(job.out_dir) / "runs", stream=False)
        outcome = run_request(ctx, statement, spec.model, lambda event: None, controls)
        patch = outcome.patch
        report = outcome.report
        result.status = outcome.status
        result.attempts = int(report.get("attempts") or 0)
        result.steps = int(report.get("steps") or 0)
        tokens = report.get("tokens") or {}
        result.prompt_tokens = int(tokens.get("prompt") or 0)
        result.completion_tokens = int(tokens.get("completion") or 0)
        result.cost_usd = report.get("cost_usd")
        result.trajectory = str(outcome.run_dir / "trajectory.jsonl")
    except RunStopped as exc:  # the model failed mid-run: its best attempt is still scored
        result.status, result.error, patch = "error", exc.message, exc.patch
    except EvoError as exc:
        result.status, result.error = "error", exc.message
    except Exception as exc:  # a crash in one task must not sink the benchmark
        result.status = "error"
        result.error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}"[:2000]
    result.agent_seconds = round(time.monotonic() - started, 3)
    result.patch = patch
    config = scoring_config(task.test_command, ctx.venv, spec.strict,
                            spec.per_test_timeout, spec.run_timeout)
    score = score_patch(repo, ctx.state.dir / "sandboxes", _at(task, job.base_rev), patch, config)
    result.resolved, result.reason, result.tampered = score.resolved, score.reason, score.tampered
    if result.error and not patch:
        result.reason = f"{AGENT_ERROR}: {result.error.splitlines()[0]}"
    result.fail_to_pass, result.pass_to_pass = score.fail_to_pass, score.pass_to_pass
    result.score_seconds = score.seconds
    result.seconds = round(time.monotonic() - started, 3)
    return result.to_json()


def _at(task: Task, rev: str) -> Task:
    if not rev or rev == task.base_commit:
        return task
    from dataclasses import replace

    return replace(task, base_commit=rev)
