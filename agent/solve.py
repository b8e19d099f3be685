"""Self-refinement: the kernel, not the agent, decides whether an attempt worked.

After the agent calls `finish`, the tests run in the sandbox. Failures become a compact
digest handed back for another attempt, up to the genome's `refine_attempts`. Every
attempt is a checkpoint commit in the workspace, and the result is the best attempt by test
outcome: a later attempt that breaks more tests never wins. When the winning patch adds or
changes tests, the kernel also checks that those tests fail without the code change (the
issue was reproduced) and pass with it.

The change under test must not decide its own verdict. Each attempt's patch goes through the
patch policy first (`patch_policy`): what may never be delivered is dropped (`.git`,
`.evoagent/`, protected paths, nested repositories, symlinks out of the repository), and the
changes to test infrastructure (conftest.py, pytest configuration, sitecustomize, .pth files,
modules shadowing the test runner) are left out of the deciding run and reported. The deciding
tests then run on exactly the base plus what is left: the workspace is reset (ignored files
too) and that patch applied, so nothing the patch does not show (an ignored conftest.py, say)
can take part.

The model is told honestly why it is sent back (the refine prompt's `situation`): it finished
without a change; the tests could not run with its change; its change broke or did not fix
tests; or it broke nothing but no test shows the fix. The digest shows what changed between
the run before the change and after it: failures that also failed, the same way, before the
change are named as pre-existing and never blamed on the attempt.

When no verdict is possible (the tests could not run before the change and still cannot: a
conftest that does not import, no test collected, a missing interpreter), the run ends
`tests_did_not_run` without refining: nothing the model changes can be judged. When the model
itself fails for good, the attempt in flight is tested like any other and the best attempt is
kept; the caller reports the error (`SolveResult.error`).

The genome's hooks may reword the failure digest the model is shown (`failure_digest`) and
end the run early (`stop`); the kernel's own test results and verdict never go through them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from evoagent.memory.commit_names import is_runnable_test, is_test_path
from evoagent.sandbox.protocols import Runner
from evoagent.sandbox.testdetect import TestCommand
from evoagent.sandbox.testrun import TestRun, run_tests
from evoagent.sandbox.workspace import GitError, Workspace

from .errors import EvoError
from .events import DiffProposed, Event, PatchFiltered, Phase, TestResult
from .genome import Genome
from .genome_code import GenomeHooks, tests_summary
from .loop import AgentLoop, AttemptOutcome, LoopConfig
from .model import Model, ModelError
from .patch_policy import PatchReview, review_patch
from .patch_sections import join as join_patch
from .patch_sections import split as split_patch
from .tools.base import ToolContext
from .usage import BudgetExhausted


@dataclass
class Attempt:
    number: int
    sha: str
    outcome: AttemptOutcome
    tests: TestRun | None
    diff: str
    """The deliverable patch: the attempt's change after the patch policy."""
    review: PatchReview | None = None
    """What the policy dropped and what it left out of the deciding run."""

    @property
    def deciding(self) -> str:
        """The patch the tests decided on (`diff` minus test infrastructure)."""
        return self.review.deciding if self.review is not None else self.diff

    def failures(self) -> set[str]:
        return set(self.tests.failed + self.tests.errors) if self.tests else set()

    def rank(self, before: TestRun | None) -> tuple[int, int, int, int, int]:
        """Smaller is better: no empty patch, tests that ran (an attempt that stops the test
        run has no failures to count, not zero), fewest new failures, fewest failures, latest."""
        broken = self.failures() - (set(before.failed + before.errors) if before else set())
        not_run = bool(self.tests is not None and self.tests.not_run)
        return (0 if self.diff.strip() else 1, int(not_run), len(broken), len(self.failures()),
                -self.number)


@dataclass
class Reproduction:
    tests: list[str]
    failed_without_fix: bool
    passed_with_fix: bool


