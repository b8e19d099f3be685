"""approve and knowledge list|show|retract|supersede|path end to end, on real repos, real
run folders (as `fix` writes them) and a real store; plus how recall and locate surface it.

Successful runs go through CliRunner on `cli`; error paths through `main()`, which turns
user errors into one line and exit code 2.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from evoagent.agent import knowledge_capture as capture
from evoagent.agent.cli import cli, main

BILLING = """\
class InvoiceCalculator:
    def total(self, lines):
        return round(sum(lines), 1)
"""
PATCH = """\
diff --git a/shop/billing.py b/shop/billing.py
--- a/shop/billing.py
+++ b/shop/billing.py
@@ -1,3 +1,3 @@
 class InvoiceCalculator:
     def total(self, lines):
-        return round(sum(lines), 1)
+        return round(sum(lines), 2)
diff --git a/tests/test_billing.py b/tests/test_billing.py
new file mode 100644
--- /dev/null
+++ b/tests/test_billing.py
@@ -0,0 +1,2 @@
+def test_total():
+    assert True
"""
ISSUE = "Invoice totals are rounded to one decimal place\n\nCustomers see 10.1 instead of 10.05."


def invoke(repo_path: Path, monkeypatch, *args: str):
    monkeypatch.chdir(repo_path)
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def js(result) -> object:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def run_main(cwd: Path, monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["evoagent", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def write_run(repo, run_id: str, status: str = "fixed", patch: str | None = PATCH,
              issue: str = ISSUE, **extra) -> Path:
    """A run folder exactly as the headless `fix` command leaves it."""
    run_dir = repo.path / ".evoagent" / "runs" / run_id
    run_dir.mkdir(parents=True)
    report = {
        "run_id": run_id,
        "issue": issue,
        "status": status,
        "base_sha": repo.head(),
        "attempts": 2,
        "tests": {
            "before": {"passed": [], "failed": ["tests/test_billing.py::test_total"]},
            "after": {
                "passed": ["tests/test_billing.py::test_total", "tests/test_other.py::test_x"],
                "failed": [],
            },
        },
        "summary": "Round currency totals to two decimals in InvoiceCalculator.total",
        "root_cause": "total() rounded to one digit",
        "tokens": {"prompt": 10, "completion": 5},
        "cost_usd": 0.01,
        "seconds": 3.5,
        **extra,
    }
    (run_dir / "report.json").write_text(json.dumps(report))
    if patch is not None:
        (run_dir / "patch.diff").write_text(patch)
    return run_dir


@pytest.fixture
def shop(git_repo, monkeypatch):
    git_repo.commit("Initial shop", {"shop/billing.py": BILLING, "shop/util.py": "x = 1\n"})
    git_repo.git("config", "user.name", "Ada Lovelace")
    return git_repo


def approve(repo, monkeypatch, run_id: str, *extra: str) -> dict:
    return js(invoke(repo.path, monkeypatch, "approve", run_id, "--json", *extra))


# -- approve --------------------------------------------------------------------------------


def test_approve_keeps_the_fix_with_provenance(shop, monkeypatch):
    write_run(shop, "20250101-rounding-ab12")
    kept = approve(shop, monkeypatch, "20250101-round", "--note", "customers noticed")
    assert kept["status"] == "active"
    assert kept["intent"] == "Invoice totals are rounded to one decimal place"
    assert kept["solution"] == "Round currency totals to two decimals in InvoiceCalculator.total"
    assert kept["root_cause"] == "total() rounded to one digit"
    assert kept["files"] == ["shop/billing.py", "tests/test_billing.py"]
    assert kept["tests"] == ["tests/test_billing.py", "tests/test_billing.py::test_total"]
    assert kept["note"] == "customers noticed"
    assert kept["approved_by"] == "Ada Lovelace"
    assert kept["run_id"] == "20250101-rounding-ab12"
    assert kept["base_sha"] == shop.head()
    assert kept["commit_sha"] is None
    assert kept["diff"] == PATCH
    assert (kept["uses"], kept["helped"]) == (0, 0)
    assert list(kept)[0] == "id"
    assert (shop.path / ".evoagent" / "memory" / "knowledge.lance").is_dir()


def test_approve_text_output(shop, monkeypatch):
    write_run(shop, "run-abc")
    result = invoke(shop.path, monkeypatch, "approve", "run-abc")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("kept run run-abc as knowledge ")
    assert lines[0].endswith(": Invoice totals are rounded to one decimal place")
    assert lines[1] == "    files: shop/billing.py, tests/test_billing.py"


def test_approver_falls_back_to_user(git_repo, monkeypatch):
    git_repo.commit("start", {"shop/billing.py": BILLING})
    monkeypatch.setenv("USER", "grace")
    write_run(git_repo, "run-1")
    assert approve(git_repo, monkeypatch, "run-1")["approved_by"] == "grace"


def test_approve_not_fixed_refuses_then_force_keeps(shop, monkeypatch, capsys):
    write_run(shop, "run-nf", status="not_fixed")
    code, out, err = run_main(shop.path, monkeypatch, capsys, "approve", "run-nf")
    assert (code, out) == (2, "")
    assert err == (
        "evoagent: run run-nf is not fixed (status: not_fixed): pass --force to keep it anyway\n"
    )
    assert js(invoke(shop.path, monkeypatch, "knowledge", "list", "--json")) == []
    kept = approve(shop, monkeypatch, "run-nf", "--force")
    assert kept["run_id"] == "run-nf"


@pytest.mark.parametrize(
    "setup, run_arg, message",
    [
        (lambda r: None, "nope", "evoagent: unknown run: nope (no folder in {runs})\n"),
        (lambda r: (write_run(r, "run-a1"), write_run(r, "run-a2")), "run-a",
         "evoagent: run id run-a is ambiguous: run-a1, run-a2\n"),
        (lambda r: write_run(r, "run-empty", patch="  \n"), "run-empty",
         "evoagent: run run-empty has an empty patch: nothing to keep\n"),
        (lambda r: write_run(r, "run-nopatch", patch=None), "run-nopatch",
         "evoagent: run run-nopatch has an empty patch: nothing to keep\n"),
        (lambda r: (r.path / ".evoagent/runs/run-x").mkdir(parents=True), "run-x",
         "evoagent: run run-x has no report.json\n"),
        (lambda r: ((r.path / ".evoagent/runs/run-bad").mkdir(parents=True),
                    (r.path / ".evoagent/runs/run-bad/report.json").write_text("{oops")),
         "run-bad", None),
        (lambda r: None, "../x", "evoagent: unknown run: '../x'\n"),
    ],
    ids=["unknown", "ambiguous", "blank-patch", "no-patch", "no-report", "bad-json", "path"],
)
def test_approve_user_errors_are_one_line(shop, monkeypatch, capsys, setup, run_arg, message):
    (shop.path / ".evoagent" / "runs").mkdir(parents=True, exist_ok=True)
    setup(shop)
    code, out, err = run_main(shop.path, monkeypatch, capsys, "approve", run_arg)
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1
    if message is None:
        assert err.startswith("evoagent: run run-bad: unreadable report.json: ")
    else:
        assert err == message.format(runs=shop.path / ".evoagent" / "runs")


def test_approving_a_run_twice_is_refused(shop, monkeypatch, capsys):
    write_run(shop, "run-1")
    kept = approve(shop, monkeypatch, "run-1")
    code, _, err = run_main(shop.path, monkeypatch, capsys, "approve", "run-1")
    assert code == 2
    assert err == f"evoagent: run run-1 is already knowledge {kept['id']}\n"


# -- knowledge list | show | path -----------------------------------------------------------


def test_list_show_and_default_subcommand(shop, monkeypatch):
    write_run(shop, "run-1")
    write_run(shop, "run-2", issue="# Pagination cursor skips the last page\nmore")
    first = approve(shop, monkeypatch, "run-1")
    second = approve(shop, monkeypatch, "run-2")
    assert second["intent"] == "Pagination cursor skips the last page more"

    listed = js(invoke(shop.path, monkeypatch, "knowledge", "list", "--json"))
    assert {k["id"] for k in listed} == {first["id"], second["id"]}
    assert all("diff" not in k for k in listed)

    text = invoke(shop.path, monkeypatch, "knowledge")
    assert text.exit_code == 0
    assert text.stdout == invoke(shop.path, monkeypatch, "knowledge", "list").stdout
    assert f"{first['id']}  " in text.stdout and "Invoice totals are rounded" in text.stdout

    shown = js(invoke(shop.path, monkeypatch, "knowledge", "show", first["id"][:5], "--json"))
    assert shown == first
    human = invoke(shop.path, monkeypatch, "knowledge", "show", first["id"]).stdout
    assert f"id:            {first['id']}" in human
    assert "approved:      by Ada Lovelace on " in human
    assert "run:           run-1" in human
    assert "+        return round(sum(lines), 2)" in human


def test_show_unknown_id_is_one_line(shop, monkeypatch, capsys):
    code, out, err = run_main(shop.path, monkeypatch, capsys, "knowledge", "show", "abcdef")
    assert (code, out, err) == (2, "", "evoagent: unknown knowledge id: abcdef\n")


def test_list_empty(shop, monkeypatch):
    result = invoke(shop.path, monkeypatch, "knowledge", "list")
    assert result.stdout == "no knowledge yet (keep a fix with `evoagent approve RUN_ID`)\n"


def test_path_prints_the_store_location(shop, monkeypatch, tmp_path):
    result = invoke(shop.path, monkeypatch, "knowledge", "path")
    assert result.stdout == f"{shop.path / '.evoagent' / 'memory'}\n"
    other = tmp_path / "team-store"
    result = invoke(shop.path, monkeypatch, "knowledge", "path", "--store", str(other))
    assert result.stdout == f"{other}\n"


# -- retract / supersede and what recall and locate surface ---------------------------------


def recall_json(repo, monkeypatch, *args: str) -> list[dict]:
    return js(invoke(repo.path, monkeypatch, "recall", *args, "--json"))


def knowledge_ids(items: list[dict]) -> list[str]:
    return [i["id"] for i in items if i["kind"] == "knowledge"]


def located_fixes(repo, monkeypatch, issue: str) -> list[str]:
    report = js(invoke(repo.path, monkeypatch, "locate", issue, "--json"))
    return [w for f in report["files"] for w in f["why"] if w.startswith("approved fix ")]


def test_recall_and_locate_surface_active_knowledge(shop, monkeypatch):
    shop.commit("Fix tokenizer crash", {"shop/util.py": "x = 2\n"})
    assert invoke(shop.path, monkeypatch, "mine").exit_code == 0
    write_run(shop, "run-1")
    kept = approve(shop, monkeypatch, "run-1")

    items = recall_json(shop, monkeypatch, "invoice", "rounding", "tokenizer")
    memories = [i for i in items if i["kind"] == "memory"]
    assert memories and set(memories[0]) == {"kind", "sha", "date", "subject", "files", "score"}
    knowledge = [i for i in items if i["kind"] == "knowledge"]
    assert knowledge == [
        {
            "kind": "knowledge",
            "id": kept["id"],
            "intent": "Invoice totals are rounded to one decimal place",
            "files": ["shop/billing.py", "tests/test_billing.py"],
            "score": round(1 / 61, 6),
            "approved_by": "Ada Lovelace",
            "run_id": "run-1",
        }
    ]
    assert items.index(knowledge[0]) == len(items) - 1  # after the memories

    text = invoke(shop.path, monkeypatch, "recall", "invoice", "rounding").stdout.splitlines()
    section = text.index("knowledge:")
    assert section > 0  # memories first
    assert text[section + 1].startswith(f"{kept['id']}  ")
    assert text[section + 1].endswith("  Invoice totals are rounded to one decimal place")
    assert text[section + 2:] == [
        "            approved by Ada Lovelace, run run-1: shop/billing.py, tests/test_billing.py"
    ]

    assert located_fixes(shop, monkeypatch, "invoice totals rounding is off") == [
        f"approved fix {kept['id']}: Invoice totals are rounded to one decimal place"
    ]


def test_recall_without_knowledge_prints_no_section(shop, monkeypatch):
    assert invoke(shop.path, monkeypatch, "mine").exit_code == 0
    result = invoke(shop.path, monkeypatch, "recall", "initial", "shop")
    assert result.exit_code == 0
    assert "knowledge:" not in result.stdout


def test_retract_hides_from_recall_and_locate(shop, monkeypatch, capsys):
    write_run(shop, "run-1")
    kept = approve(shop, monkeypatch, "run-1")
    result = invoke(shop.path, monkeypatch, "knowledge", "retract", kept["id"][:6],
                    "--reason", "rounding is configured per currency")
    assert result.stdout == f"retracted knowledge {kept['id']}\n"
    assert knowledge_ids(recall_json(shop, monkeypatch, "invoice rounding")) == []
    assert located_fixes(shop, monkeypatch, "invoice totals rounding is off") == []
    assert js(invoke(shop.path, monkeypatch, "knowledge", "list", "--json")) == []
    everything = js(invoke(shop.path, monkeypatch, "knowledge", "list", "--all", "--json"))
    assert [(k["id"], k["status"], k["retracted_reason"]) for k in everything] == [
        (kept["id"], "retracted", "rounding is configured per currency")
    ]
    assert "[retracted]" in invoke(shop.path, monkeypatch, "knowledge", "list", "--all").stdout
    code, _, err = run_main(shop.path, monkeypatch, capsys, "knowledge", "retract", kept["id"],
                            "--reason", "x")
    assert (code, err) == (2, f"evoagent: knowledge {kept['id']} is already retracted\n")
    code, _, err = run_main(shop.path, monkeypatch, capsys, "knowledge", "retract", kept["id"])
    assert (code, err) == (2, "evoagent: knowledge retract needs --reason TEXT\n")


def test_supersede_shows_only_the_new_record(shop, monkeypatch, capsys):
    write_run(shop, "run-1")
    write_run(shop, "run-2", issue="Invoice rounding should use Decimal")
    old, new = approve(shop, monkeypatch, "run-1"), approve(shop, monkeypatch, "run-2")
    assert set(knowledge_ids(recall_json(shop, monkeypatch, "invoice rounding"))) == {
        old["id"], new["id"]}
    result = invoke(shop.path, monkeypatch, "knowledge", "supersede", old["id"], new["id"])
    assert result.stdout == f"knowledge {old['id']} superseded by {new['id']}\n"
    assert knowledge_ids(recall_json(shop, monkeypatch, "invoice rounding")) == [new["id"]]
    assert [w.split(":")[0] for w in located_fixes(shop, monkeypatch, "invoice rounding")] == [
        f"approved fix {new['id']}"]
    shown = js(invoke(shop.path, monkeypatch, "knowledge", "show", old["id"], "--json"))
    assert (shown["status"], shown["superseded_by"]) == ("superseded", new["id"])
    code, _, err = run_main(shop.path, monkeypatch, capsys, "knowledge", "supersede", new["id"],
                            "ffff")
    assert (code, err) == (2, "evoagent: unknown knowledge id: ffff\n")


def test_recall_and_locate_as_of_hide_knowledge_approved_later(shop, monkeypatch):
    base = shop.head()
    write_run(shop, "run-1")
    kept = approve(shop, monkeypatch, "run-1")
    assert knowledge_ids(recall_json(shop, monkeypatch, "invoice rounding")) == [kept["id"]]
    # The fixture's commits are dated 2023; the approval is now: a benchmark at the base
    # commit must not see it.
    assert knowledge_ids(recall_json(shop, monkeypatch, "invoice rounding", "--as-of", base)) == []
    report = js(invoke(shop.path, monkeypatch, "locate", "invoice rounding", "--as-of", base,
                       "--json"))
    assert not [w for f in report["files"] for w in f["why"] if w.startswith("approved fix")]


def test_usefulness_counters_show_up(shop, monkeypatch):
    from evoagent.memory.knowledge import KnowledgeStore
    from evoagent.memory.store import MemoryStore

    write_run(shop, "run-1")
    kept = approve(shop, monkeypatch, "run-1")
    ks = KnowledgeStore(MemoryStore(shop.path / ".evoagent" / "memory"))
    ks.mark_used([kept["id"]])
    ks.mark_used([kept["id"]])
    ks.mark_helped([kept["id"]])
    shown = js(invoke(shop.path, monkeypatch, "knowledge", "show", kept["id"], "--json"))
    assert (shown["uses"], shown["helped"]) == (2, 1)
    human = invoke(shop.path, monkeypatch, "knowledge", "show", kept["id"]).stdout
    assert "used:          2 time(s), helped 1" in human


# -- capture helpers ------------------------------------------------------------------------


def test_files_of_handles_renames_deletions_binaries_and_quoting():
    diff = (
        "diff --git a/old.py b/new.py\nsimilarity index 100%\nrename from old.py\n"
        "rename to new.py\n"
        "diff --git a/gone.py b/gone.py\ndeleted file mode 100644\n--- a/gone.py\n+++ /dev/null\n"
        "@@ -1 +0,0 @@\n-x\n"
        "diff --git a/img.png b/img.png\nBinary files a/img.png and b/img.png differ\n"
        'diff --git "a/sp ace.py" "b/sp ace.py"\n--- "a/sp ace.py"\n+++ "b/sp ace.py"\n'
        "@@ -1 +1 @@\n-a\n+b\n"
    )
    assert capture.files_of(diff) == ["new.py", "gone.py", "img.png", "sp ace.py"]
    assert capture.files_of("") == []


def test_tests_of_and_intent_of():
    files = ["pkg/a.py", "tests/test_a.py"]
    passed = ["tests/test_a.py::test_one", "tests/test_b.py::test_two", "pkg/a.py::doctest"]
    assert capture.tests_of(files, passed) == [
        "tests/test_a.py", "tests/test_a.py::test_one", "pkg/a.py::doctest"]
    assert capture.intent_of("\n\n## Crash on   empty input\nwhen x\n\nDetails") == (
        "Crash on empty input when x")
    assert len(capture.intent_of("word " * 500)) == 500


# -- help stays cheap -------------------------------------------------------------------------


def test_knowledge_help_imports_nothing_heavy():
    snippet = (
        "import json, sys\nfrom click.testing import CliRunner\nimport evoagent.agent.cli as c\n"
        "codes = [CliRunner().invoke(c.cli, a).exit_code for a in (['approve', '--help'],"
        " ['knowledge', '--help'], ['knowledge', 'list', '--help'])]\n"
        "print(json.dumps({'codes': codes, 'heavy': sorted(m for m in ('litellm', 'lancedb')"
        " if m in sys.modules)}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True,
                          check=True)
    assert json.loads(proc.stdout) == {"codes": [0, 0, 0], "heavy": []}


def test_recall_before_mining_still_shows_knowledge(shop, monkeypatch):
    write_run(shop, "run-1")
    kept = approve(shop, monkeypatch, "run-1")
    lines = invoke(shop.path, monkeypatch, "recall", "invoice rounding").stdout.splitlines()
    assert lines[:2] == ["no matching memories (run `evoagent mine`)", "knowledge:"]
    assert lines[2].startswith(kept["id"])
