"""Gold-patch benchmark: on real src-layout projects, every mined task's own gold patch, made
by a scripted model through the agent's write/edit tools, must end `fixed`; a model that
finishes at once without a change must end `not_fixed`.

    .venv/bin/python bench/bench_gold.py --work DIR [--repo PATH ...] [--last [NAME=]N ...]
        [--runs 3] [--max-tasks [NAME=]K ...] [--no-independent]

`--last` and `--max-tasks` take one figure for every project or `NAME=N` for one (the
clone's directory name: flask, click, itsdangerous); both repeat.

For each project (by default pallets/flask, pallets/click and pallets/itsdangerous from the
local mirrors under /work/.mirror; `--repo PATH`, repeatable, names other checkouts instead)
the benchmark makes its own clone under `--work` with its own venv
(`python -m venv .venv && .venv/bin/pip install -e . pytest` plus the project's test
requirements: `[dependency-groups] tests` of pyproject.toml, or requirements/tests.txt;
pinned to the project's uv.lock where it has one).
A person's checkout is only cloned from, never changed. A clone and venv already under
`--work` from an earlier run are reused. Then:

1. `evoagent tasks mine --last N --runs R --json` in the clone (its task store emptied
   first, so every candidate is validated and timed afresh);
2. an independent SWE-bench-style validation of the same candidates (bench_tasks.py's:
   plain checkout, `pytest -rA` on the touched test files at P + test part and at C, the log
   parser), compared task by task: same tasks, same FAIL_TO_PASS and PASS_TO_PASS (flaky
   tests, which the miner lists and leaves out, excluded from the independent sets too);
3. for each task, in the clone checked out at its base commit P (so the editable install
   sees P), `evoagent fix` with `scripted/<policy>.py`:
   - gold: the policy makes the task's gold patch (code part and test part) as the agent's
     own edits (`edit` blocks where each block is unique, `write` for new files and
     otherwise, `run rm` for deleted files), then calls `finish`; it must end `fixed`,
     exit 0, on its first attempt, whenever the task's tests are deterministic (no flaky
     test) and the patch policy decides on all of it. A gold patch with sections the
     policy leaves out of the verdict (agent/patch_policy.py's `review_patch` with the
     clone's live genome policy: test infrastructure such as conftest.py or pytest's
     configuration, or a section it drops) "needs a test-infrastructure change": its deciding
     run lacks that change by design, so the task is run and its status shown in a column
     of its own, never counted as a failure of the gold check;
   - no-op: the policy calls `finish` at once, every time; it must end `not_fixed`, exit 1,
     with an empty patch, every refinement prompt saying it finished without a change.
   The clone goes back to its branch after each run (`git checkout -f`, `git clean -fdq`
   keeping .venv and .evoagent).

Prints a table per project and exits 1 when a deterministic task's gold run does not end
`fixed` (test-infrastructure tasks aside) or a no-op run does not end `not_fixed`, saying why
(report.json's status, tests and error, and the refinement prompts the policy was sent).
Stopped by SIGTERM or SIGINT (`timeout`), it prints the table of what it finished first.
Figures only; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

MIRRORS = Path("/work/.mirror")
DEFAULT_PROJECTS = ("pallets+flask", "pallets+click", "pallets+itsdangerous")
DEFAULT_LAST = {"flask": 300, "click": 50, "itsdangerous": 300}
"""Commits mined per project, each in a few minutes on a loaded 2-core machine (flask's
newest 120 hold no task; click's 120 took over 10 minutes, half of its commits being tasks)."""
NO_CHANGE = "You finished without a change"
"""How the refine prompt (.agent-template/prompts/refine.j2) opens for situation no_change."""
KEEP = ("-e", ".venv", "-e", ".evoagent")
"""What `git clean` leaves in a clone: its venv and evoagent's state."""

LEGEND = """(*) A task whose gold patch has sections the patch policy leaves out of the verdict (test
    infrastructure: conftest.py, pytest's configuration, ...; or dropped sections) needs a
    test-infrastructure change: the deciding run lacks it by design, so its gold run is
    expected not to end `fixed`. Its status is shown here; it is not counted in "gold fixed /
    deterministic" and is not a failure. Its no-op run is checked like any other."""

POLICY_SOURCE = '''"""bench_gold policy: replays the plan beside this file, one tool call per reply, then
finishes; answers every refinement prompt with `finish` and logs it beside this file."""
import json
from pathlib import Path

HERE = Path(__file__)


def _get(message, key):
    return message.get(key) if isinstance(message, dict) else getattr(message, key, None)


def respond(messages, tools):
    plan = json.loads(HERE.with_suffix(".json").read_text())
    users = [m for m in messages if _get(m, "role") == "user"]
    if len(users) > 1:  # sent back by the kernel: the plan is done, so is this policy
        if _get(messages[-1], "role") == "user":
            with HERE.with_suffix(".refine.jsonl").open("a") as log:
                log.write(json.dumps({"prompt": str(_get(messages[-1], "content"))}) + "\\n")
        return {"tool_calls": [{"name": "finish", "arguments": {"summary": plan["summary"]}}]}
    done = sum(1 for m in messages if _get(m, "role") == "assistant")
    calls = plan["calls"]
    if done < len(calls):
        return {"text": "", "tool_calls": [calls[done]]}
    return {"tool_calls": [{"name": "finish", "arguments": {"summary": plan["summary"]}}]}
'''


# ---------------------------------------------------------------------------------------
# Projects: a clone with its own venv.


@dataclass
class Project:
    name: str
    source: Path
    clone: Path
    branch: str = ""
    setup_seconds: float = 0.0

    @property
    def python(self) -> Path:
        return self.clone / ".venv" / "bin" / "python"


def run(argv: list[str], cwd: Path | None = None, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    return subprocess.run(argv, cwd=cwd, check=False, **kwargs)


def git(repo: Path, *args: str) -> str:
    proc = run(["git", "-C", str(repo), *args])
    if proc.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} in {repo}: {proc.stderr.strip()[:200]}")
    return proc.stdout


def clean_env() -> dict[str, str]:
    """The environment for the project's own tools: nothing of this venv's."""
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTEST_ADDOPTS", "PYTHONHOME")
    return {k: v for k, v in os.environ.items() if k not in drop}


def test_requirements(clone: Path) -> list[str]:
    """The project's test requirements: `[dependency-groups] tests` (plain strings; an
    include-group is followed once), else `-r requirements/tests.txt`."""
    pyproject = clone / "pyproject.toml"
    groups = {}
    if pyproject.is_file():
        groups = tomllib.loads(pyproject.read_text()).get("dependency-groups", {})
    found: list[str] = []
    for item in groups.get("tests", []):
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, dict) and "include-group" in item:
            found += [i for i in groups.get(item["include-group"], []) if isinstance(i, str)]
    if found:
        return found
    for name in ("requirements/tests.txt", "requirements/test.txt", "requirements-test.txt"):
        if (clone / name).is_file():
            return ["-r", name]
    return []


