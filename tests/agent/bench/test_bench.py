"""`evoagent bench` end to end on a real repository built in a tmp dir: tasks mined from its
history by the real miner, the agent driven by a scripted *policy* (its replies depend on the
prompt, so one policy serves every task and every worker process), the real sandbox, and the
kernel's scoring with the hidden tests.

The history: `sub` is fixed (with its test) in one commit and `mul` in the next; a later
commit mentions the `sub` fix again. Memory is mined at HEAD, so the store holds the fix
commits themselves — the agent working at their parents must never see them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from cli_helpers import git, invoke, run_main
from evoagent.agent.bench.run import BenchOptions, run_bench
from evoagent.agent.bench.store import BenchStore
from evoagent.agent.repo_context import RepoContext
from genome_settings import configure_genome
from scratch_pytest import PYTEST

CALC_P = """def add(a, b):
    return a + b


def sub(a, b):
    return b - a


def mul(a, b):
    return a + b
"""
TEST_P = """from calc import add


def test_add():
    assert add(2, 3) == 5
"""
TEST_SUB = TEST_P.replace("from calc import add", "from calc import add, sub") + """

def test_sub():
    assert sub(5, 3) == 2
"""
TEST_MUL = TEST_SUB.replace("add, sub", "add, mul, sub") + """

def test_mul():
    assert mul(3, 4) == 12