@dataclass
class SolveResult:
    status: str
    """fixed | not_fixed | not_verified | tests_did_not_run | budget_exhausted, or answered:
    a conversation's turn that changed nothing (`summary` is the answer)."""
    attempts: list[Attempt]
    best: Attempt | None
    before: TestRun | None
    reproduction: Reproduction | None = None
    budget_reason: str = ""
    notes: list[str] = field(default_factory=list)
    error: EvoError | None = None
    """The model error that ended the run early; `best` is still the best attempt before it."""
    stopped: str = ""
    """For the report, when `error` ended the run: during which attempt, and what is kept."""
    summary: str = ""
    """An answered turn's reply (attempts carry their own summaries)."""

    @property
    def patch(self) -> str:
        return self.best.diff if self.best else ""


@dataclass
class Solver:
    workspace: Workspace
    runner: Runner
    model: Model
    genome: Genome
    ctx: ToolContext
    emit: Callable[[Event], None]
    test_command: TestCommand | None
    test_timeout: float = 900.0
    native_tools: bool = True
    should_stop: Callable[[], bool] | None = None
    """Passed to the loop: a front end's cancel (raises loop.Cancelled out of `solve`)."""
    hooks: GenomeHooks | None = None
    """The genome's hooks for this run (genome_code.for_run); None when it has none."""
    extra_tool_names: list[str] = field(default_factory=list)
    """Tools offered beyond the genome's (MCP servers'); set before `begin`."""
    on_baseline: Callable[[TestRun | None], None] | None = None
    """Told the baseline tests' outcome once they ran (a front end's phase line)."""

    def run_tests(self, test_ids: list[str] | None = None) -> TestRun | None:
        if self.test_command is None:
            return None
        return run_tests(
            self.runner, self.workspace.path, self.test_command,
            test_ids=test_ids or (), timeout=self.test_timeout,
        )

    def review(self, sha: str) -> PatchReview:
        """The attempt at `sha` through the patch policy (the base's files and modes come from
        git objects, never from the tree the sandbox wrote)."""
        ws = self.workspace
        return review_patch(ws.diff(ws.base, sha), self.genome.policy,
                            *base_reader(ws.git, ws.base))

    def decide(self, patch: str, test_ids: list[str] | None = None,
               restore: str | None = None) -> TestRun | None:
        """The kernel's test run on exactly base + `patch` (the tree reset, ignored files
        removed), then the workspace put back at `restore`. None without a test command, or
        when `patch` does not apply to the base (it came from a diff of it, so that is a bug
        worth a note, not a verdict)."""
        if self.test_command is None:
            return None
        ws = self.workspace
        try:
            ws.reset_to(ws.base, ignored=True)
            ws.apply(patch)
            return self.run_tests(test_ids)
        except GitError as exc:
            self._notes.append(f"the deciding patch did not apply: {str(exc)[:200]}")
            return None
        finally:
            if restore is not None:
                ws.reset_to(restore)

    def solve(self, system_prompt: str, task_prompt: str) -> SolveResult:
        """A headless fix run: the baseline tests first, then one turn with the task."""
        self.begin(system_prompt)
        self.baseline()
        return self.turn(task_prompt)

    def __post_init__(self) -> None:
        self._notes: list[str] = []
        self._reproductions: dict[str, Reproduction | None] = {}
        self._before: TestRun | None = None
        self._before_known = False
        self._attempts = 0
        self.kept: Attempt | None = None
        """The best attempt of the last turn that changed something: the pending change."""
        self.loop: AgentLoop | None = None
        """The conversation (`begin`); the baseline tests may run before it exists."""

    def begin(self, system_prompt: str, conversational: bool = False) -> None:
        """Start the conversation the turns continue. `conversational`: a reply in words
        ends an attempt (a question is answered; nothing is tested when nothing changed)."""
        loop_settings = self.genome.settings.loop
        self.loop = AgentLoop(
            self.model, self.ctx,
            LoopConfig([*self.genome.tools, *self.extra_tool_names], loop_settings.max_steps,
                       self.native_tools,
                       conversational=conversational),
            self.emit, [{"role": "system", "content": system_prompt}],
            should_stop=self.should_stop, hooks=self.hooks,
            tests=tests_summary(self._before) if self._before_known else None,
        )

    def baseline(self) -> TestRun | None:
        """The tests on the unchanged base, run once (the first time a verdict needs them)."""
        if not self._before_known:
            here = self.workspace.checkpoint("evoagent before the baseline tests",
                                             allow_empty=False)
            self._before = (self.decide("", restore=here) if here != self.workspace.base
                            else self.run_tests())
            self._before_known = True
            if self.loop is not None:
                self.loop.tests = tests_summary(self._before)
            if self.on_baseline is not None:
                self.on_baseline(self._before)
        return self._before

    def forget_baseline(self) -> None:
        """The base moved (the person accepted a change): the next verdict re-runs it."""
        self._before, self._before_known = None, False
        self._reproductions.clear()

    def turn(self, message: str, read_only: bool = False) -> SolveResult:
        """One request of the conversation: the model works from everything said before.
        A turn that changes nothing ends `answered` (no tests run); a change is tested and
        refined like a fix, and the pending change is everything since the base."""
        loop = self.loop
        assert loop is not None, "begin() first"
        loop.messages.append({"role": "user", "content": message})
        start = self.workspace.checkpoint("evoagent turn start", allow_empty=False)
        if read_only:
            return self._answer_only(start)
        loop_settings = self.genome.settings.loop
        attempts: list[Attempt] = []
        budget_reason = ""
        error: ModelError | None = None
        error_attempt = 0
        last_sha = start
        before: TestRun | None = self._before
        for refine in range(loop_settings.refine_attempts + 1):
            self._attempts += 1
            number = loop.attempt = self._attempts
            try:
                outcome = loop.run()
            except BudgetExhausted as exc:
                budget_reason = exc.message
                outcome = AttemptOutcome(f"(budget exhausted: {exc.reason})", 0, False)
            except ModelError as exc:
                # The provider failed for good. What this attempt changed so far is judged
                # like any attempt, so the best attempt survives the error.
                error, error_attempt = exc, number
                outcome = AttemptOutcome(f"(stopped: {exc.message})", 0, False)
            sha = self.workspace.checkpoint(f"evoagent attempt {number}")
            changed = bool(self.workspace.diff(last_sha, sha).strip())
            if error is not None and not changed:
                break  # nothing new since the last attempt: nothing more to judge
            if loop.config.conversational and refine == 0 and not changed and not budget_reason:
                return self._answered(outcome, error)
            before = self.baseline()
            review = self.review(sha)
            if review.dropped or review.infrastructure:
                self.emit(PatchFiltered(
                    number, [f"{d.path}: {d.reason}" for d in review.dropped],
                    [f"{c.path}: {c.reason}" for c in review.infrastructure],
                ))
            self.emit(DiffProposed(review.kept, number))
            tests = self.decide(review.deciding, restore=sha)
            attempt = Attempt(number, sha, outcome, tests, review.kept, review)
            attempts.append(attempt)
            if tests is not None:
                self.emit(TestResult(
                    number, len(tests.passed), len(tests.failed), len(tests.errors),
                    (tests.failed + tests.errors)[:20], tests.digest() if not tests.ok else "",
                    not_run=tests.not_run,
                ))
            if budget_reason or error or tests is None:
                break
            if _no_verdict(tests, before):
                break  # no verdict before the change nor with it: no attempt can be judged
            situation, digest = self._refinement(attempt, before)
            if not situation:
                break  # proven
            if refine >= loop_settings.refine_attempts:
                if not outcome.finished and outcome.steps >= loop_settings.max_steps:
                    # The last attempt was cut off, not finished: the run ran out of steps.
                    budget_reason = (f"budget exhausted: all {loop_settings.max_steps} steps "
                                     f"of attempt {number} used")
                break
            loop.tests = tests_summary(tests)
            if outcome.stopped or (
                self.hooks is not None and self.hooks.stop(outcome.steps, number, loop.tests)
            ):
                break  # the genome's stop hook ends the run: no further refinement
            self.emit(Phase("refining", _refine_reason(situation, attempt)))
            loop.messages.append({"role": "user", "content": self.genome.render(
                "refine", attempt=refine + 1, max_attempts=loop_settings.refine_attempts,
                situation=situation, digest=digest,
                diff_since_last=_diff(self.workspace, last_sha, sha),
            )})
            last_sha = sha
        best = min(attempts, key=lambda a: a.rank(before)) if attempts else None
        if best is not None:
            self.workspace.reset_to(best.sha)
            self.kept = best
        result = SolveResult("not_fixed", attempts, best, before, budget_reason=budget_reason,
                             notes=self._notes, error=error)
        if error is not None:
            kept = (f"the best attempt so far (attempt {best.number}) is kept"
                    if best is not None and best.diff.strip() else "no change to keep")
            result.stopped = (f"the model failed during attempt {error_attempt}: {error.message}; "
                              f"{kept}")
        if best is not None and best.diff.strip() and best.tests is not None:
            result.reproduction = self._reproduce(best)
        result.status = self._status(result)
        return result

    def _answered(self, outcome: AttemptOutcome,
                  error: ModelError | None = None) -> SolveResult:
        """A turn that changed nothing: an answer. The pending change stays as it was."""
        result = SolveResult("answered", [], self.kept, self._before, notes=self._notes,
                             error=error, summary=outcome.summary)
        if error is not None:
            result.stopped = f"the model failed: {error.message}"
        return result

    def _answer_only(self, start: str) -> SolveResult:
        """A read-only turn (/ask): only the reading tools are offered and nothing is tested;
        whatever a tool left in the tree is put back. The reading tools are the built-ins
        READ_ONLY_TOOLS names and the extra tools that say they change nothing (`read_only`:
        an MCP tool of the person's own server declared read-only)."""
        loop = self.loop
        offered = loop.config.tools
        extra = self.ctx.extra_tools
        loop.config.tools = [t for t in offered if t in READ_ONLY_TOOLS
                             or (t in extra and extra[t].read_only is True)]
        error: ModelError | None = None
        try:
            outcome = loop.run()
        except ModelError as exc:
            error, outcome = exc, AttemptOutcome(f"(stopped: {exc.message})", 0, False)
        finally:
            loop.config.tools = offered
            self.workspace.reset_to(start)
        return self._answered(outcome, error)

    def _refinement(self, attempt: Attempt, before: TestRun | None) -> tuple[str, str]:
        """Why `attempt` goes back to the model (the refine prompt's `situation`) and the
        digest that goes with it; ("", "") when it is proven. The situations: `no_change`,
        `not_run` (the tests ran before the change, not with it), `failing` (it broke tests, or
        its own tests fail, or it fixed none of the failing ones and they are not all
        pre-existing), `reproduce` (it broke nothing, but no test shows the fix and
        `require_reproduction` asks for one), `preexisting` (the same without that setting)."""
        tests = attempt.tests
        assert tests is not None
        require = self.genome.settings.loop.require_reproduction
        facts = (self._digest(tests, before) if not tests.ok
                 else f"Every test passes ({len(tests.passed)} passed).")
        if not attempt.diff.strip():
            return "no_change", _join(NO_CHANGE_REPRODUCE if require and tests.ok else "", facts)
        if tests.not_run:
            return "not_run", facts
        if self._good(attempt, before):
            unproven = self._unreproduced(attempt, before)
            return ("reproduce", _join(unproven, "" if tests.ok else facts)) if unproven else ("", "")
        after = attempt.failures()
        failing_before = set(before.failed + before.errors) if before else set()
        if not after or after - failing_before or _own_failures(attempt, failing_before):
            return "failing", facts
        return ("reproduce" if require else "preexisting",
                _join(ONLY_PREEXISTING + (REPRODUCE if require else SHOW_THE_FIX), facts))

    def _digest(self, tests: TestRun, before: TestRun | None) -> str:
        """The failure digest the model is shown: what changed since the run before the change
        (the kernel's), or the genome hook's version of it."""
        digest = tests.digest_since(before)
        if self.hooks is None:
            return digest
        return self.hooks.failure_digest(digest, tests.failed + tests.errors)

    def _good(self, attempt: Attempt, before: TestRun | None) -> bool:
        """No test that passed before fails now, and the change shows progress: a test that
        failed before passes now, or the patch's own tests pass (a reproduction), or
        everything passes. Failures unrelated to the change (no network, say) that failed
        before and still fail are tolerated."""
        if not attempt.diff.strip() or attempt.tests is None or attempt.tests.not_run:
            return False
        after = attempt.failures()
        if not after and (attempt.tests.passed or attempt.tests.exit_code == 0):
            return True
        failing_before = set(before.failed + before.errors) if before else set()
        if after - failing_before or _own_failures(attempt, failing_before):
            return False
        touched = _touched_tests(attempt.deciding)
        fixed_some = bool(failing_before - after)
        own_tests_pass = bool(touched) and any(p.split("::")[0] in touched for p in attempt.tests.passed)
        return fixed_some or own_tests_pass

    def _status(self, result: SolveResult) -> str:
        best, before = result.best, result.before
        if best is None or not best.diff.strip():
            return "budget_exhausted" if result.budget_reason else "not_fixed"
        if best.tests is None:
            return "not_verified"
        if _no_verdict(best.tests, before):
            return "tests_did_not_run"  # a change, and no test run to judge it before or after
        if self._good(best, before) and not self._needs_reproduction(
            best, before, result.reproduction
        ):
            return "fixed"
        return "budget_exhausted" if result.budget_reason else "not_fixed"

    def _needs_reproduction(
        self, attempt: Attempt, before: TestRun | None, reproduction: Reproduction | None
    ) -> bool:
        """With `require_reproduction`, a change that makes no failing test pass must bring
        a test that fails without it and passes with it: otherwise nothing shows the issue
        was real or is gone."""
        if not self.genome.settings.loop.require_reproduction:
            return False
        failing_before = set(before.failed + before.errors) if before else set()
        if failing_before - attempt.failures():
            return False
        return not (reproduction and reproduction.failed_without_fix and reproduction.passed_with_fix)

    def _unreproduced(self, attempt: Attempt, before: TestRun | None) -> str:
        """The refinement message when a passing attempt lacks a reproducing test, else ""."""
        if attempt.tests is None or not self._good(attempt, before):
            return ""
        if not self._needs_reproduction(attempt, before, None):
            return ""
        reproduction = self._reproduce(attempt)
        if not self._needs_reproduction(attempt, before, reproduction):
            return ""
        return ("Your change breaks no test, but no test reproduces the issue: none failed "
                "before your change and passes after it. " + REPRODUCE)

    def _reproduce(self, best: Attempt) -> Reproduction | None:
        """Run the patch's own tests on the code without the fix: they should fail there.
        Both runs decide on base + a patch, like every verdict (`decide`); once per attempt."""
        if best.sha not in self._reproductions:
            self._reproductions[best.sha] = self._run_reproduction(best)
        return self._reproductions[best.sha]

    def _run_reproduction(self, best: Attempt) -> Reproduction | None:
        tests = _touched_tests(best.deciding)
        if not tests:
            return None
        sections = split_patch(best.deciding).sections
        if all(is_test_path(s.new_path or s.old_path or "") for s in sections):
            return None
        tests_only = join_patch(s for s in sections if is_test_path(s.new_path or s.old_path or ""))
        without = self.decide(tests_only, tests, restore=best.sha)
        with_fix = self.decide(best.deciding, tests, restore=best.sha)
        if without is None or with_fix is None:
            return Reproduction(tests, False, False)
        failing_without = set(without.failed + without.errors)
        failing_with = set(with_fix.failed + with_fix.errors)
        # A test of the touched files that failed before the change, fails without the fix
        # and still fails with it is broken by something else (a missing library, a newer
        # dependency): it neither shows nor refutes the fix.
        before = self._before
        broken_anyway = failing_without & failing_with & (
            set(before.failed + before.errors) if before else set())
        return Reproduction(
            tests,
            failed_without_fix=bool(failing_without - broken_anyway) or (
                not without.ok and not failing_without),
            passed_with_fix=not with_fix.not_run and not (failing_with - broken_anyway)
            and bool(with_fix.passed or with_fix.exit_code == 0),
        )