def locked(clone: Path, requirements: list[str]) -> list[str]:
    """`requirements` pinned to the versions the project's uv.lock holds: the newest pytest
    breaks tests the project never ran on it (pytest 9.2 removed
    `_pytest.monkeypatch.notset`, which flask's conftest imports), and then every candidate
    is an environment error instead of a task."""
    lock = clone / "uv.lock"
    if not lock.is_file():
        return requirements
    versions = {p["name"]: p["version"] for p in tomllib.loads(lock.read_text()).get("package", [])
                if "name" in p and "version" in p}
    out = []
    for requirement in requirements:
        name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower()
        out.append(f"{name}=={versions[name]}" if name in versions else requirement)
    return list(dict.fromkeys(out))


def prepare(source: Path, work: Path) -> Project:
    """A clone of `source` under `work` with its venv (reused when already made)."""
    name = source.resolve().name
    if name == "repo" and "+" in source.resolve().parent.name:  # /work/.mirror/owner+name/repo
        name = source.resolve().parent.name.split("+", 1)[1]
    project = Project(name, source, work / name)
    started = time.monotonic()
    ready = project.clone / ".venv" / ".bench-gold-ready"
    if not (project.clone / ".git").is_dir():
        proc = run(["git", "clone", "-q", str(source), str(project.clone)])
        if proc.returncode != 0:
            raise SystemExit(f"cannot clone {source}: {proc.stderr.strip()[:200]}")
    # The clone's venv and evoagent's state are never part of a task's tree.
    exclude = project.clone / ".git" / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    if not exclude.exists() or ".evoagent/" not in exclude.read_text():
        with exclude.open("a") as f:
            f.write("\n.venv/\n.evoagent/\n")
    project.branch = git(project.clone, "symbolic-ref", "--short", "HEAD").strip()
    restore(project)
    requirements = locked(project.clone, ["pytest", *test_requirements(project.clone)])
    if not ready.exists() or ready.read_text() != " ".join(requirements):
        python = os.environ.get("BENCH_GOLD_PYTHON", "python3")
        steps = [
            [python, "-m", "venv", ".venv"],
            [".venv/bin/pip", "install", "-q", "-e", ".", *requirements],
        ]
        for argv in steps:
            proc = run(argv, cwd=project.clone, env=clean_env())
            if proc.returncode != 0:
                raise SystemExit(
                    f"{name}: {' '.join(argv)} failed: {proc.stderr.strip()[-400:]}"
                )
        ready.write_text(" ".join(requirements))
    project.setup_seconds = time.monotonic() - started
    return project


