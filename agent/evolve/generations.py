"""`evoagent evolve run`: generations of propose → gate → score → archive.

One generation:
1. pick P parents from the archive (selection.py; `main` first);
2. for each, in parallel: fork `variants/<id>` from the parent, give the meta agent the
   parent's genome (writable worktree), the digests of the parent's failed train tasks and
   a summary of the archive; commit what it wrote with its proposal as the message;
3. gates in order, each recorded: load → policy → duplicate → safety → small stage of val
   tasks → full val (only when the small stage is not worse than the parent beyond noise);
4. archive the variant whatever happened, and write its lineage and scores as a git note
   on its branch.

Every stage saves the variant, so Ctrl-C leaves the archive consistent; `--resume`
continues unfinished variants from their last recorded gate (a variant interrupted before
its proposal was committed is dropped and proposed again) and then the remaining
generations. Budgets (dollars, hours) cap the run; running out before the planned
generations is exit 4. Scores come only from the harness.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..bench.stats import exact_mcnemar
from ..errors import EXIT_BUDGET, EvoError
from ..terminal_text import one_line as printable
from .archive import ADMITTED, GATING, PROPOSING, REJECTED, Archive, StageScore, Variant
from .gates import duplicate_gate, load_gate, policy_gate, safety_gate
from .genome_repo import GenomeRepo
from .review import _note, archive_of, genome_repo_of, score_on
from .selection import choose_parents

RUN_FILE = "run.json"
NEEDED_SPLITS = ("train", "val")
"""Val scores every variant (small stage, full val); train's failures are what the meta
agent is shown, and main is scored on it first."""


class EvolveBudgetExhausted(EvoError):
    def __init__(self, message: str):
        super().__init__(message, EXIT_BUDGET)


@dataclass
class EvolveOptions:
    generations: int = 1
    parallel: int = 1
    budget_usd: float | None = None
    max_hours: float | None = None
    jobs: int = 1
    executor: str = "local"
    model: str | None = None
    """The task agent's model (bench and safety)."""
    meta_model: str | None = None
    small_stage: int = 5
    """Val tasks in the small stage."""
    noise_alpha: float = 0.1
    """The small stage stops a variant when the parent is better with p below this."""
    seed: int | None = None
    strict: bool = False
    resume: bool = False


@dataclass
class EvolveReport:
    generations_done: int = 0
    variants: list[str] = field(default_factory=list)
    admitted: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    cost_usd: float = 0.0
    seconds: float = 0.0
    stopped: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


Progress = Callable[[str], None]


