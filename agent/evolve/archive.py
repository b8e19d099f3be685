"""The archive of every variant the hyperagent made, whatever became of it.

`.evoagent/evolve/`:

    variants/<id>.json   one Variant per file, replaced atomically at every stage, so a kill
                         leaves each variant at its last finished stage (`--resume` goes on
                         from there)
    lock                 held by a running `evoagent evolve run` (a second one refuses)
    worktrees/<id>/      the variant being edited (removed when its proposal is committed)

`main` itself is archived as the root variant (id "main") once it has been scored.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import EvoError

# Status of a variant: where it is in the pipeline, or how it ended.
PROPOSING = "proposing"
GATING = "gating"
ADMITTED = "admitted"
REJECTED = "rejected"
PROMOTED = "promoted"
TERMINAL = {ADMITTED, REJECTED, PROMOTED}


@dataclass
class GateResult:
    name: str
    passed: bool
    detail: str = ""
    seconds: float = 0.0


@dataclass
class StageScore:
    """A variant's score on one task set, from the harness."""

    bench_run: str
    resolved: int
    total: int
    ci95: list[float]
    outcomes: dict[str, bool] = field(default_factory=dict)
    """task id -> resolved."""

    @property
    def rate(self) -> float:
        return self.resolved / self.total if self.total else 0.0


@dataclass
class Variant:
    id: str
    parent: str | None
    generation: int
    status: str = PROPOSING
    reason: str = ""
    """Why it was rejected (the gate and its detail), or a note."""
    proposal: str = ""
    """The meta agent's proposal: diagnosis, change, expected effect."""
    commit: str = ""
    diff: str = ""
    meta_version: str = ""
    """Tree id of the parent's `meta/`: which version of the meta agent made this variant."""
    gates: list[GateResult] = field(default_factory=list)
    scores: dict[str, StageScore] = field(default_factory=dict)
    """Task set ("small", "val", "test") -> score."""
    parent_scores: dict[str, StageScore] = field(default_factory=dict)
    """The parent's score on the same tasks, for the paired comparison."""
    cost_usd: float = 0.0
    tokens: int = 0
    seconds: float = 0.0
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Variant:
        data = dict(data)
        data["gates"] = [GateResult(**g) for g in data.get("gates", [])]
        for key in ("scores", "parent_scores"):
            data[key] = {k: StageScore(**v) for k, v in (data.get(key) or {}).items()}
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})

    def gate(self, name: str) -> GateResult | None:
        return next((g for g in self.gates if g.name == name), None)

    @property
    def score(self) -> float | None:
        """The variant's resolved rate on val (the selection score), if it got that far."""
        stage = self.scores.get("val")
        return stage.rate if stage else None

    @property
    def beat_parent(self) -> bool:
        mine, theirs = self.scores.get("val"), self.parent_scores.get("val")
        return bool(mine and theirs and mine.resolved > theirs.resolved)


class EvolveLocked(EvoError):
    pass


class Archive:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.variants_dir = self.path / "variants"
        self.worktrees = self.path / "worktrees"
        self._lock_handle = None

    # -- lock -------------------------------------------------------------------------------

    def lock(self) -> None:
        """Hold the archive for one evolve run; a second run refuses at once."""
        self.path.mkdir(parents=True, exist_ok=True)
        handle = open(self.path / "lock", "a+")  # noqa: SIM115 -- held until unlock()
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise EvolveLocked("another `evoagent evolve run` is running on this repository") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._lock_handle = handle

    def unlock(self) -> None:
        if self._lock_handle is not None:
            fcntl.flock(self._lock_handle, fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None

    # -- variants ---------------------------------------------------------------------------

    def save(self, variant: Variant) -> None:
        variant.updated_at = time.time()
        self.variants_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.variants_dir / f".{variant.id}.json.tmp"
        tmp.write_text(json.dumps(variant.to_json(), indent=2))
        os.replace(tmp, self.variants_dir / f"{variant.id}.json")

    def get(self, variant_id: str) -> Variant:
        found = self.find(variant_id)
        if found is None:
            raise EvoError(f"no variant {variant_id!r} in the archive (see `evoagent evolve list`)")
        return found

    def find(self, prefix: str) -> Variant | None:
        exact = self.variants_dir / f"{prefix}.json"
        if exact.is_file():
            return Variant.from_json(json.loads(exact.read_text()))
        matches = [v for v in self.all() if v.id.startswith(prefix)]
        if len(matches) > 1:
            raise EvoError(f"{prefix!r} matches {len(matches)} variants; give more of the id")
        return matches[0] if matches else None

    def all(self) -> list[Variant]:
        if not self.variants_dir.is_dir():
            return []
        found = []
        for file in sorted(self.variants_dir.glob("*.json")):
            try:
                found.append(Variant.from_json(json.loads(file.read_text())))
            except (ValueError, TypeError, KeyError):
                continue  # a foreign or damaged file is not a variant
        return sorted(found, key=lambda v: (v.generation, v.created_at, v.id))

    def children(self, variant_id: str) -> list[Variant]:
        return [v for v in self.all() if v.parent == variant_id]

    def unfinished(self) -> list[Variant]:
        return [v for v in self.all() if v.status not in TERMINAL]

    def meta_scores(self) -> dict[str, dict[str, int]]:
        """For each version of `meta/`: variants made, admitted, and that beat their parent."""
        table: dict[str, dict[str, int]] = {}
        for v in self.all():
            if v.id == "main":
                continue
            row = table.setdefault(v.meta_version or "?", {"made": 0, "admitted": 0, "beat_parent": 0})
            row["made"] += 1
            row["admitted"] += v.status in (ADMITTED, PROMOTED)
            row["beat_parent"] += v.beat_parent
        return table