"""
SUB_STATEMENT = "Fix sub() returning the reversed difference"
MUL_STATEMENT = "mul() adds instead of multiplying"

# The scripted agent. It reads the task from the first user message: `sub` gets the right
# fix, `mul` a wrong one; with TAMPER set it rewrites the test file instead. With a log
# path it appends every prompt it receives (for the leakage check) and first probes the
# workspace's git and the memory tools for the commit it must not see.
POLICY = '''
import json, os

LOG = {log!r}
TAMPER = {tamper!r}
PROBE = {probe!r}


def call(name, **arguments):
    return {{"tool_calls": [{{"name": name, "arguments": arguments}}]}}


def respond(messages, tools):
    if LOG:
        with open(LOG, "a") as handle:
            handle.write(json.dumps(messages) + "\\n")
    task = next(m["content"] for m in messages if m["role"] == "user")
    step = sum(1 for m in messages if m["role"] == "assistant")
    probes = [
        call("run", command="git log --all --oneline; git cat-file --batch-all-objects --batch-check"),
        call("recall", query="sub reversed difference mul multiplying"),
        call("locate", query="sub reversed difference"),
    ] if PROBE else []
    if step < len(probes):
        return probes[step]
    step -= len(probes)
    if step == 0:
        if TAMPER:
            return call("write", path="tests/test_calc.py", content="def test_nothing():\\n    pass\\n", overwrite=True)
        if "adds instead of multiplying" not in task:  # (the sub fix is history at mul's P)
            edit = {{"path": "calc.py", "search": "return b - a", "replace": "return a - b"}}
        else:
            edit = {{"path": "calc.py", "search": "def mul(a, b):\\n    return a + b",
                     "replace": "def mul(a, b):\\n    return b + a"}}
        return call("edit", edits=[edit])
    return call("finish", summary="done")
'''






def write_policy(path: Path, log: str = "", tamper: bool = False, probe: bool = False) -> str:
    path.write_text(POLICY.format(log=log, tamper=tamper, probe=probe))
    return f"scripted/{path}"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(root / "home"))
        mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
        for key, value in {"GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@example.com",
                           "GIT_COMMITTER_NAME": "C", "GIT_COMMITTER_EMAIL": "c@example.com"
                           }.items():
            mp.setenv(key, value)
        repo = root / "repo"
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        shas = {}

        def commit(message: str, files: dict[str, str]) -> str:
            for name, text in files.items():
                (repo / name).parent.mkdir(parents=True, exist_ok=True)
                (repo / name).write_text(text)
            git(repo, "add", "-A")
            git(repo, "commit", "-qm", message)
            return git(repo, "rev-parse", "HEAD")

        shas["root"] = commit("Add calc", {
            "calc.py": CALC_P, "tests/test_calc.py": TEST_P,
            "pyproject.toml": '[tool.pytest.ini_options]\npythonpath = ["."]\n'})
        calc_sub = CALC_P.replace("return b - a", "return a - b")
        shas["sub"] = commit(SUB_STATEMENT, {"calc.py": calc_sub, "tests/test_calc.py": TEST_SUB})
        calc_mul = calc_sub.replace("def mul(a, b):\n    return a + b", "def mul(a, b):\n    return a * b")
        shas["mul"] = commit(MUL_STATEMENT, {"calc.py": calc_mul, "tests/test_calc.py": TEST_MUL})
        shas["later"] = commit("Docs: the sub reversed difference fix explained",
                               {"NOTES.md": "sub reversed difference, mul multiplying\n"})
        RepoContext.open(repo)  # creates .evoagent/; the test command is set as a user would
        with open(repo / ".evoagent" / "config.toml", "a") as handle:
            handle.write(f"\ntest_command = {json.dumps(PYTEST)}\n")
        # One run a side: telling flaky tests apart is the miner's tests' business.
        mined = invoke(repo, "tasks", "mine", "--json", "--per-test-timeout", "5", "--runs", "1")
        assert mined.exit_code == 0, mined.output
        assert invoke(repo, "mine").exit_code == 0
        # An approved fix made after both tasks' parents: knowledge the agent must not see.
        from evoagent.memory.knowledge import Knowledge

        RepoContext.open(repo).knowledge.add(Knowledge(
            intent="KNOWLEDGECANARY sub returns the reversed difference", solution="swap",
            diff="", files=["calc.py"], approved_by="t", run_id="r", base_sha=shas["later"]))
        configure_genome(repo, refine_attempts=0, require_reproduction="false")
        (repo / "wip.txt").write_text("the user's uncommitted work\n")
        yield {"repo": repo, "shas": shas, "root": root, "mp": mp}


def tasks_by_commit(repo: Path) -> dict[str, str]:
    from evoagent.agent.tasks.store import TaskStore

    return {t.commit: t.id for t in TaskStore(repo / ".evoagent" / "tasks").tasks()}


def bench_json(repo: Path, *args: str) -> dict:
    result = invoke(repo, "bench", "--split", "all", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.fixture(scope="module")
def baseline_run(project):
    model = write_policy(project["root"] / "policy_ok.py", log=str(project["root"] / "ok.jsonl"))
    status_before = git(project["repo"], "status", "--porcelain")
    summary = bench_json(project["repo"], "--model", model, "--predictions",
                         str(project["root"] / "preds.jsonl"))
    assert git(project["repo"], "status", "--porcelain") == status_before
    return summary


def test_right_patch_resolves_and_wrong_patch_does_not(project, baseline_run):
    ids = tasks_by_commit(project["repo"])
    assert set(ids) == {project["shas"]["sub"], project["shas"]["mul"]}
    results = {r["task_id"]: r for r in baseline_run["results"]}
    sub, mul = results[ids[project["shas"]["sub"]]], results[ids[project["shas"]["mul"]]]
    assert sub["resolved"] and sub["fail_to_pass"] == {"tests/test_calc.py::test_sub": "pass"}
    assert sub["pass_to_pass"] == {"tests/test_calc.py::test_add": "pass"}
    assert "return a - b" in sub["patch"]
    assert not mul["resolved"] and mul["reason"].startswith("tests fail")
    assert mul["fail_to_pass"] == {"tests/test_calc.py::test_mul": "fail"}
    assert baseline_run["resolved"] == 1 and baseline_run["done"] == 2
    low, high = baseline_run["ci95"]
    assert 0 < low < 0.5 < high < 1
    assert Path(sub["trajectory"]).is_file()
    preds = [json.loads(line) for line in (project["root"] / "preds.jsonl").read_text().splitlines()]
    assert {p["instance_id"] for p in preds} == set(results)
    assert all(set(p) == {"instance_id", "model_name_or_path", "model_patch"} for p in preds)


def test_a_patch_that_edits_the_hidden_test_is_flagged(project, baseline_run):
    model = write_policy(project["root"] / "policy_tamper.py", tamper=True)
    summary = bench_json(project["repo"], "--model", model)
    assert summary["resolved"] == 0
    assert sorted(summary["tampered"]) == sorted(r["task_id"] for r in summary["results"])
    assert all(r["reason"].startswith("test tampering") for r in summary["results"])
    compare = invoke(project["repo"], "bench", "compare", baseline_run["run_id"],
                     summary["run_id"], "--json")
    paired = json.loads(compare.output)
    assert len(paired["only_a"]) == 1 and paired["only_b"] == [] and paired["shared"] == 2
    assert paired["p_value"] == 1.0  # one discordant pair proves nothing


def test_the_agent_never_sees_the_commit_it_must_reproduce(project, baseline_run):
    """The store holds the fix commit C (mined at HEAD); working at P, neither the workspace's
    git, nor recall, locate, the evidence in the prompt, nor knowledge may surface it."""
    repo, shas = project["repo"], project["shas"]
    log = project["root"] / "prompts.jsonl"
    ids = tasks_by_commit(repo)
    model = write_policy(project["root"] / "policy_log.py", log=str(log), probe=True)
    summary = bench_json(repo, "--model", model, "--ids", ids[shas["sub"]])
    assert summary["done"] == 1
    seen = log.read_text()
    # the probes ran and returned something (the checks below are not vacuous)
    assert "batch-all-objects" in seen and '"role": "tool"' in seen
    # code at P is visible to the agent ...
    assert "return b - a" in seen
    for later in ("sub", "mul", "later"):
        assert shas[later] not in seen and shas[later][:7] not in seen
    assert "the sub reversed difference fix explained" not in seen
    assert SUB_STATEMENT in seen  # as the task itself, and nowhere as history:
    assert "KNOWLEDGECANARY" not in seen
    # ... while the store does hold both, for a query at HEAD (the checks above can fail)
    at_head = invoke(repo, "recall", "sub reversed difference", "--json").output
    assert shas["sub"] in at_head and "KNOWLEDGECANARY" in at_head


def test_interrupted_run_resumes_without_duplicates(project, baseline_run):
    model = write_policy(project["root"] / "policy_resume.py")
    ctx = RepoContext.open(project["repo"])

    def stop_after_first(run, result, done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_bench(ctx, BenchOptions(split=None, model=model), stop_after_first)
    store = BenchStore(project["repo"] / ".evoagent" / "bench")
    run = store.latest()
    assert len(run.results()) == 1
    summary = bench_json(project["repo"], "--resume", run.id)
    assert summary["run_id"] == run.id and summary["done"] == 2
    lines = run.results_file.read_text().splitlines()
    assert len(lines) == 2 and len({json.loads(x)["task_id"] for x in lines}) == 2
    assert summary["resolved"] == baseline_run["resolved"]


def test_swebench_export_scores_the_same(project, baseline_run):
    exported = project["root"] / "instances.jsonl"
    assert invoke(project["repo"], "tasks", "export", str(exported)).exit_code == 0
    model = write_policy(project["root"] / "policy_swe.py")
    summary = bench_json(project["repo"], "--model", model, "--swebench", str(exported))
    got = {r["task_id"]: r["resolved"] for r in summary["results"]}
    assert got == {r["task_id"]: r["resolved"] for r in baseline_run["results"]}


def _comparable(summary: dict) -> dict:
    from evoagent.agent.bench.job import TaskResult

    return {r["task_id"]: TaskResult.from_json(r).comparable() for r in summary["results"]}


def test_a_local_pool_and_a_ray_cluster_agree_with_one_process(project, baseline_run):
    pytest.importorskip("ray")
    log = project["root"] / "pooled.jsonl"
    model = write_policy(project["root"] / "policy_pooled.py", log=str(log))
    pooled = bench_json(project["repo"], "--model", model, "--jobs", "2")
    first = sorted(json.dumps(m) for m in (project["root"] / "ok.jsonl").read_text().splitlines())
    assert sorted(json.dumps(m) for m in log.read_text().splitlines()) == first
    assert _comparable(pooled) == _comparable(baseline_run)
    import ray

    try:
        on_ray = bench_json(project["repo"], "--model", model, "--jobs", "2", "--executor", "ray")
    finally:
        ray.shutdown()
    assert _comparable(on_ray) == _comparable(baseline_run)


def test_ray_executor_without_ray_says_how_to_install(project, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    model = write_policy(project["root"] / "policy_ok.py")
    code, _, err = run_main(project["repo"], monkeypatch, capsys, "bench", "--model", model,
                            "--split", "all", "--executor", "ray")
    assert code == 2
    assert "pip install 'evoagent[ray]'" in err


FAILING_POLICY = '''
import litellm


def respond(messages, tools):
    task = next(m["content"] for m in messages if m["role"] == "user")
    if "reversed difference" not in task or any(m["role"] == "assistant" for m in messages):
        # The provider fails for good (not retried) before the agent could call finish.
        raise litellm.BadRequestError(message="provider down", model="scripted",
                                      llm_provider="scripted")
    return {"tool_calls": [{"name": "edit", "arguments": {"edits": [
        {"path": "calc.py", "search": "return b - a", "replace": "return a - b"}]}}]}
'''


def test_a_model_failure_mid_run_still_scores_the_patch_made_so_far(project, baseline_run):
    policy = project["root"] / "policy_fails.py"
    policy.write_text(FAILING_POLICY)
    summary = bench_json(project["repo"], "--model", f"scripted/{policy}")
    ids = tasks_by_commit(project["repo"])
    results = {r["task_id"]: r for r in summary["results"]}
    sub, mul = results[ids[project["shas"]["sub"]]], results[ids[project["shas"]["mul"]]]
    # The edit made before the failure is the run's best attempt: scored, and it resolves.
    assert sub["status"] == "error" and "provider down" in sub["error"]
    assert sub["resolved"] and "return a - b" in sub["patch"]
    assert not mul["resolved"] and mul["patch"] == "" and "provider down" in mul["reason"]