class Evolution:
    def __init__(self, ctx, options: EvolveOptions, progress: Progress | None = None):
        from ..genome import Genome
        from ..model_select import select_model

        if options.resume:
            options = _resumed(archive_of(ctx), options)
        self.repo: GenomeRepo = genome_repo_of(ctx)
        Genome.load(self.repo.path)  # a broken live genome: one line, exit 2, before any work
        check_splits(ctx)  # and no model is chosen, let alone called, without tasks to score
        self.ctx = ctx
        self.options = options
        self.progress = progress or (lambda text: None)
        self.archive: Archive = archive_of(ctx)
        self.model = select_model(options.model or ctx.settings.model or None).name
        self.meta_model = (select_model(options.meta_model).name if options.meta_model
                           else self.model)
        self.rng = random.Random(options.seed)
        # Proposals run in threads: git in one repository and the spend counter are shared.
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self.spent = 0.0
        self.report = EvolveReport()

    # -- budget -----------------------------------------------------------------------------

    def _charge(self, cost: float | None) -> None:
        with self._lock:
            self.spent += cost or 0.0
            self.report.cost_usd = round(self.spent, 6)

    def _over_budget(self) -> str:
        o = self.options
        if o.budget_usd is not None and self.spent >= o.budget_usd:
            return f"budget of ${o.budget_usd:.2f} spent (${self.spent:.2f})"
        if o.max_hours is not None and time.monotonic() - self.started >= o.max_hours * 3600:
            return f"time limit of {o.max_hours} h reached"
        return ""

    def _bench_cost(self, score: StageScore) -> None:
        from ..bench.run import bench_store

        summary = bench_store(self.ctx).get(score.bench_run).summary()
        self._charge(summary.get("cost_usd"))

    # -- scores -----------------------------------------------------------------------------

    def _score(self, ref: str, split: str, ids: list[str] | None = None) -> StageScore:
        score = score_on(self.ctx, ref, split, ids=ids, model=self.model, jobs=self.options.jobs,
                         executor=self.options.executor)
        self._bench_cost(score)
        return score

    def root(self) -> Variant:
        """`main` in the archive, scored on train (its failures feed the meta agent) and val."""
        main = self.archive.find("main")
        sha = self.repo.sha("main")
        if main is None or main.commit != sha:
            main = Variant("main", None, 0, status=ADMITTED, commit=sha,
                           meta_version=self.repo.tree_sha("main", "meta"))
        for split in ("train", "val"):
            if split not in main.scores:
                self.progress(f"scoring main on {split}")
                main.scores[split] = self._score("main", split)
                self.archive.save(main)
        return main

    # -- one variant ------------------------------------------------------------------------

    def propose(self, parent: Variant, generation: int) -> Variant:
        variant = Variant(f"g{generation}-{uuid.uuid4().hex[:6]}", parent.id, generation,
                          meta_version=self.repo.tree_sha(self.repo.ref_of(parent.id), "meta"))
        self.archive.save(variant)
        with self._lock:
            worktree = self.repo.fork(variant.id, self.repo.ref_of(parent.id), self.archive.worktrees)
        started = time.monotonic()
        try:
            from .meta_agent import propose

            # The person's endpoint settings belong to the model they configured: a different
            # --meta-model is reached at its provider's own address.
            same = self.meta_model == self.model
            proposal = propose(worktree, self.meta_model, {
                "parent_id": parent.id,
                "scores": _scores_text(parent),
                "failures": self._failures(parent),
                "archive": self._archive_summary(),
            }, api_base=self.ctx.settings.api_base if same else None,
                context_limit=self.ctx.settings.context_limit if same else None)
            self._charge(proposal.cost_usd)
            variant.tokens += proposal.tokens
            variant.proposal = proposal.text
            message = (f"{_title(proposal.text)}\n\n{proposal.text}\n\n"
                       f"Evoagent-Variant: {variant.id}\nEvoagent-Parent: {parent.id}\n")
            with self._lock:
                commit = self.repo.commit_all(worktree, message)
                variant.commit = commit or self.repo.sha(self.repo.ref_of(parent.id))
                variant.diff = self.repo.diff(self.repo.ref_of(parent.id),
                                              self.repo.ref_of(variant.id))
            variant.status = GATING
        except EvoError as exc:
            variant.status, variant.reason = REJECTED, f"meta agent: {printable(exc.message, 500)}"
        finally:
            variant.seconds += round(time.monotonic() - started, 3)
            with self._lock:
                self.repo.drop_worktree(worktree)
            self.archive.save(variant)
        return variant

    def gate(self, variant: Variant) -> Variant:
        """Run the gates not yet recorded, in order; save after each."""
        parent = self.archive.get(variant.parent or "main")
        parent_ref, ref = self.repo.ref_of(parent.id), self.repo.ref_of(variant.id)
        started = time.monotonic()
        worktree = None
        try:
            worktree = self.repo.checkout(ref, self.archive.worktrees / f"check-{variant.id}")
            steps: list[tuple[str, Callable[[], Any]]] = [
                ("load", lambda: load_gate(worktree, self.options.strict)),
                ("policy", lambda: policy_gate(self.repo.show(parent_ref, "policy.toml"), worktree)),
                ("duplicate", lambda: duplicate_gate(
                    variant.diff, [v for v in self.archive.all() if v.id not in (variant.id, "main")
                                   and v.commit and v.created_at < variant.created_at])),
                ("safety", lambda: safety_gate(worktree, self.repo.changed_paths(parent_ref, ref),
                                               self.model, self.options.strict)),
            ]
            for name, run in steps:
                if variant.gate(name) is None:
                    self.progress(f"{variant.id}: gate {name}")
                    variant.gates.append(run())
                    self.archive.save(variant)
                result = variant.gate(name)
                if not result.passed:
                    variant.status, variant.reason = REJECTED, f"{name}: {result.detail}"
                    return variant
            if not self._stage(variant, parent, "small"):
                return variant
            self._stage(variant, parent, "val")
            if variant.status == GATING:
                variant.status = ADMITTED
        finally:
            if worktree is not None:
                self.repo.drop_worktree(worktree)
            variant.seconds += round(time.monotonic() - started, 3)
            self.archive.save(variant)
            self.repo.add_note(self.repo.ref_of(variant.id), _note(variant))
        return variant

    def _stage(self, variant: Variant, parent: Variant, stage: str) -> bool:
        """Score on the small stage or full val; False when the variant stops here."""
        small = variant.scores.get("small")
        val = parent.scores.get("val")
        if stage == "val" and "val" not in variant.scores and small and val \
                and set(small.outcomes) >= set(val.outcomes):
            # the small stage already ran every val task: the same run is the val score
            variant.scores["val"] = small
            variant.parent_scores["val"] = variant.parent_scores.get("small", val)
            self.archive.save(variant)
        if stage not in variant.scores:
            ids = sorted(val.outcomes)[: self.options.small_stage] if val and stage == "small" else None
            if stage == "small" and not ids:
                return True  # no val tasks: nothing to stage on
            self.progress(f"{variant.id}: scoring on {stage}")
            score = self._score(self.repo.ref_of(variant.id), "val", ids=ids)
            variant.scores[stage] = score
            if val:  # the parent's outcomes on the same tasks, from its own val run
                outcomes = {t: val.outcomes[t] for t in score.outcomes if t in val.outcomes}
                variant.parent_scores[stage] = StageScore(val.bench_run, sum(outcomes.values()),
                                                          len(outcomes), val.ci95, outcomes)
            self.archive.save(variant)
        mine, theirs = variant.scores[stage], variant.parent_scores.get(stage)
        if theirs is None:
            return True
        only_parent = sum(1 for t, ok in theirs.outcomes.items() if ok and not mine.outcomes.get(t))
        only_mine = sum(1 for t, ok in mine.outcomes.items() if ok and not theirs.outcomes.get(t))
        # One-sided: is the parent better beyond noise? (half the two-sided exact p)
        worse = only_parent > only_mine and exact_mcnemar(only_mine, only_parent) / 2 < self.options.noise_alpha
        if stage == "small" and worse:
            variant.status = REJECTED
            variant.reason = (f"small stage: worse than {parent.id} beyond noise "
                              f"({mine.resolved}/{mine.total} vs {theirs.resolved}/{theirs.total})")
            return False
        return True

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> EvolveReport:
        self.archive.lock()
        try:
            state = self._load_state()
            root = self.root()
            for variant in self.archive.unfinished():
                self._finish(variant)
            if state.get("proposed") == state["done"] + 1:  # interrupted while gating it
                state["done"] += 1
                self._save_state(state)
            while state["done"] < state["planned"]:
                reason = self._over_budget()
                if reason:
                    self.report.stopped = reason
                    raise EvolveBudgetExhausted(f"stopped after {state['done']} of "
                                                f"{state['planned']} generations: {reason}")
                generation = state["done"] + 1
                parents = choose_parents(self.archive.all() or [root], self.options.parallel, self.rng,
                                         self.archive)
                self.progress(f"generation {generation}: parents {', '.join(p.id for p in parents)}")
                with ThreadPoolExecutor(max_workers=max(1, self.options.parallel)) as pool:
                    proposed = list(pool.map(self.propose, parents, [generation] * len(parents)))
                state["proposed"] = generation  # a resume now only gates this generation
                self._save_state(state)
                for variant in proposed:
                    self._finish(variant)
                state["done"] += 1
                self.report.generations_done = state["done"]
                self._save_state(state)
        finally:
            self.report.seconds = round(time.monotonic() - self.started, 3)
            self.archive.unlock()
        return self.report

    def _finish(self, variant: Variant) -> None:
        if variant.status == PROPOSING:  # interrupted before its proposal was committed
            variant.status, variant.reason = REJECTED, "interrupted before the proposal was committed"
            self.archive.save(variant)
            self.repo.drop_worktree(self.archive.worktrees / variant.id)
        if variant.status == GATING:
            self.gate(variant)
        self.report.variants.append(variant.id)
        if variant.status == ADMITTED:
            self.report.admitted.append(variant.id)
        elif variant.status == REJECTED:
            self.report.rejected[variant.id] = variant.reason

    # -- run state --------------------------------------------------------------------------

    def _load_state(self) -> dict[str, Any]:
        path = self.archive.path / RUN_FILE
        if self.options.resume:
            try:
                state = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise EvoError("nothing to resume: no interrupted evolve run") from exc
            self.report.generations_done = state["done"]
            return state
        state = {"planned": self.options.generations, "done": 0, "started_at": time.time(),
                 "options": asdict(self.options)}
        self._save_state(state)
        return state

    def _save_state(self, state: dict[str, Any]) -> None:
        path = self.archive.path / RUN_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(path)

    # -- what the meta agent is told --------------------------------------------------------

    def _failures(self, parent: Variant, limit: int = 8) -> str:
        """Digests of the parent's failed train tasks: statement, verdict, failing tests and
        the last steps of its trajectory. Train only: val and test never reach the meta agent."""
        from ..bench.run import bench_store
        from ..tasks.store import TaskStore

        train = parent.scores.get("train")
        if train is None:
            train = parent.scores["train"] = self._score(self.repo.ref_of(parent.id), "train")
            self.archive.save(parent)
        run = bench_store(self.ctx).get(train.bench_run)
        tasks = {t.id: t for t in TaskStore(self.ctx.state.dir / "tasks").tasks()}
        blocks = []
        for result in run.results():
            if result.resolved:
                continue
            task = tasks.get(result.task_id)
            statement = task.problem_statement.splitlines()[0] if task else ""
            failing = [t for t, v in result.fail_to_pass.items() if v != "pass"]
            blocks.append(f"### {result.task_id}: {statement}\nverdict: {result.reason}\n"
                          f"failing: {', '.join(failing[:5]) or '-'}\n"
                          f"{_trajectory_tail(result.trajectory)}")
            if len(blocks) >= limit:
                break
        return "\n\n".join(blocks) or "(no failed training tasks)"

    def _archive_summary(self, limit: int = 20) -> str:
        rows = []
        for v in self.archive.all()[-limit:]:
            if v.id == "main":
                continue
            score = v.scores.get("val") or v.scores.get("small")
            rows.append(f"- {v.id} (from {v.parent}): {v.status}"
                        f"{' ' + str(score.resolved) + '/' + str(score.total) if score else ''}"
                        f"{' — ' + printable(v.reason, 500) if v.reason else ''}: "
                        f"{_title(v.proposal)}")
        return "\n".join(rows) or "(nothing tried yet)"


