"""The memory commands end to end: init, mine, recall, locate on real repos and a real store.

Successful runs go through click's CliRunner on `cli`; error paths go through `main()` (the
console entry point, which turns user errors into one line and an exit code); a few checks
run the installed command in a subprocess, where imports, TTYs and exit codes are real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from evoagent.agent.cli import cli, main

EVOAGENT = Path(sys.executable).with_name("evoagent")
SUBCOMMANDS = ["init", "mine", "recall", "locate"]


def invoke(repo_path: Path, monkeypatch, *args: str, input: str | None = None):
    """Run `evoagent ARGS` in-process from inside `repo_path`; fail loudly on a traceback."""
    monkeypatch.chdir(repo_path)
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def run_main(cwd: Path, monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run the console entry point in-process: (exit code, stdout, stderr)."""
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["evoagent", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def run_evoagent(cwd: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(EVOAGENT), *args], cwd=cwd, capture_output=True, text=True, check=False, **kwargs
    )


def js(result) -> object:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# -- help and import cost -------------------------------------------------------------

HELP_SNIPPET = """
import json, sys
from click.testing import CliRunner
import evoagent.agent.cli as cli_module
codes = {}
for args in [["--help"]] + [[name, "--help"] for name in %r]:
    codes[" ".join(args)] = CliRunner().invoke(cli_module.cli, args).exit_code
heavy = sorted(m for m in ("litellm", "lancedb", "tree_sitter") if m in sys.modules)
print(json.dumps({"codes": codes, "heavy": heavy}))
"""