def restore(project: Project) -> None:
    """The clone back on its branch, nothing left over but its venv and evoagent's state."""
    git(project.clone, "checkout", "-qf", project.branch)
    git(project.clone, "clean", "-fdq", *KEEP)


def evoagent_argv() -> list[str]:
    found = Path(sys.executable).parent / "evoagent"
    return [str(found)] if found.exists() else [sys.executable, "-m", "evoagent"]


# ---------------------------------------------------------------------------------------
# Mining and the independent validation.


@dataclass
class Mined:
    report: dict
    tasks: list  # evoagent.agent.tasks.store.Task
    rejects: list  # Reject
    wall: float


def mine(project: Project, last: int, runs: int) -> Mined:
    from evoagent.agent.tasks.store import TaskStore

    store = project.clone / ".evoagent" / "tasks"
    if store.is_dir():  # the bench's own clone: validate every candidate afresh
        for child in store.iterdir():
            child.unlink()
    started = time.monotonic()
    proc = run(
        [*evoagent_argv(), "tasks", "mine", "--last", str(last), "--runs", str(runs), "--json"],
        cwd=project.clone,
        env=clean_env(),
    )
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"{project.name}: tasks mine exit {proc.returncode}: "
                         f"{proc.stderr.strip()[-400:]}")
    report = json.loads(proc.stdout)
    found = TaskStore(store)
    return Mined(report, found.tasks(), found.rejects(), wall)


@dataclass
class Agreement:
    validated: int = 0
    """Candidates both sides validated (the independent side could run them)."""
    seconds: float = 0.0
    both: int = 0
    only_miner: list[str] = field(default_factory=list)
    only_independent: list[str] = field(default_factory=list)
    f2p_same: int = 0
    p2p_same: int = 0
    notes: list[str] = field(default_factory=list)