def check_splits(ctx) -> None:
    """One line (exit 2) when a split evolve needs has no task, naming what each holds."""
    from ..bench.run import split_counts

    counts = split_counts(ctx)
    if all(counts[name] for name in NEEDED_SPLITS):
        return
    total = sum(counts.values())
    if not total:
        todo = "mine some with `evoagent tasks mine`"
    elif total < len(NEEDED_SPLITS):
        todo = "mine more with `evoagent tasks mine`"
    else:
        todo = ("mine more with `evoagent tasks mine`, or change the split with "
                "`evoagent tasks mine --ratios TRAIN,VAL,TEST`")
    held = ", ".join(f"{name} has {n}" for name, n in counts.items())
    raise EvoError(f"evolve needs tasks in {' and '.join(NEEDED_SPLITS)}; {held} — {todo}")


def _resumed(archive: Archive, given: EvolveOptions) -> EvolveOptions:
    """A resumed run keeps what it searches with (models, parallel proposals, stages, seed);
    only how it runs (jobs, executor, budgets, strictness) may change."""
    try:
        saved = json.loads((archive.path / RUN_FILE).read_text()).get("options", {})
    except (OSError, ValueError) as exc:
        raise EvoError("nothing to resume: no interrupted evolve run") from exc
    how = ("jobs", "executor", "budget_usd", "max_hours", "strict")
    merged = {k: v for k, v in saved.items() if k in EvolveOptions.__dataclass_fields__}
    merged.update({k: getattr(given, k) for k in how})
    for key in ("model", "meta_model"):
        merged[key] = merged.get(key) or getattr(given, key)
    merged["resume"] = True
    return EvolveOptions(**merged)


def _title(proposal: str) -> str:
    for line in proposal.splitlines():
        line = line.strip().strip("#").strip()
        if line:
            return line[:100]
    return "Genome change"


def _scores_text(variant: Variant) -> str:
    return "\n".join(f"{name}: {s.resolved}/{s.total} resolved" for name, s in
                     sorted(variant.scores.items()) if not name.startswith("test")) or "(unscored)"


def _trajectory_tail(path: str, events: int = 6) -> str:
    """The last tool calls and results of a run, trimmed (what the agent did at the end)."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return ""
    picked = []
    for line in reversed(lines):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("type") in ("tool_call", "tool_result", "test_result"):
            text = event.get("output") or json.dumps(event.get("arguments") or event.get("failing") or "")
            picked.append(f"  {event['type']} {event.get('name', '')}: {printable(str(text), 200)}")
        if len(picked) >= events:
            break
    return "\n".join(reversed(picked))


def run_evolution(ctx, options: EvolveOptions, progress: Progress | None = None) -> EvolveReport:
    return Evolution(ctx, options, progress).run()
