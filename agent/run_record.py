"""One session's record under `.evoagent/runs/<id>/`: every event as it happens
(`trajectory.jsonl`, flushed per event so Ctrl-C loses nothing), the patch, the report."""

from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path
from typing import Any

from .events import Event


def new_run_id(title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:32].strip("-") or "run"
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}-{secrets.token_hex(2)}"


class RunRecord:
    def __init__(self, runs_dir: Path, run_id: str):
        self.run_id = run_id
        self.dir = Path(runs_dir) / run_id
        self.dir.mkdir(parents=True, exist_ok=False)
        self._trajectory = (self.dir / "trajectory.jsonl").open("a", encoding="utf-8")

    @property
    def patch_path(self) -> Path:
        return self.dir / "patch.diff"

    @property
    def report_path(self) -> Path:
        return self.dir / "report.json"

    def write_event(self, event: Event) -> None:
        self._trajectory.write(json.dumps(event.to_json(), default=str) + "\n")
        self._trajectory.flush()

    def write_patch(self, patch: str) -> None:
        self.patch_path.write_text(patch)

    def write_report(self, report: dict[str, Any]) -> None:
        tmp = self.report_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(report, indent=2, default=str))
        tmp.replace(self.report_path)  # atomic: a reader never sees half a report

    def close(self) -> None:
        self._trajectory.close()


def find_run(runs_dir: Path, prefix: str) -> Path | None:
    """The run folder whose name is or starts with `prefix`, when exactly one matches."""
    matches = [p for p in Path(runs_dir).glob(f"{prefix}*") if p.is_dir()]
    exact = [p for p in matches if p.name == prefix]
    if exact:
        return exact[0]
    return matches[0] if len(matches) == 1 else None
