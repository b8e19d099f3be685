"""A really damaged memory store, met the way a user meets it: `evoagent mine` builds a real
LanceDB store from a real git repository, the test truncates or corrupts actual files under
`.evoagent/memory/<table>.lance/`, then runs `mine`, `recall` and `locate` through the CLI.

What must hold: a damaged table is one line on stderr naming the command that repairs it
(exit 2, no traceback); `mine --rebuild` restores recall from git and keeps readable
knowledge; damaged knowledge is moved aside, never deleted; a damaged full-text index heals
itself; an interrupted rebuild loses nothing that was readable before it started."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import run_main
from evoagent.memory.knowledge import Knowledge, KnowledgeStore
from evoagent.memory.store import MemoryStore

EVOAGENT = Path(sys.executable).with_name("evoagent")
REPAIR = "evoagent mine --rebuild"

FILES = {
    "shop/billing.py": "class InvoiceCalculator:\n    def total(self, lines):\n        return sum(lines)\n",
    "shop/refunds.py": "class RefundLedger:\n    def refund(self, amount):\n        return -amount\n",
    "shop/tax.py": "def vat(amount):\n    return amount * 0.2\n",
}
HISTORY = [
    ("Add invoice calculator", {"shop/billing.py": FILES["shop/billing.py"]}),
    ("Add refund ledger", {"shop/refunds.py": FILES["shop/refunds.py"]}),
    ("Add value added tax", {"shop/tax.py": FILES["shop/tax.py"]}),
    ("Fix invoice rounding of totals", {"shop/billing.py": FILES["shop/billing.py"].replace(
        "sum(lines)", "round(sum(lines), 2)")}),
    ("Fix refund sign for negative ledger amounts", {"shop/refunds.py": FILES["shop/refunds.py"].replace(
        "-amount", "-abs(amount)")}),
]


def mined(git_repo, monkeypatch, capsys) -> Path:
    for message, files in HISTORY:
        git_repo.commit(message, files)
    code, _, err = run_main(git_repo.path, monkeypatch, capsys, "mine")
    assert code == 0, err
    return git_repo.path


def store_dir(repo: Path) -> Path:
    return repo / ".evoagent" / "memory"


def table_files(repo: Path, table: str, part: str) -> list[Path]:
    pattern = {"data": "data/*.lance", "manifest": "_versions/*.manifest", "fts": "_indices/*/*"}[part]
    found = sorted((store_dir(repo) / f"{table}.lance").glob(pattern))
    assert found, f"no {part} files in {table}"
    return found


def truncate(paths: list[Path]) -> None:
    for path in paths:
        os.truncate(path, path.stat().st_size // 2)


def flip_bytes(paths: list[Path]) -> None:
    """Same size, middle half inverted: corruption a size check cannot see."""
    for path in paths:
        data = bytearray(path.read_bytes())
        for i in range(len(data) // 4, 3 * len(data) // 4):
            data[i] ^= 0xFF
        path.write_bytes(bytes(data))


def recall_json(repo: Path, monkeypatch, capsys, query: str = "invoice refund") -> list[dict]:
    code, out, err = run_main(repo, monkeypatch, capsys, "recall", query, "--json")
    assert code == 0, err
    assert err == ""
    return json.loads(out)


def assert_one_line_repair(code, err: str, *words: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    assert err.strip().count("\n") == 0, err
    assert REPAIR in err, err
    for word in words:
        assert word in err, err


def add_knowledge(repo: Path) -> Knowledge:
    store = KnowledgeStore(MemoryStore(store_dir(repo)))
    return store.add(Knowledge(
        intent="Invoice totals lose cents", solution="Round invoice totals to two decimals",
        diff="", files=["shop/billing.py"], approved_by="Ada", run_id="run-1",
        base_sha="0" * 40,
    ))


def knowledge_ids(repo: Path) -> list[str]:
    return [k.id for k in KnowledgeStore(MemoryStore(store_dir(repo))).list()]


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run_cli(repo: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The installed console script in a real process: stderr is file descriptor 2, where
    LanceDB's native code writes its logs and panics."""
    return subprocess.run([str(EVOAGENT), *args], cwd=repo, capture_output=True, text=True,
                          timeout=120, env=env)


