"""What a person does with the archive: compare, promote, reject, roll back. Nothing here is
ever called by the evolve loop itself — only a person promotes.

Promotion first scores the variant and the current `main` on the held-out test split (never
shown to the meta agent), so the decision rests on tasks neither was selected on, then shows
the paired comparison and asks (`confirm`); only then does `main` move.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..bench.stats import Paired, pair
from ..errors import EvoError
from .archive import ADMITTED, PROMOTED, REJECTED, Archive, StageScore, Variant
from .genome_repo import GenomeRepo


def archive_of(ctx) -> Archive:
    return Archive(ctx.state.dir / "evolve")


def genome_repo_of(ctx) -> GenomeRepo:
    from ..genome import init_genome

    path = ctx.state.dir / "agent"
    init_genome(path)
    return GenomeRepo(path)


def stage_score(ctx, run_summary: dict) -> StageScore:
    from ..bench.run import bench_store

    run = bench_store(ctx).get(run_summary["run_id"])
    outcomes = {r.task_id: r.resolved for r in run.results()}
    return StageScore(run.id, sum(outcomes.values()), len(outcomes), run_summary["ci95"], outcomes)


def score_on(ctx, ref: str, split: str | None, *, ids: list[str] | None = None,
             model: str | None = None, jobs: int = 1, executor: str = "local",
             progress=None) -> StageScore:
    """Bench the genome at `ref` on a split (or ids); the harness's score."""
    from ..bench.run import BenchOptions, run_bench

    summary = run_bench(ctx, BenchOptions(split=split, ids=list(ids or []), variant=ref,
                                          model=model, jobs=jobs, executor=executor), progress)
    return stage_score(ctx, summary)


@dataclass
class Comparison:
    variant: StageScore
    main: StageScore
    paired: Paired

    def text(self, variant_id: str) -> str:
        p = self.paired
        return (f"held-out test split: {variant_id} {self.variant.resolved}/{self.variant.total}, "
                f"main {self.main.resolved}/{self.main.total}; both {len(p.both)}, only "
                f"{variant_id} {len(p.only_a)}, only main {len(p.only_b)}, neither "
                f"{len(p.neither)}; {p.verdict()}")


def compare_on_test(ctx, variant: Variant, **bench: object) -> Comparison:
    """The variant and current main on the test split, scored once per main version."""
    repo = genome_repo_of(ctx)
    archive = archive_of(ctx)
    main_key = f"test:main@{repo.sha('main')[:12]}"
    if "test" not in variant.scores:
        variant.scores["test"] = score_on(ctx, repo.ref_of(variant.id), "test", **bench)
        archive.save(variant)
    if main_key not in variant.scores:
        variant.scores[main_key] = score_on(ctx, "main", "test", **bench)
        archive.save(variant)
    mine, main = variant.scores["test"], variant.scores[main_key]
    return Comparison(mine, main, pair(mine.outcomes, main.outcomes))


def promote(ctx, variant_id: str, confirm: Callable[[str], bool],
            **bench: object) -> tuple[str, Comparison] | None:
    """Score on test, ask, move main; (tag of the previous main, comparison), or None when
    the person declined."""
    archive = archive_of(ctx)
    variant = archive.get(variant_id)
    if variant.id == "main":
        raise EvoError("main is already the live agent")
    if variant.status not in (ADMITTED, PROMOTED):
        raise EvoError(f"variant {variant.id} is {variant.status}"
                       f"{': ' + variant.reason if variant.reason else ''}; only an admitted "
                       "variant can be promoted")
    comparison = compare_on_test(ctx, variant, **bench)
    if not confirm(comparison.text(variant.id)):
        return None
    repo = genome_repo_of(ctx)
    tag = repo.move_main(repo.ref_of(variant.id))
    variant.status = PROMOTED
    variant.reason = f"promoted; previous main kept as {tag}"
    archive.save(variant)
    repo.add_note(repo.ref_of(variant.id), _note(variant))
    return tag, comparison


def reject(ctx, variant_id: str, reason: str = "rejected by a person") -> Variant:
    archive = archive_of(ctx)
    variant = archive.get(variant_id)
    if variant.status == PROMOTED:
        raise EvoError(f"variant {variant.id} is the promoted main; roll back instead")
    variant.status, variant.reason = REJECTED, reason
    archive.save(variant)
    return variant


def rollback(ctx, tag: str | None = None) -> str:
    """Restore an earlier main (default: the one before the last promotion); its sha."""
    return genome_repo_of(ctx).rollback(tag)


def _note(variant: Variant) -> str:
    """The lineage note stored on the variant's commit in the genome repository."""
    lines = [f"Evoagent-Variant: {variant.id}", f"Evoagent-Parent: {variant.parent or '-'}",
             f"Evoagent-Status: {variant.status}"]
    for name, score in sorted(variant.scores.items()):
        lines.append(f"Evoagent-Score-{name}: {score.resolved}/{score.total} ({score.bench_run})")
    if variant.reason:
        lines.append(f"Evoagent-Reason: {variant.reason}")
    return "\n".join(lines)


def worktree_path(ctx, variant_id: str) -> Path:
    return archive_of(ctx).worktrees / variant_id