def test_help_is_cheap_and_exits_zero():
    proc = subprocess.run(
        [sys.executable, "-c", HELP_SNIPPET % SUBCOMMANDS],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(proc.stdout)
    assert report["codes"] == {"--help": 0, **{f"{name} --help": 0 for name in SUBCOMMANDS}}
    assert report["heavy"] == []


def test_installed_command_help(tmp_path):
    proc = run_evoagent(tmp_path, "--help")
    assert proc.returncode == 0
    assert proc.stdout.startswith("Usage: evoagent")
    for name in SUBCOMMANDS:
        assert f"\n  {name} " in proc.stdout
    assert proc.stderr == ""


# -- outside a repository -------------------------------------------------------------


@pytest.mark.parametrize(
    "args", [["init"], ["mine"], ["recall", "parser"], ["locate", "parser crash"]], ids=SUBCOMMANDS
)
def test_outside_a_repository(tmp_path, args):
    plain = tmp_path / "plain"
    plain.mkdir()
    proc = run_evoagent(plain, *args, env={**os.environ, "GIT_CEILING_DIRECTORIES": str(tmp_path)})
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("evoagent: not a git repository")
    assert not (plain / ".evoagent").exists()


# -- init -----------------------------------------------------------------------------


def test_init_creates_state_and_excludes_it_once(git_repo, monkeypatch):
    git_repo.commit("start", {"a.py": "x = 1\n"})
    state = git_repo.path / ".evoagent"
    first = invoke(git_repo.path, monkeypatch, "init")
    assert first.exit_code == 0
    assert first.stdout == (
        f"evoagent state in {state}\n"
        f"agent genome (its own git repository, branch main) in {state / 'agent'}\n"
    )
    second = invoke(git_repo.path, monkeypatch, "init")
    assert second.exit_code == 0
    assert second.stdout == f"evoagent state in {state}\n"
    genome_log = subprocess.run(
        ["git", "-C", str(state / "agent"), "log", "--format=%D", "-1"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert "main" in genome_log
    assert (state / "config.toml").is_file()
    assert (state / "memory").is_dir()
    assert (state / "runs").is_dir()
    exclude = (git_repo.path / ".git" / "info" / "exclude").read_text().splitlines()
    assert exclude.count("/.evoagent/") == 1
    assert git_repo.git("status", "--porcelain") == ""


def test_init_from_a_subdirectory_uses_the_repo_root(git_repo, monkeypatch):
    git_repo.commit("start", {"pkg/a.py": "x = 1\n"})
    result = invoke(git_repo.path / "pkg", monkeypatch, "init")
    assert result.exit_code == 0
    assert (git_repo.path / ".evoagent" / "config.toml").is_file()
    assert not (git_repo.path / "pkg" / ".evoagent").exists()


# -- mine -----------------------------------------------------------------------------


def test_mine_empty_repo(git_repo, monkeypatch):
    result = invoke(git_repo.path, monkeypatch, "mine")
    assert result.exit_code == 0
    assert result.stdout == "no commits yet: nothing to mine\n"


def test_mine_json_counts_and_second_run(git_repo, monkeypatch):
    for i in range(3):
        git_repo.commit(f"change {i}", {"f.py": f"x = {i}\n"})
    first = js(invoke(git_repo.path, monkeypatch, "mine", "--json"))
    assert set(first) == {"stored", "skipped", "total", "seconds", "shallow", "empty", "store"}
    assert (first["stored"], first["skipped"], first["total"]) == (3, 0, 3)
    assert (first["shallow"], first["empty"]) == (False, False)
    assert first["store"] == str(git_repo.path / ".evoagent" / "memory")
    second = js(invoke(git_repo.path, monkeypatch, "mine", "--json"))
    assert (second["stored"], second["skipped"], second["total"]) == (0, 3, 3)


def test_mine_text_output(git_repo, monkeypatch):
    for i in range(2):
        git_repo.commit(f"change {i}", {"f.py": f"x = {i}\n"})
    result = invoke(git_repo.path, monkeypatch, "mine")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("stored 2 new commit(s), 0 already known, 2 in history (")


def test_mine_store_option(git_repo, monkeypatch, tmp_path):
    git_repo.commit("only", {"f.py": "x = 1\n"})
    elsewhere = tmp_path / "shared-store"
    report = js(invoke(git_repo.path, monkeypatch, "mine", "--store", str(elsewhere), "--json"))
    assert report["store"] == str(elsewhere)
    assert report["stored"] == 1
    assert (elsewhere / "memories.lance").is_dir()
    assert not (git_repo.path / ".evoagent" / "memory" / "memories.lance").exists()


def _history(repo, commits: int) -> None:
    for i in range(commits):
        repo.commit(f"change {i}", {"f.py": f"x = {i}\n"})


def test_mine_no_progress_bar_without_a_tty(git_repo):
    _history(git_repo, 3)
    proc = run_evoagent(git_repo.path, "mine")
    assert proc.returncode == 0
    assert proc.stderr == ""
    assert proc.stdout.startswith("stored 3 new commit(s)")


def test_mine_progress_bar_on_a_tty(git_repo):
    # The counterpart of the test above: the bar does exist, on a terminal.
    import pty

    _history(git_repo, 3)
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            [str(EVOAGENT), "mine"],
            cwd=git_repo.path,
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            check=False,
        )
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                data = os.read(leader, 4096)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
    finally:
        if follower != -1:
            os.close(follower)
        os.close(leader)
    assert proc.returncode == 0
    assert "mining" in b"".join(chunks).decode("utf-8", "replace")


# -- recall ---------------------------------------------------------------------------


@pytest.fixture
def recall_repo(git_repo, monkeypatch):
    """Three unrelated commits, then a later one that matches 'pagination cursor' best."""
    shas = {
        "parser": git_repo.commit(
            "Fix tokenizer crash on unicode escapes", {"parser.py": "def tokenize(s):\n    pass\n"}
        ),
        "docs": git_repo.commit("Document the install steps", {"README.md": "install it\n"}),
        "cursor": git_repo.commit(
            "Add pagination cursor helper", {"pages.py": "def cursor():\n    pass\n"}
        ),
        "cursor2": git_repo.commit(
            "Pagination cursor: fix off-by-one in pagination cursor for the last page",
            {"pages.py": "def cursor():\n    return 1\n"},
        ),
    }
    assert invoke(git_repo.path, monkeypatch, "mine").exit_code == 0
    return git_repo, shas


def test_recall_json_ranks_the_distinctive_commit_first(recall_repo, monkeypatch):
    repo, shas = recall_repo
    hits = js(invoke(repo.path, monkeypatch, "recall", "tokenizer", "unicode", "--json"))
    assert hits[0]["sha"] == shas["parser"]
    assert hits[0]["subject"] == "Fix tokenizer crash on unicode escapes"
    assert hits[0]["files"] == ["parser.py"]
    assert set(hits[0]) == {"kind", "sha", "date", "subject", "files", "score"}
    assert hits[0]["date"] == "2023-11-14"


def test_recall_text_output(recall_repo, monkeypatch):
    repo, shas = recall_repo
    result = invoke(repo.path, monkeypatch, "recall", "tokenizer", "-k", "1")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        f"{shas['parser'][:10]}  2023-11-14  Fix tokenizer crash on unicode escapes",
        "            parser.py",
    ]


def test_recall_as_of_hides_later_commits(recall_repo, monkeypatch):
    repo, shas = recall_repo
    latest = js(invoke(repo.path, monkeypatch, "recall", "pagination cursor", "--json"))
    assert latest[0]["sha"] == shas["cursor2"]
    earlier = js(
        invoke(
            repo.path,
            monkeypatch,
            "recall",
            "pagination cursor",
            "--as-of",
            shas["cursor"],
            "--json",
        )
    )
    returned = [h["sha"] for h in earlier]
    assert shas["cursor2"] not in returned
    assert returned[0] == shas["cursor"]
    reachable = set(repo.git("rev-list", shas["cursor"]).split())
    assert set(returned) <= reachable


def test_recall_as_of_hides_commits_on_other_branches(git_repo, monkeypatch):
    base = git_repo.commit("Start the widget module", {"w.py": "x = 1\n"})
    git_repo.git("checkout", "-q", "-b", "side")
    side = git_repo.commit("Widget frobnicator support", {"w.py": "x = 2\n"})
    git_repo.git("checkout", "-q", "main")
    git_repo.git("merge", "-q", "--no-ff", "-m", "Merge side", "side")
    main_only = git_repo.commit("Widget frobnicator docs", {"d.md": "frobnicator\n"})
    assert invoke(git_repo.path, monkeypatch, "mine").exit_code == 0
    hits = js(
        invoke(
            git_repo.path, monkeypatch, "recall", "widget frobnicator", "--as-of", side, "--json"
        )
    )
    assert {h["sha"] for h in hits} == {base, side}
    assert main_only not in {h["sha"] for h in hits}


def test_recall_before_mining_says_so(git_repo, monkeypatch):
    git_repo.commit("one", {"a.py": "x = 1\n"})
    result = invoke(git_repo.path, monkeypatch, "recall", "anything")
    assert result.exit_code == 0
    assert result.stdout == "no matching memories (run `evoagent mine`)\n"


def test_recall_bad_revision(recall_repo, monkeypatch, capsys):
    repo, _ = recall_repo
    code, out, err = run_main(
        repo.path, monkeypatch, capsys, "recall", "cursor", "--as-of", "no-such-rev"
    )
    assert code == 2
    assert out == ""
    assert err == "evoagent: unknown revision: no-such-rev\n"


@pytest.mark.parametrize("query", ['title:"cursor', "cursor AND (page OR", "'; drop --", "*?~^"])
def test_recall_odd_queries(recall_repo, monkeypatch, query):
    repo, _ = recall_repo
    result = invoke(repo.path, monkeypatch, "recall", query, "--json")
    assert result.exit_code == 0
    assert isinstance(json.loads(result.stdout), list)


# -- locate ---------------------------------------------------------------------------

BILLING = """\
class InvoiceCalculator:
    def total(self, lines):
        return round(sum(lines), 1)
"""
SHIPPING = """\
def shipping_cost(weight):
    return weight * 2
"""
UTIL = """\
def clamp(value, low, high):
    return max(low, min(value, high))
"""


@pytest.fixture
def code_repo(git_repo):
    git_repo.commit(
        "Initial shop",
        {"shop/billing.py": BILLING, "shop/shipping.py": SHIPPING, "shop/util.py": UTIL},
    )
    return git_repo


def test_locate_query_file_and_stdin_agree(code_repo, monkeypatch, tmp_path):
    issue = "InvoiceCalculator.total rounds to one decimal place"
    issue_file = tmp_path / "issue.md"
    issue_file.write_text(issue)
    by_query = js(invoke(code_repo.path, monkeypatch, "locate", issue, "--json"))
    by_file = js(invoke(code_repo.path, monkeypatch, "locate", "--file", str(issue_file), "--json"))
    by_stdin = js(invoke(code_repo.path, monkeypatch, "locate", "-", "--json", input=issue))
    assert by_query == by_file == by_stdin
    assert by_query["files"][0]["path"] == "shop/billing.py"


def test_locate_json_shape(code_repo, monkeypatch):
    report = js(
        invoke(code_repo.path, monkeypatch, "locate", "InvoiceCalculator is wrong", "--json")
    )
    assert set(report) == {"files", "symbols"}
    assert report["files"]
    for f in report["files"]:
        assert set(f) == {"path", "score", "why"}
        assert isinstance(f["path"], str) and isinstance(f["score"], float)
        assert all(isinstance(w, str) for w in f["why"])
    assert report["symbols"]
    for s in report["symbols"]:
        assert set(s) == {"path", "name", "line", "score"}
    top = report["symbols"][0]
    assert (top["path"], top["name"], top["line"]) == ("shop/billing.py", "InvoiceCalculator", 1)


def test_locate_text_output(code_repo, monkeypatch):
    result = invoke(code_repo.path, monkeypatch, "locate", "InvoiceCalculator", "-k", "1")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith(" 1. shop/billing.py  (")
    assert "      defines InvoiceCalculator" in lines
    assert "symbols:" in lines
    assert "    shop/billing.py:1  InvoiceCalculator" in lines


def test_locate_traceback_ranks_its_file_first(code_repo, monkeypatch):
    issue = (
        "Crash when shipping to Mars\n\nTraceback (most recent call last):\n"
        '  File "/usr/lib/python3/site-packages/shop/shipping.py", line 2, in shipping_cost\n'
        "TypeError: unsupported operand\n"
    )
    report = js(invoke(code_repo.path, monkeypatch, "locate", "-", "--json", input=issue))
    assert report["files"][0]["path"] == "shop/shipping.py"
    assert "traceback: line 2 in shipping_cost" in report["files"][0]["why"]


def test_locate_as_of_reads_code_at_the_revision(code_repo, monkeypatch):
    before = code_repo.head()
    code_repo.commit("Add refunds", {"shop/refunds.py": "class RefundLedger:\n    pass\n"})
    now = js(invoke(code_repo.path, monkeypatch, "locate", "RefundLedger", "--json"))
    assert now["files"][0]["path"] == "shop/refunds.py"
    then = js(
        invoke(code_repo.path, monkeypatch, "locate", "RefundLedger", "--as-of", before, "--json")
    )
    assert "shop/refunds.py" not in {f["path"] for f in then["files"]}


def test_locate_ignores_uncommitted_edits(code_repo, monkeypatch):
    code_repo.write("shop/util.py", UTIL + "\nclass ZebraStripes:\n    pass\n")
    code_repo.write("shop/draft.py", "class ZebraStripes:\n    pass\n")
    report = js(invoke(code_repo.path, monkeypatch, "locate", "ZebraStripes", "--json"))
    assert report == {"files": [], "symbols": []}


def test_locate_history_evidence_names_the_commit(code_repo, monkeypatch):
    fix = code_repo.commit(
        "Fix invoice rounding for currency totals",
        {"shop/billing.py": BILLING.replace("round(sum(lines), 1)", "round(sum(lines), 2)")},
    )
    code_repo.commit("Tidy helpers", {"shop/util.py": UTIL + "\n"})
    assert invoke(code_repo.path, monkeypatch, "mine").exit_code == 0
    report = js(invoke(code_repo.path, monkeypatch, "locate", "currency rounding is off", "--json"))
    billing = next(f for f in report["files"] if f["path"] == "shop/billing.py")
    history = [w for w in billing["why"] if w.startswith("changed by similar commits: ")]
    assert history and f"{fix[:8]} Fix invoice rounding for currency totals" in history[0]


class _Stdin:
    """Just enough of sys.stdin for `locate -` run through main()."""

    def __init__(self, text: str):
        self.text = text

    def read(self) -> str:
        return self.text


@pytest.mark.parametrize(
    "args, stdin",
    [([], None), (["   "], None), (["-"], ""), (["-"], "  \n\n")],
    ids=["no-args", "blank", "empty-stdin", "blank-stdin"],
)
def test_locate_empty_issue(code_repo, monkeypatch, capsys, args, stdin):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", _Stdin(stdin))
    code, out, err = run_main(code_repo.path, monkeypatch, capsys, "locate", *args)
    assert code == 2
    assert out == ""
    assert err == "evoagent: locate needs an issue: QUERY, --file PATH, or - for stdin\n"


def test_locate_missing_file(code_repo, monkeypatch, capsys, tmp_path):
    missing = tmp_path / "nope.md"
    code, out, err = run_main(code_repo.path, monkeypatch, capsys, "locate", "--file", str(missing))
    assert code == 2
    assert out == ""
    assert err == f"evoagent: cannot read {missing}: No such file or directory\n"


def test_locate_bad_revision(code_repo, monkeypatch, capsys):
    code, out, err = run_main(
        code_repo.path, monkeypatch, capsys, "locate", "InvoiceCalculator", "--as-of", "v9.9"
    )
    assert code == 2
    assert err == "evoagent: unknown revision: v9.9\n"


# -- user errors from deeper layers must still be one line ------------------------------


def test_locate_in_a_repo_without_commits(git_repo, monkeypatch, capsys):
    code, out, err = run_main(git_repo.path, monkeypatch, capsys, "locate", "anything")
    assert code in (0, 2)
    assert len(err.splitlines()) <= 1


def test_recall_with_a_different_embedding(recall_repo, monkeypatch, capsys):
    monkeypatch.setenv("EVOAGENT_EMBEDDING", "hash:32")
    code, out, err = run_main(recall_repo[0].path, monkeypatch, capsys, "recall", "cursor")
    assert code == 2
    assert err.startswith("evoagent: memory store was built with embedding 'none'")
    assert len(err.splitlines()) == 1


def test_recall_with_a_bad_store_uri(recall_repo, monkeypatch, capsys):
    code, out, err = run_main(
        recall_repo[0].path, monkeypatch, capsys, "recall", "cursor", "--store", "bogus://x/y"
    )
    assert code == 2
    assert err.startswith("evoagent: cannot open memory store bogus://x/y")
    assert len(err.splitlines()) == 1


def test_bad_embedding_dimension(recall_repo, monkeypatch, capsys):
    monkeypatch.setenv("EVOAGENT_EMBEDDING", "hash:abc")
    code, out, err = run_main(recall_repo[0].path, monkeypatch, capsys, "recall", "cursor")
    assert code == 2
    assert err.startswith("evoagent: unknown embedding 'hash:abc'")


def test_unknown_embedding_is_one_line(recall_repo, monkeypatch, capsys):
    monkeypatch.setenv("EVOAGENT_EMBEDDING", "word2vec")
    code, out, err = run_main(recall_repo[0].path, monkeypatch, capsys, "recall", "cursor")
    assert code == 2
    assert err.startswith("evoagent: unknown embedding 'word2vec'")
    assert len(err.splitlines()) == 1


def test_invalid_repo_config_is_one_line(git_repo, monkeypatch, capsys):
    git_repo.commit("one", {"a.py": "x = 1\n"})
    invoke(git_repo.path, monkeypatch, "init")
    config = git_repo.path / ".evoagent" / "config.toml"
    config.write_text("model = [\n")
    code, out, err = run_main(git_repo.path, monkeypatch, capsys, "recall", "x")
    assert code == 2
    assert err.startswith(f"evoagent: {config}: invalid TOML")
    assert len(err.splitlines()) == 1


def test_relative_store_in_repo_config_is_relative_to_the_repo(git_repo, monkeypatch):
    git_repo.commit("one", {"sub/a.py": "x = 1\n"})
    invoke(git_repo.path, monkeypatch, "init")
    (git_repo.path / ".evoagent" / "config.toml").write_text('store = ".evoagent/memory"\n')
    report = js(invoke(git_repo.path / "sub", monkeypatch, "mine", "--json"))
    assert report["stored"] == 1
    assert not (git_repo.path / "sub" / ".evoagent").exists()
    assert (git_repo.path / ".evoagent" / "memory" / "memories.lance").is_dir()
    assert git_repo.git("status", "--porcelain", "--untracked-files=all") == ""


def test_repeated_incremental_mines_print_no_warnings(git_repo, monkeypatch):
    import warnings

    git_repo.commit("c0", {"f.py": "x = 0\n"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(1, 11):
            git_repo.commit(f"c{i}", {"f.py": f"x = {i}\n"})
            result = invoke(git_repo.path, monkeypatch, "mine")
            assert result.exit_code == 0
            assert result.stderr == ""
    assert [str(w.message) for w in caught] == []