READ_ONLY_TOOLS = frozenset({"locate", "recall", "repo_map", "search", "read", "outline",
                             "load_skill", "finish"})
"""What a read-only turn (/ask) offers: reading the code and memory, then answering."""

REPRODUCE = ("Add a test (next to the related tests, in their style) that fails without your "
             "fix and passes with it, then finish again.")
REFINE_REASONS = {
    "no_change": "the attempt changed nothing",
    "not_run": "the tests could not run with the change",
    "failing": "tests fail with the change",
    "reproduce": "no test shows the fix yet (a test that fails without it is asked for)",
    "preexisting": "only failures that were there before remain (the fix is not shown)",
}
"""Why an attempt goes back to the model (`_refinement`'s situation), as a front end says it."""


def _refine_reason(situation: str, attempt: Attempt) -> str:
    """`REFINE_REASONS` for the situation; "reproduce" covers two cases the person reads
    differently: a passing change no test proves, and failures that were there before."""
    if situation == "reproduce" and attempt.failures():
        return REFINE_REASONS["preexisting"]
    return REFINE_REASONS.get(situation, situation)


NO_CHANGE_REPRODUCE = "Every test passes without a change, so no test shows the issue yet. " + REPRODUCE
ONLY_PREEXISTING = (
    "Your change breaks no test, but no test shows it fixes the issue: the only failures also "
    "failed before your change (pre-existing, listed below; they are not blamed on it). If "
    "one of them is the issue's, it is not fixed yet; if none is, no test covers the issue. "
)
SHOW_THE_FIX = "A test that fails without your fix and passes with it would show the fix."
"""What follows ONLY_PREEXISTING without require_reproduction (REPRODUCE with it)."""