# -- damaged tables: one line, exit 2, `mine --rebuild` repairs ---------------------------


@pytest.mark.parametrize(
    "table, part",
    [("memories", "data"), ("memories", "manifest"), ("_meta", "data")],
)
def test_a_damaged_table_is_one_line_and_rebuild_restores_recall(
    git_repo, monkeypatch, capsys, table, part
):
    repo = mined(git_repo, monkeypatch, capsys)
    before = recall_json(repo, monkeypatch, capsys)
    assert before
    truncate(table_files(repo, table, part))

    for args in (["recall", "invoice"], ["locate", "invoice rounding"], ["mine"]):
        code, _, err = run_main(repo, monkeypatch, capsys, *args)
        assert_one_line_repair(code, err, table)
    # Rerunning plain `mine` does not pretend to repair it.
    code, _, err = run_main(repo, monkeypatch, capsys, "mine")
    assert_one_line_repair(code, err)

    code, out, err = run_main(repo, monkeypatch, capsys, "mine", "--rebuild")
    assert code == 0, err
    assert "Traceback" not in err
    assert recall_json(repo, monkeypatch, capsys) == before
    code, out, err = run_main(repo, monkeypatch, capsys, "locate", "invoice rounding")
    assert code == 0, err
    assert "shop/billing.py" in out


def test_a_corrupted_manifest_is_one_line_in_a_real_process(git_repo, monkeypatch, capsys):
    """Flipped bytes in a manifest make LanceDB's native code panic, which prints on fd 2
    itself; the person still sees one line."""
    repo = mined(git_repo, monkeypatch, capsys)
    flip_bytes(table_files(repo, "memories", "manifest"))
    proc = run_cli(repo, "recall", "invoice")
    assert_one_line_repair(proc.returncode, proc.stderr, "memories")
    assert proc.stdout == ""


def test_rebuild_with_a_store_flag_names_that_store(git_repo, monkeypatch, capsys, tmp_path):
    for message, files in HISTORY:
        git_repo.commit(message, files)
    custom = tmp_path / "elsewhere" / "mem"
    code, _, err = run_main(git_repo.path, monkeypatch, capsys, "mine", "--store", str(custom))
    assert code == 0, err
    truncate(sorted((custom / "memories.lance").glob("data/*.lance")))
    code, _, err = run_main(git_repo.path, monkeypatch, capsys, "recall", "invoice", "--store", str(custom))
    assert_one_line_repair(code, err, f"--store {custom}")
    code, _, err = run_main(git_repo.path, monkeypatch, capsys, "mine", "--rebuild", "--store", str(custom))
    assert code == 0, err
    code, out, _ = run_main(git_repo.path, monkeypatch, capsys, "recall", "invoice", "--store", str(custom))
    assert "Fix invoice rounding" in out


# -- the full-text index heals itself -----------------------------------------------------


def fts_index_uuids(repo: Path, table: str = "memories") -> set[str]:
    return {p.name for p in (store_dir(repo) / f"{table}.lance" / "_indices").iterdir()}


@pytest.mark.parametrize("which", ["all", "metadata.lance"])
def test_a_damaged_fts_index_heals_itself(git_repo, monkeypatch, capsys, which):
    repo = mined(git_repo, monkeypatch, capsys)
    before = recall_json(repo, monkeypatch, capsys)
    old = fts_index_uuids(repo)
    damaged = [p for p in table_files(repo, "memories", "fts") if which in ("all", p.name)]
    truncate(damaged)

    assert recall_json(repo, monkeypatch, capsys) == before
    # Healed for good (a new index), not worked around on every search.
    assert fts_index_uuids(repo) - old
    assert recall_json(repo, monkeypatch, capsys) == before
    code, out, err = run_main(repo, monkeypatch, capsys, "locate", "invoice rounding")
    assert code == 0, err
    assert err == ""
    assert "shop/billing.py" in out