def independent(project: Project, mined: Mined, last: int, timeout: float) -> Agreement:
    """bench_tasks.py's SWE-bench-style validation of every candidate the miner validated,
    compared with the miner's verdicts (flaky tests left out of both)."""
    from bench_tasks import _p2p_reason, difference_reason, independent_validation
    from evoagent.agent.tasks.candidates import Candidate, classify, first_parent_history

    validated = {t.commit for t in mined.tasks} | {
        r.commit for r in mined.rejects
        if r.stage == "validate" and r.reason != "patch does not apply"
    }
    commits = {c.sha: c for c in first_parent_history(project.clone, last, None)}
    pairs = []
    for sha in validated:
        if sha in commits:
            candidate = classify(project.clone, commits[sha])
            if isinstance(candidate, Candidate):
                pairs.append((candidate.commit.parent or "", sha))
    results = independent_validation(project.clone, pairs, project.python, timeout)
    out = Agreement()
    tasks = {t.commit: t for t in mined.tasks}
    ran = {sha: ind for sha, ind in results.items() if not ind.problem}
    out.validated = len(ran)
    out.seconds = sum(ind.seconds for ind in ran.values())
    for sha, ind in results.items():
        if ind.problem:
            out.notes.append(f"not validated independently {sha[:10]}: {ind.problem}")
    for sha, ind in ran.items():
        flaky = set(tasks[sha].flaky) if sha in tasks else set()
        f2p = set(ind.fail_to_pass) - flaky
        if sha in tasks and f2p:
            out.both += 1
            task = tasks[sha]
            if set(task.fail_to_pass) == f2p:
                out.f2p_same += 1
            else:
                out.notes.append(f"F2P differs {sha[:10]}: {difference_reason(task, ind)}")
            mine_p2p, other = set(task.pass_to_pass), set(ind.pass_to_pass) - flaky
            if mine_p2p == other:
                out.p2p_same += 1
            else:
                reason = _p2p_reason(task, ind, mine_p2p - other, other - mine_p2p)
                out.notes.append(f"P2P differs {sha[:10]}: {reason}")
        elif sha in tasks:
            out.only_miner.append(sha)
            out.notes.append(f"miner only {sha[:10]}: F2P {tasks[sha].fail_to_pass[:2]}")
        elif f2p:
            out.only_independent.append(sha)
            reason = next((r.reason for r in mined.rejects if r.commit == sha), "?")
            out.notes.append(
                f"independent only {sha[:10]}: miner rejected ({reason}); F2P {sorted(f2p)[:2]}"
            )
    return out


# ---------------------------------------------------------------------------------------
# The gold patch as the agent's own tool calls.


def edit_blocks(old: str, new: str) -> list[tuple[str, str]] | None:
    """Search/replace blocks that turn `old` into `new` when applied in order, each search
    text found exactly once at its turn (as the edit tool requires); None when that cannot
    be had (then the file is written whole)."""
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    blocks = []
    for group in matcher.get_grouped_opcodes(2):
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        blocks.append(("".join(a[i1:i2]), "".join(b[j1:j2])))
    text = old
    for search, replace in blocks:
        if not search.strip() or text.count(search) != 1:
            return None
        text = text.replace(search, replace, 1)
    return blocks if text == new else None


def gold_calls(repo: Path, base: str, commit: str, paths: list[str]) -> list[dict] | str:
    """The tool calls that make C's version of `paths` from P's, or why they cannot be made
    with the agent's tools (a binary or non-UTF-8 file)."""

    def content(rev: str, path: str) -> str | None:
        proc = subprocess.run(["git", "-C", str(repo), "show", f"{rev}:{path}"],
                              capture_output=True, check=False)
        if proc.returncode != 0:
            return None
        if b"\0" in proc.stdout:
            raise ValueError(f"{path} is binary")
        return proc.stdout.decode("utf-8")

    calls: list[dict] = []
    try:
        for path in paths:
            old, new = content(base, path), content(commit, path)
            if new is None:
                calls.append({"name": "run", "arguments": {"command": f"rm -f -- {shlex.quote(path)}"}})
            elif old is None:
                calls.append({"name": "write", "arguments": {"path": path, "content": new}})
            elif old != new:
                blocks = edit_blocks(old, new)
                if blocks is None:
                    calls.append({"name": "write",
                                  "arguments": {"path": path, "content": new, "overwrite": True}})
                else:
                    edits = [{"path": path, "search": s, "replace": r} for s, r in blocks]
                    calls.append({"name": "edit", "arguments": {"edits": edits}})
    except (ValueError, UnicodeDecodeError) as exc:
        return f"the gold patch cannot be typed in: {exc}"
    return calls