def _no_verdict(tests: TestRun, before: TestRun | None) -> bool:
    """The tests could not run with the change, and could not before it either."""
    return bool(tests.not_run) and (before is None or bool(before.not_run))


def _join(*parts: str) -> str:
    return "\n\n".join(p for p in parts if p)


def _diff(workspace: Workspace, old: str, new: str) -> str:
    return workspace.diff(old, new, "--stat", "-p")[-4000:]


def base_reader(
    git: Callable[..., str], base: str
) -> tuple[Callable[[str], str | None], Callable[[str], str | None]]:
    """(old_text, old_mode) of commit `base` for `review_patch`, read from git objects through
    `git(*args) -> stdout` (a workspace's `Workspace.git`, or the person's repository), never
    from a tree a sandbox wrote."""

    def old_text(path: str) -> str | None:
        try:
            return git("cat-file", "blob", f"{base}:{path}")
        except GitError:
            return None

    def old_mode(path: str) -> str | None:
        entry = git("ls-tree", "-z", base, "--", path).split("\0")[0]
        return entry.split(" ", 1)[0] if entry else None

    return old_text, old_mode


def _diff_paths(diff: str) -> list[str]:
    paths = []
    for line in diff.splitlines():
        if line.startswith("diff --git a/"):
            paths.append(line.split(" b/", 1)[-1])
    return list(dict.fromkeys(paths))