def test_mine_heals_a_damaged_fts_index_while_indexing_new_commits(git_repo, monkeypatch, capsys):
    repo = mined(git_repo, monkeypatch, capsys)
    truncate(table_files(repo, "memories", "fts"))
    git_repo.commit("Fix tax for zero amounts", {"shop/tax.py": "def vat(amount):\n    return 0\n"})
    code, out, err = run_main(repo, monkeypatch, capsys, "mine")
    assert code == 0, err
    assert err == ""
    hits = recall_json(repo, monkeypatch, capsys, "tax zero amounts")
    assert hits[0]["subject"] == "Fix tax for zero amounts"


def test_fts_heal_leaves_no_native_log_lines_in_a_real_process(git_repo, monkeypatch, capsys):
    repo = mined(git_repo, monkeypatch, capsys)
    truncate([p for p in table_files(repo, "memories", "fts") if p.name == "metadata.lance"])
    proc = run_cli(repo, "recall", "invoice")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "Fix invoice rounding" in proc.stdout


def test_a_damaged_knowledge_fts_index_heals_itself(git_repo, monkeypatch, capsys):
    repo = mined(git_repo, monkeypatch, capsys)
    record = add_knowledge(repo)
    truncate(table_files(repo, "knowledge", "fts"))
    hits = recall_json(repo, monkeypatch, capsys, "invoice totals cents")
    assert [h["id"] for h in hits if h["kind"] == "knowledge"] == [record.id]


# -- knowledge: kept when readable, moved aside when not ----------------------------------


def test_knowledge_survives_a_memories_rebuild(git_repo, monkeypatch, capsys):
    repo = mined(git_repo, monkeypatch, capsys)
    record = add_knowledge(repo)
    truncate(table_files(repo, "memories", "data"))
    damaged = digest(store_dir(repo) / "memories.lance")
    code, _, err = run_main(repo, monkeypatch, capsys, "recall", "invoice")
    assert_one_line_repair(code, err, "memories")

    code, out, err = run_main(repo, monkeypatch, capsys, "mine", "--rebuild")
    assert code == 0, err
    assert "knowledge table" not in err  # nothing to report about it: kept as it was
    # The unreadable memories are not deleted either: kept, as they were, where it says.
    kept = list((repo / ".evoagent").glob("memory-backup-*/memories.lance"))
    assert len(kept) == 1 and digest(kept[0]) == damaged
    assert str(kept[0].parent) in err
    assert knowledge_ids(repo) == [record.id]
    hits = recall_json(repo, monkeypatch, capsys, "invoice totals cents")
    assert record.id in [h.get("id") for h in hits]
    assert any(h["kind"] == "memory" for h in hits)


@pytest.mark.parametrize("part", ["data", "manifest"])
def test_damaged_knowledge_is_moved_aside_never_deleted(git_repo, monkeypatch, capsys, part):
    repo = mined(git_repo, monkeypatch, capsys)
    add_knowledge(repo)
    truncate(table_files(repo, "knowledge", part))
    damaged = digest(store_dir(repo) / "knowledge.lance")

    code, _, err = run_main(repo, monkeypatch, capsys, "recall", "invoice")
    assert_one_line_repair(code, err, "knowledge")
    assert (store_dir(repo) / "knowledge.lance").is_dir()  # detecting it deleted nothing

    code, out, err = run_main(repo, monkeypatch, capsys, "mine", "--rebuild")
    assert code == 0, err
    assert "Traceback" not in err
    moved = [p for p in (repo / ".evoagent").glob("*/knowledge.lance") if p.is_dir()]
    assert len(moved) == 1
    assert digest(moved[0]) == damaged  # every byte kept, nothing rewritten
    assert str(moved[0].parent) in out + err  # and the person is told where
    assert "warning: the knowledge table could not be read" in err
    assert not (store_dir(repo) / "knowledge.lance").exists()
    assert "Fix invoice rounding" in run_main(repo, monkeypatch, capsys, "recall", "invoice")[1]
    assert knowledge_ids(repo) == []
    add_knowledge(repo)  # a fresh knowledge table can be started again
    assert len(knowledge_ids(repo)) == 1