def patch_paths(patch: str) -> list[str]:
    from evoagent.agent.tasks.patch_split import file_sections

    return [section.path for section in file_sections(patch)]


def live_policy(project: Project):
    """The patch policy `evoagent fix` in the clone decides with: its live genome's
    (`.evoagent/agent`, made from the template the way the first fix makes it)."""
    from evoagent.agent.genome import Genome, init_genome

    path = project.clone / ".evoagent" / "agent"
    init_genome(path)
    return Genome.load(path).policy


def left_out_of_verdict(project: Project, task, gold_files: list[str], policy) -> list[str]:
    """The gold patch's sections the patch policy keeps out of the deciding run (test
    infrastructure) or out of the patch (dropped), each "path: reason"; empty when all of it
    decides. The patch is the one the agent's workspace would show for the gold edits: `git
    diff` P..C on the gold files, judged against P's files from git objects, as solve.py's
    `review` does."""
    from evoagent.agent.patch_policy import review_patch
    from evoagent.agent.solve import base_reader

    diff = git(project.clone, "diff", "--binary", "--no-color", "--no-ext-diff", "--no-textconv",
               "--src-prefix=a/", "--dst-prefix=b/", task.base_commit, task.commit,
               "--", *gold_files)

    def read(*args: str) -> str:
        from evoagent.sandbox.workspace import GitError

        proc = run(["git", "-C", str(project.clone), *args])
        if proc.returncode != 0:
            raise GitError(proc.stderr.strip()[:200])
        return proc.stdout

    review = review_patch(diff, policy, *base_reader(read, task.base_commit))
    return [str(c) for c in review.infrastructure] + [f"{d} (dropped)" for d in review.dropped]


# ---------------------------------------------------------------------------------------
# The fix runs.


@dataclass
class FixRun:
    kind: str
    exit_code: int
    status: str
    report: dict
    refine_prompts: list[str]
    tool_errors: list[str]
    patch_files: list[str]
    seconds: float
    run_dir: Path | None
    stderr: str = ""

    def why(self) -> str:
        tests = self.report.get("tests") or {}
        after, before = tests.get("after") or {}, tests.get("before") or {}
        parts = [
            f"exit {self.exit_code}, status {self.status}",
            f"attempts {self.report.get('attempts')}",
            f"before: {len(before.get('passed') or [])} passed,"
            f" failed {(before.get('failed') or [])[:3]}, errors {(before.get('errors') or [])[:3]}",
            f"after: {len(after.get('passed') or [])} passed,"
            f" failed {(after.get('failed') or [])[:3]}, errors {(after.get('errors') or [])[:3]}",
        ]
        for key in ("error", "budget", "stopped"):
            if self.report.get(key):
                parts.append(f"{key}: {self.report[key]}")
        if tests.get("not_run"):
            parts.append(f"not run: {tests['not_run']}")
        if tests.get("reproduction"):
            parts.append(f"reproduction: {tests['reproduction']}")
        if (tests.get("policy") or {}).get("left_out_of_verdict"):
            parts.append(f"left out of verdict: {tests['policy']['left_out_of_verdict']}")
        if tests.get("notes"):
            parts.append(f"notes: {tests['notes']}")
        if self.tool_errors:
            parts.append(f"tool errors: {self.tool_errors[:3]}")
        if self.refine_prompts:
            parts.append(f"first refinement: {self.refine_prompts[0][:300]!r}")
        if self.run_dir:
            parts.append(f"run {self.run_dir}")
        if not self.report and self.stderr:
            parts.append(f"stderr: {self.stderr[-300:]}")
        return "; ".join(parts)


