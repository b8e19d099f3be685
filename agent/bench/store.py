"""Where benchmark runs are kept: `.evoagent/bench/<run-id>/`.

    run.json        what was asked: variant, model, split, task ids, executor, started_at
    results.jsonl   one TaskResult per finished task (append-only, one locked write each,
                    so Ctrl-C or a kill keeps every finished task and `--resume` skips them)
    summary.json    totals, written at the end of a run (and again after a resume)
    runs/<id>/      each task's agent run record (trajectory.jsonl, patch.diff, report.json)
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .job import TaskResult
from .stats import wilson_interval


class BenchStoreError(ValueError):
    pass


def new_bench_id(variant: str) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    slug = "".join(c if c.isalnum() else "-" for c in variant)[:24].strip("-") or "main"
    return f"{stamp}-{slug}-{os.urandom(2).hex()}"


@dataclass
class BenchRun:
    dir: Path

    @property
    def id(self) -> str:
        return self.dir.name

    @property
    def results_file(self) -> Path:
        return self.dir / "results.jsonl"

    def write_plan(self, plan: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / "run.json.tmp"
        tmp.write_text(json.dumps(plan, indent=2))
        tmp.replace(self.dir / "run.json")

    def plan(self) -> dict[str, Any]:
        try:
            return json.loads((self.dir / "run.json").read_text())
        except (OSError, ValueError) as exc:
            raise BenchStoreError(f"{self.dir}: not a bench run ({exc})") from exc

    def add(self, result: TaskResult) -> None:
        line = json.dumps(result.to_json()) + "\n"
        with open(self.results_file, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def results(self) -> list[TaskResult]:
        """Finished tasks, the last record winning; a half-written last line is ignored."""
        by_id: dict[str, TaskResult] = {}
        if self.results_file.is_file():
            for line in self.results_file.read_text().splitlines():
                try:
                    result = TaskResult.from_json(json.loads(line))
                except (ValueError, TypeError):
                    continue
                by_id[result.task_id] = result
        return list(by_id.values())

    def summary(self) -> dict[str, Any]:
        results = self.results()
        plan = self.plan()
        resolved = sum(r.resolved for r in results)
        low, high = wilson_interval(resolved, len(results))
        costs = [r.cost_usd for r in results]
        known = [c for c in costs if c is not None]
        return {
            "run_id": self.id,
            "variant": plan.get("variant"),
            "model": plan.get("model"),
            "planned": len(plan.get("task_ids", [])),
            "done": len(results),
            "resolved": resolved,
            "resolved_rate": resolved / len(results) if results else 0.0,
            "ci95": [round(low, 4), round(high, 4)],
            "tampered": [r.task_id for r in results if r.tampered],
            "errors": sum(1 for r in results if r.error),
            "cost_usd": round(sum(known), 6) if len(known) == len(costs) else None,
            "tokens": sum(r.prompt_tokens + r.completion_tokens for r in results),
            "seconds": round(sum(r.seconds for r in results), 3),
        }

    def write_summary(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        summary = self.summary() | (extra or {})
        tmp = self.dir / "summary.json.tmp"
        tmp.write_text(json.dumps(summary, indent=2))
        tmp.replace(self.dir / "summary.json")
        return summary


class BenchStore:
    def __init__(self, path: Path):
        self.path = path

    def create(self, variant: str) -> BenchRun:
        run = BenchRun(self.path / new_bench_id(variant))
        run.dir.mkdir(parents=True)
        return run

    def runs(self) -> list[BenchRun]:
        if not self.path.is_dir():
            return []
        return sorted((BenchRun(d) for d in self.path.iterdir() if (d / "run.json").is_file()),
                      key=lambda r: r.id)

    def get(self, prefix: str) -> BenchRun:
        direct = self.path / prefix
        if (direct / "run.json").is_file():
            return BenchRun(direct)
        matches = [r for r in self.runs() if r.id.startswith(prefix) or prefix in r.id]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise BenchStoreError(f"no bench run matches {prefix!r} (see `evoagent bench list`)")
        raise BenchStoreError(f"{prefix!r} matches {len(matches)} bench runs; give more of the id")

    def latest(self) -> BenchRun | None:
        runs = self.runs()
        return runs[-1] if runs else None