# -- an interrupted rebuild ---------------------------------------------------------------


def big_history(git_repo, monkeypatch, capsys, commits: int = 60) -> Path:
    for i in range(commits):
        git_repo.commit(f"Adjust invoice rule {i}", {"shop/rules.py": f"RULE = {i}\n"})
    code, _, err = run_main(git_repo.path, monkeypatch, capsys, "mine")
    assert code == 0, err
    return git_repo.path


def test_a_kill_during_rebuild_loses_nothing(git_repo, monkeypatch, capsys):
    repo = big_history(git_repo, monkeypatch, capsys)
    record = add_knowledge(repo)
    before = recall_json(repo, monkeypatch, capsys, "invoice rule 17")
    names = {p.name for p in store_dir(repo).iterdir()}

    env = dict(os.environ, EVOAGENT_MINE_BATCH="1")
    proc = subprocess.Popen([str(EVOAGENT), "mine", "--rebuild"], cwd=repo, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        new = {p.name for p in store_dir(repo).iterdir()} - names
        if any(sorted((store_dir(repo) / n).glob("data/*.lance")) for n in new):
            break  # the new table is being written: kill the rebuild half way
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the rebuild finished before it could be killed"

    assert recall_json(repo, monkeypatch, capsys, "invoice rule 17") == before
    assert knowledge_ids(repo) == [record.id]
    code, _, err = run_main(repo, monkeypatch, capsys, "mine", "--rebuild")
    assert code == 0, err
    assert recall_json(repo, monkeypatch, capsys, "invoice rule 17") == before
    assert knowledge_ids(repo) == [record.id]
    assert {p.name for p in store_dir(repo).iterdir()} == names  # no leftovers


@pytest.mark.parametrize("moment", ["before the swap", "between the renames"])
def test_an_interrupted_swap_loses_nothing(git_repo, monkeypatch, capsys, moment):
    """Ctrl-C at the two moments a kill could split the swap of the old table for the new."""
    repo = mined(git_repo, monkeypatch, capsys)
    record = add_knowledge(repo)
    before = recall_json(repo, monkeypatch, capsys)
    real_rename = os.rename

    def rename(src, dst):
        target = Path(dst).name == "memories.lance"
        source = Path(src).name == "memories.lance"
        if (moment == "between the renames" and target) or (moment == "before the swap" and source):
            raise KeyboardInterrupt
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    code, _, err = run_main(repo, monkeypatch, capsys, "mine", "--rebuild")
    assert code == 130, err
    monkeypatch.setattr(os, "rename", real_rename)

    assert recall_json(repo, monkeypatch, capsys) == before
    assert knowledge_ids(repo) == [record.id]
    code, _, err = run_main(repo, monkeypatch, capsys, "mine", "--rebuild")
    assert code == 0, err
    assert recall_json(repo, monkeypatch, capsys) == before
    assert knowledge_ids(repo) == [record.id]
    # A readable table the rebuild holds in full is replaced, not piled up in backups.
    assert not list((repo / ".evoagent").glob("memory-backup-*"))


def test_a_store_left_open_across_a_rebuild_reads_the_new_table(git_repo, monkeypatch, capsys):
    """The app keeps one store open for hours; a rebuild elsewhere swaps the table under it.
    Its next search reads the new table, and does not take that for a damaged index."""
    repo = mined(git_repo, monkeypatch, capsys)
    open_store = MemoryStore(store_dir(repo))
    assert open_store.fts("invoice", 3)
    code, _, err = run_main(repo, monkeypatch, capsys, "mine", "--rebuild")
    assert code == 0, err
    index = fts_index_uuids(repo)
    assert [m.subject for m, _ in open_store.fts("rounding", 3)] == ["Fix invoice rounding of totals"]
    assert fts_index_uuids(repo) == index