def fix_run(project: Project, task, kind: str, calls: list[dict], scratch: Path) -> FixRun:
    """`evoagent fix` on the task's statement at its base commit, with the policy `kind`."""
    from evoagent.agent.terminal_text import one_line

    scratch.mkdir(parents=True, exist_ok=True)
    policy = scratch / f"{kind}.py"
    policy.write_text(POLICY_SOURCE)
    summary = "gold patch applied" if calls else "nothing to change"
    policy.with_suffix(".json").write_text(json.dumps({"calls": calls, "summary": summary}))
    log = policy.with_suffix(".refine.jsonl")
    log.unlink(missing_ok=True)
    git(project.clone, "checkout", "-qf", task.base_commit)
    git(project.clone, "clean", "-fdq", *KEEP)
    started = time.monotonic()
    try:
        proc = run(
            [*evoagent_argv(), "fix", "-", "--model", f"scripted/{policy}",
             "--output-format", "json"],
            cwd=project.clone, env=clean_env(), input=task.problem_statement,
        )
    finally:
        seconds = time.monotonic() - started
        restore(project)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        report = {}
    run_dir = None
    if report.get("run_id"):
        run_dir = project.clone / ".evoagent" / "runs" / report["run_id"]
        if (run_dir / "report.json").is_file():
            report = json.loads((run_dir / "report.json").read_text())
    prompts = [json.loads(line)["prompt"] for line in log.read_text().splitlines()] \
        if log.exists() else []
    tool_errors, patch_files = [], []
    if run_dir and (run_dir / "trajectory.jsonl").is_file():
        for line in (run_dir / "trajectory.jsonl").read_text().splitlines():
            event = json.loads(line)
            if event.get("type") == "tool_result" and not event.get("ok", True):
                tool_errors.append(one_line(str(event.get("output", "")))[:160])
    if run_dir and (run_dir / "patch.diff").is_file():
        patch_files = patch_paths((run_dir / "patch.diff").read_text())
    return FixRun(kind, proc.returncode, str(report.get("status", "?")), report, prompts,
                  tool_errors, patch_files, seconds, run_dir, one_line(proc.stderr[-600:]))


def gold_problem(result: FixRun, gold_files: list[str]) -> str:
    if result.exit_code != 0 or result.status != "fixed":
        return "gold did not end fixed"
    if result.report.get("attempts") != 1:
        return f"gold needed {result.report.get('attempts')} attempts"
    if sorted(result.patch_files) != sorted(gold_files):
        return f"patch files {result.patch_files} differ from the gold patch's {gold_files}"
    return ""


def noop_problem(result: FixRun) -> str:
    if result.exit_code != 1 or result.status != "not_fixed":
        return "no-op did not end not_fixed"
    if result.patch_files:
        return f"no-op left a patch: {result.patch_files}"
    if result.report.get("summary") != "nothing to change" or result.report.get("error"):
        return "no-op report's summary or error is not the policy's"
    if not result.refine_prompts:
        return "no-op was never sent back"
    if not all(p.startswith(NO_CHANGE) for p in result.refine_prompts):
        return f"a refinement prompt is not {NO_CHANGE!r}"
    if result.report.get("attempts") != len(result.refine_prompts) + 1:
        return (f"report attempts {result.report.get('attempts')} vs "
                f"{len(result.refine_prompts)} refinement prompts + 1")
    return ""


# ---------------------------------------------------------------------------------------


