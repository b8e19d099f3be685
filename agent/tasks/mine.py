"""`evoagent tasks mine` end to end: history → candidates → a pool of validators → store.

Commits are walked newest first along the first-parent history; each undecided one is
classified (cheap, in this thread), and candidates go to a pool of `jobs` workers, each
validating in its own workspace. Every decision is appended to the store as soon as it is
made, so an interrupted run resumes where it stopped and a second run does no work.
`want` stops handing out candidates once that many tasks were found; validations already
in flight still finish and are kept (at most `jobs - 1` extra).

After the history, approved fixes (active knowledge records) not yet decided go through the
same pool (`from_knowledge` turns each into a candidate); `knowledge=None` skips them.

A caller follows the run through `MineProgress`: once the history is walked (how much is left
to decide), then after each decision, with the report's counters and `eta_seconds` current.

The problem statement is the commit message as written, plus the intent of any knowledge
record made from that commit (for an approved fix: the issue the person asked about).
Memory holds no issue texts yet, so referenced issues are listed (`issue_refs`) but not
quoted. Nothing from the diff is ever added.
"""

from __future__ import annotations

import itertools
import re
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from evoagent.memory.commit_names import extract_issue_refs
from evoagent.sandbox.workspace import GitError, git

from . import from_knowledge
from .candidates import Candidate, Commit, NotCandidate, first_parent_history, walk
from .store import Reject, Task, TaskStore
from .validate import ValidationConfig, Verdict, to_reject, to_task, validate

if TYPE_CHECKING:
    from evoagent.memory.knowledge import Knowledge

_REMOTE = re.compile(r"[:/]([\w.-]+)/([\w.-]+?)(?:\.git)?/?$")


def repo_name(repo: Path) -> str:
    """owner/name from the `origin` remote, else the directory name."""
    try:
        url = git(repo, "remote", "get-url", "origin").strip()
    except GitError:
        url = ""
    # A local path as origin (a clone of a clone) names no project: use the directory.
    match = _REMOTE.search(url) if "://" in url or "@" in url else None
    return f"{match.group(1)}/{match.group(2)}" if match else Path(repo).resolve().name


def problem_statement(
    commit: Commit, knowledge_intent: str = "", source: str = "commit message"
) -> tuple[str, list[str]]:
    text = commit.message.strip()
    sources = [source]
    if knowledge_intent.strip() and knowledge_intent.strip() not in text:
        text += "\n\n" + knowledge_intent.strip()
        sources.append("knowledge intent")
    return text, sources


def _short(key: str) -> str:
    """A sha's first 10 characters; a `knowledge:<id>` key whole."""
    return key if key.startswith(from_knowledge.PREFIX) else key[:10]


@dataclass
class MineReport:
    examined: int = 0
    already_decided: int = 0
    knowledge_examined: int = 0
    """Active knowledge records looked at (decided before or not)."""
    knowledge_already_decided: int = 0
    knowledge_skipped: int = 0
    """Retracted or superseded records: never a task."""
    candidates: int = 0
    tasks: list[Task] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    seconds: float = 0.0
    validate_seconds: float = 0.0
    """Summed over candidates (workers run in parallel, so it may exceed `seconds`)."""
    test_runs: Counter = field(default_factory=Counter)
    """Test runs made at P+tests ("parent") and at C ("commit"), summed over candidates."""
    to_decide: int = 0
    """Commits and approved fixes not decided before this run: what it has to look at."""
    decided: int = 0
    """Of `to_decide`, how many this run decided so far (kept, rejected or classified out)."""
    validated: int = 0
    """Candidates whose validation ended (`validate_seconds` sums their times)."""

    def eta_seconds(self, jobs: int = 1, want: int | None = None) -> float | None:
        """Seconds left, from the mean time of a validation so far; None before one ended.

        Only validations are timed: classifying a commit takes milliseconds and would make
        the mean meaningless. What is left is the candidates in flight plus those still to
        come: the share of looked-at items that became candidates, applied to the items not
        looked at yet, and with `want` no more than finding the missing tasks takes at the
        rate seen so far. `jobs` validations run at once.
        """
        if not self.validated:
            return None
        mean = self.validate_seconds / self.validated
        in_flight = self.candidates - self.validated
        looked_at = self.decided + in_flight
        coming = max(0, self.to_decide - looked_at) * self.candidates / max(1, looked_at)
        if want is not None:
            missing = max(0, want - len(self.tasks))
            if not missing:
                coming = 0.0
            elif self.tasks:
                coming = min(coming, missing * self.validated / len(self.tasks))
        return mean * (in_flight + coming) / max(1, jobs)

    def reasons(self) -> dict[str, int]:
        return dict(Counter(r.reason for r in self.rejects).most_common())

    def to_json(self) -> dict[str, Any]:
        return {
            "examined": self.examined,
            "already_decided": self.already_decided,
            "knowledge": {
                "examined": self.knowledge_examined,
                "already_decided": self.knowledge_already_decided,
                "skipped": self.knowledge_skipped,
            },
            "candidates": self.candidates,
            "tasks": len(self.tasks),
            "rejected": len(self.rejects),
            "reasons": self.reasons(),
            "seconds": round(self.seconds, 3),
            "seconds_per_candidate": round(self.validate_seconds / self.candidates, 3)
            if self.candidates
            else None,
            "test_runs": dict(self.test_runs),
            "new_tasks": [
                {
                    "id": t.id,
                    "commit": t.commit,
                    "source": t.source,
                    "fail_to_pass": t.fail_to_pass,
                    "cascade": t.cascade,
                    "flaky": t.flaky,
                }
                for t in self.tasks
            ],
            "new_rejects": [r.to_json() for r in self.rejects],
        }