def _touched_tests(diff: str) -> list[str]:
    """The runnable Python test files a patch touches (not test data, nor a typing sample
    that lives under tests/ and was never meant for the test runner)."""
    return [p for p in _diff_paths(diff) if is_runnable_test(p) and p.endswith(".py")]


def _own_failures(attempt: Attempt, failing_before: set[str]) -> set[str]:
    """Failures in the test files the attempt touched that did not fail before it: its own
    tests must pass, but a test that was already failing (for a reason outside the change)
    is not blamed on it just because the patch edits the same file."""
    touched = _touched_tests(attempt.deciding)
    return {f for f in attempt.failures()
            if f.split("::")[0] in touched and f not in failing_before}


def summarize(result: SolveResult) -> dict[str, Any]:
    """The test part of report.json."""

    def counts(run: TestRun | None) -> dict[str, Any] | None:
        if run is None:
            return None
        return {
            "passed": run.passed, "failed": run.failed, "errors": run.errors,
            "exit_code": run.exit_code, "junit": run.junit_found, "not_run": run.not_run or None,
        }

    review = result.best.review if result.best else None
    after = result.best.tests if result.best else None
    verdict = after if after is not None else result.before
    return {
        "before": counts(result.before),
        "after": counts(after),
        "not_run": (verdict.not_run or None) if verdict is not None else None,
        "policy": None if review is None else {
            "dropped": [{"path": d.path, "reason": d.reason} for d in review.dropped],
            "left_out_of_verdict": [{"path": c.path, "reason": c.reason}
                                    for c in review.infrastructure],
        },
        "notes": result.notes,
        "reproduction": (
            None if result.reproduction is None else {
                "tests": result.reproduction.tests,
                "failed_without_fix": result.reproduction.failed_without_fix,
                "passed_with_fix": result.reproduction.passed_with_fix,
            }
        ),
    }