@dataclass
class Figures:
    project: Project
    last: int
    mined: Mined
    agreement: Agreement | None
    deterministic: int = 0
    """Tasks the gold check counts: no flaky test, no section left out of the verdict."""
    gold_fixed: int = 0
    infrastructure: list[str] = field(default_factory=list)
    """Gold statuses of the tasks that need a test-infrastructure change (not counted)."""
    noop_ok: int = 0
    tasks_run: int = 0
    gold_seconds: float = 0.0
    noop_seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def bench_project(project: Project, args, last: int, work: Path,
                  done: list[Figures]) -> None:
    """Mine, validate independently and run fix on `project`, its Figures appended to `done`
    as soon as mining is over and filled in as runs finish (so a stop still shows them)."""
    print(f"== {project.name}: mining the newest {last} commits", flush=True)
    mined = mine(project, last, args.runs)
    figures = Figures(project, last, mined, None)
    done.append(figures)
    print(f"   {mined.report['candidates']} candidates, {len(mined.tasks)} tasks in"
          f" {mined.wall:.0f}s", flush=True)
    if not args.no_independent:
        figures.agreement = independent(project, mined, last, args.run_timeout)
        print(f"   independent validation: {figures.agreement.validated} candidates in"
              f" {figures.agreement.seconds:.0f}s", flush=True)
    most = per_project(args.max_tasks, project.name, 0)
    tasks = mined.tasks[:most] if most else mined.tasks
    policy = live_policy(project)
    for task in tasks:
        gold_files = patch_paths(task.patch) + patch_paths(task.test_patch)
        calls = gold_calls(project.clone, task.base_commit, task.commit, gold_files)
        label = f"{task.id} ({task.commit[:10]})"
        if isinstance(calls, str):
            figures.notes.append(f"{label}: skipped, {calls}")
            continue
        left_out = left_out_of_verdict(project, task, gold_files, policy)
        scratch = work / "policies" / project.name / task.id
        gold = fix_run(project, task, "gold", calls, scratch)
        noop = fix_run(project, task, "noop", [], scratch)
        figures.tasks_run += 1
        figures.gold_seconds += gold.seconds
        figures.noop_seconds += noop.seconds
        problem = gold_problem(gold, gold_files)
        if left_out:
            # Expected not to be fixed: the deciding run lacks the change its tests need.
            figures.infrastructure.append(gold.status)
            figures.notes.append(
                f"{label} needs a test-infrastructure change (left out of the verdict:"
                f" {'; '.join(left_out)}): gold {gold.status}"
                + (f" ({problem}), run {gold.run_dir}" if problem else ", fixed without it")
            )
        elif task.flaky:
            if problem:
                figures.notes.append(f"{label} gold (flaky {task.flaky[:2]}): {problem}")
        else:
            figures.deterministic += 1
            figures.gold_fixed += not problem
            if problem:
                figures.failures.append(f"{label} gold: {problem}: {gold.why()}")
        problem = noop_problem(noop)
        figures.noop_ok += not problem
        if problem:
            figures.failures.append(f"{label} no-op: {problem}: {noop.why()}")
        infra = " [needs test-infrastructure change]" if left_out else ""
        print(f"   {label}: gold {gold.status} ({gold.seconds:.0f}s){infra},"
              f" no-op {noop.status} ({noop.seconds:.0f}s)", flush=True)


def print_table(all_figures: list[Figures]) -> None:
    from evoagent.agent.terminal_text import one_line

    print()
    for f in all_figures:
        m, a = f.mined, f.agreement
        candidates = m.report["candidates"]
        print(f"{f.project.name} (newest {f.last} commits; setup {f.project.setup_seconds:.0f}s)")
        rows = [("candidates", str(candidates))]
        if a is not None:
            rows += [
                ("tasks evoagent / independent",
                 f"{len(m.tasks)} / {a.both + len(a.only_independent)}"
                 f"  (both {a.both}, evoagent only {len(a.only_miner)},"
                 f" independent only {len(a.only_independent)})"),
                ("F2P identical", f"{a.f2p_same} of {a.both}"),
                ("P2P identical", f"{a.p2p_same} of {a.both}"),
            ]
        else:
            rows.append(("tasks evoagent", str(len(m.tasks))))
        flaky = f.tasks_run - f.deterministic - len(f.infrastructure)
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(Counter(f.infrastructure).items()))
        rows += [
            ("fix runs", f"{f.tasks_run} tasks of {len(m.tasks)}"),
            ("gold fixed / deterministic", f"{f.gold_fixed} / {f.deterministic}"
             f"  ({flaky} with flaky tests)"),
            ("needs test-infra change (*)", f"{len(f.infrastructure)}"
             + (f"  (gold: {statuses})" if statuses else "")),
            ("no-op not_fixed", f"{f.noop_ok} / {f.tasks_run}"),
        ]
        per = m.report.get("seconds_per_candidate")
        seconds = f"evoagent {per if per is not None else '-'}"
        if a is not None and a.validated:
            seconds += f", independent {a.seconds / a.validated:.2f} ({a.validated} candidates)"
        rows.append(("s / candidate", seconds + f"  (mining wall {m.wall:.0f}s,"
                     f" runs per side up to {m.report.get('test_runs') or '-'})"))
        if f.tasks_run:
            rows.append(("s / fix run", f"gold {f.gold_seconds / f.tasks_run:.1f},"
                         f" no-op {f.noop_seconds / f.tasks_run:.1f}"))
        for label, value in rows:
            print(f"  {label:<30}{value}")
        for note in (a.notes if a else []) + f.notes:
            print(f"  note: {one_line(note)[:300]}")
        for failure in f.failures:
            print(f"  FAIL: {one_line(failure)[:1500]}")
        print()
    print(LEGEND)