class MineProgress(Protocol):
    """What `mine_tasks` reports as it goes; called on the mining thread."""

    def planned(self, report: MineReport) -> None:
        """The history is walked: `report.to_decide` commits and approved fixes to look at."""

    def decided(self, report: MineReport, note: str) -> None:
        """One more decided (`report.decided`): `note` says what became of it."""


def mine_tasks(
    repo: Path,
    store: TaskStore,
    config: ValidationConfig,
    sandboxes: Path,
    *,
    last: int | None = None,
    since: str | None = None,
    want: int | None = None,
    jobs: int = 1,
    name: str | None = None,
    knowledge_intents: dict[str, str] | None = None,
    knowledge: list[Knowledge] | None = None,
    runs_dir: Path | None = None,
    progress: MineProgress | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> MineReport:
    """`knowledge`: every knowledge record (any status), mined after the history; the run
    folders in `runs_dir` give an approved fix its full issue text and patch. `clock`
    times the run and each validation (seconds; a test can make it deterministic)."""
    started = clock()
    report = MineReport()
    name = name or repo_name(repo)
    intents = knowledge_intents or {}
    commits = first_parent_history(repo, last, since)
    decided = store.decided()
    report.examined = len(commits)
    report.already_decided = sum(1 for c in commits if c.sha in decided)
    command_text = " ".join(config.test_command.argv)
    records, report.knowledge_skipped = from_knowledge.approved(knowledge or [])
    report.knowledge_examined = len(records)
    report.knowledge_already_decided = sum(
        1 for r in records if from_knowledge.decision_key(r.id) in decided
    )
    report.to_decide = (report.examined - report.already_decided) + (
        report.knowledge_examined - report.knowledge_already_decided
    )
    if progress:
        progress.planned(report)
    stream: Any = walk(repo, commits, decided)
    if records:
        approved = from_knowledge.candidates(repo, records, store, runs_dir)
        stream = itertools.chain(stream, approved)

    def work(candidate: Candidate) -> tuple[Verdict, float]:
        begun = clock()
        verdict = validate(repo, sandboxes, candidate, config)
        return verdict, clock() - begun

    def decided(note: str) -> None:
        report.decided += 1
        if progress:
            progress.decided(report, note)

    def record(candidate: Candidate, verdict: Verdict, seconds: float) -> None:
        report.validated += 1
        report.validate_seconds += seconds
        report.test_runs.update(verdict.runs)
        if verdict.fail_to_pass:
            statement, sources = problem_statement(
                candidate.commit,
                intents.get(candidate.commit.sha, ""),
                candidate.statement_source,
            )
            task = to_task(
                candidate,
                verdict,
                repo_name=name,
                test_command=command_text,
                statement=statement,
                sources=sources,
                issue_refs=extract_issue_refs(candidate.commit.message),
                seconds=seconds,
            )
            store.add_task(task)
            report.tasks.append(task)
            note = f"task {task.id}"
        else:
            reject = to_reject(candidate, verdict, seconds)
            store.add_reject(reject)
            report.rejects.append(reject)
            note = f"rejected {_short(candidate.commit.sha)}: {verdict.reason}"
        decided(note)

    def next_candidate() -> Candidate | None:
        for item in stream:
            if isinstance(item, Reject):  # an approved fix that cannot be a task
                store.add_reject(item)
                report.rejects.append(item)
                decided(f"not a candidate {_short(item.commit)}: {item.reason}")
                continue
            if isinstance(item, NotCandidate):
                reject = Reject(
                    item.commit.sha,
                    item.reason,
                    item.detail,
                    "filter",
                    item.commit.subject,
                    0.0,
                    time.time(),
                )
                store.add_reject(reject)
                report.rejects.append(reject)
                decided(f"not a candidate {_short(reject.commit)}: {reject.reason}")
                continue
            return item
        return None

    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="evoagent-tasks")
    inflight: dict[Future, Candidate] = {}
    try:
        exhausted = False
        while True:
            while (
                not exhausted
                and len(inflight) < max(1, jobs)
                and (want is None or len(report.tasks) < want)
            ):
                candidate = next_candidate()
                if candidate is None:
                    exhausted = True
                    break
                report.candidates += 1
                inflight[pool.submit(work, candidate)] = candidate
            if not inflight:
                break
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            for future in done:
                candidate = inflight.pop(future)
                verdict, seconds = future.result()
                record(candidate, verdict, seconds)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        report.seconds = clock() - started
    return report