class Stopped(Exception):
    """SIGTERM (from `timeout`): stop, print what was finished."""


def _stop(signum, frame) -> None:
    signal.signal(signum, signal.SIG_IGN)  # a second one must not cut the table short
    raise Stopped(signal.Signals(signum).name)


def figure_for(text: str) -> tuple[str, int]:
    """`N` (every project, name "") or `NAME=N` (one project)."""
    name, _, value = text.rpartition("=")
    try:
        figure = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not N or NAME=N: {text!r}") from None
    if figure < 0:
        raise argparse.ArgumentTypeError(f"negative: {text!r}")
    return name, figure


def per_project(figures: list[tuple[str, int]], name: str, default: int) -> int:
    """The figure given for project `name`, else the one for every project, else `default`;
    the last one given wins."""
    found = {n: f for n, f in figures}
    return found.get(name, found.get("", default))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, required=True,
                        help="Scratch directory for the clones, venvs and policies.")
    parser.add_argument("--repo", type=Path, action="append",
                        help="A checkout (or bare repository) to clone; repeatable. Default: "
                        + ", ".join(DEFAULT_PROJECTS) + " from " + str(MIRRORS))
    parser.add_argument("--last", type=figure_for, action="append", default=[],
                        help="Commits to mine: N for every project or NAME=N for one; "
                        "repeatable (default: per project, "
                        + ", ".join(f"{k} {v}" for k, v in DEFAULT_LAST.items())
                        + "; 150 otherwise).")
    parser.add_argument("--runs", type=int, default=3, help="`tasks mine --runs`.")
    parser.add_argument("--max-tasks", type=figure_for, action="append", default=[],
                        help="Run fix on at most K tasks: K for every project or NAME=K for "
                        "one; repeatable (default: all; 0 is all).")
    parser.add_argument("--run-timeout", type=float, default=900.0,
                        help="Seconds per independent pytest run.")
    parser.add_argument("--no-independent", action="store_true",
                        help="Skip the independent SWE-bench-style validation.")
    args = parser.parse_args()
    sources = args.repo or [MIRRORS / name / "repo" for name in DEFAULT_PROJECTS]
    missing = [str(s) for s in sources if not s.exists()]
    if missing:
        raise SystemExit(f"no such repository: {', '.join(missing)}")
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    all_figures: list[Figures] = []
    signal.signal(signal.SIGTERM, _stop)
    try:
        for source in sources:
            project = prepare(source, work)
            last = per_project(args.last, project.name, DEFAULT_LAST.get(project.name, 150))
            bench_project(project, args, last, work, all_figures)
    except (Stopped, KeyboardInterrupt) as exc:
        print_table(all_figures)
        raise SystemExit(f"stopped ({exc or 'interrupted'}) after"
                         f" {time.monotonic() - started:.0f}s: the figures above are partial"
                         ) from None
    print_table(all_figures)
    print(f"total {time.monotonic() - started:.0f}s")
    failures = sum(len(f.failures) for f in all_figures)
    if failures:
        raise SystemExit(f"{failures} run(s) did not end as they must (FAIL lines above)")


if __name__ == "__main__":
    main()
