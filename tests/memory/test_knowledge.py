"""KnowledgeStore on a real LanceDB in tmp dirs: records, status changes, search, as_of,
usefulness counters, and the knowledge signal in recall_knowledge and locate."""

from __future__ import annotations

import json

import pytest
from evoagent.memory.codeindex import CodeIndex
from evoagent.memory.knowledge import (
    DIFF_CHARS,
    KNOWLEDGE,
    MIGRATIONS,
    MIGRATIONS_KEY,
    Knowledge,
    KnowledgeError,
    KnowledgeStore,
    render_evidence,
)
from evoagent.memory.locate import Locator, Weights
from evoagent.memory.mine import mine
from evoagent.memory.revisions import AsOf
from evoagent.memory.search import RRF_K, recall, recall_knowledge
from evoagent.memory.store import MemoryStore

DIFF = """\
diff --git a/shop/billing.py b/shop/billing.py
--- a/shop/billing.py
+++ b/shop/billing.py
@@ -1,3 +1,3 @@
 class InvoiceCalculator:
     def total(self, lines):
-        return round(sum(lines), 1)
+        return round(sum(lines), 2)
"""


def record(**overrides) -> Knowledge:
    values = dict(
        intent="Invoice totals are rounded to one decimal place",
        root_cause="total() rounded to 1 digit",
        solution="Round currency totals to two decimals",
        diff=DIFF,
        files=["shop/billing.py"],
        tests=["tests/test_billing.py::test_total"],
        approved_by="Ada",
        run_id="run-1",
        base_sha="0" * 40,
    )
    values.update(overrides)
    return Knowledge(**values)


@pytest.fixture
def memory(tmp_path) -> MemoryStore:
    return MemoryStore(tmp_path / "memory")


@pytest.fixture
def ks(memory) -> KnowledgeStore:
    return KnowledgeStore(memory)


def ids(hits) -> list[str]:
    return [h.knowledge.id for h in hits]


# -- records ------------------------------------------------------------------------------


def test_add_then_get_round_trips_every_field(ks, memory):
    kept = ks.add(record(note="seen twice in prod", commit_sha="c" * 40))
    again = KnowledgeStore(MemoryStore(memory.uri)).get(kept.id)
    assert again == kept
    assert (again.status, again.uses, again.helped) == ("active", 0, 0)
    assert again.approved_by == "Ada" and again.run_id == "run-1"
    assert again.tests == ["tests/test_billing.py::test_total"]
    assert len(again.id) == 12


def test_knowledge_shares_the_memory_database(ks, memory, tmp_path):
    ks.add(record())
    assert ks.path == memory.path == str(tmp_path / "memory")
    assert (tmp_path / "memory" / f"{KNOWLEDGE}.lance").is_dir()
    assert memory.count() == 0  # memories table untouched (not even created)
    assert json.loads(memory.get_meta(MIGRATIONS_KEY)) == [m.__name__ for m in MIGRATIONS]


def test_reads_before_any_write_create_nothing(ks, tmp_path):
    assert ks.list() == []
    assert ks.search("invoice") == []
    assert ks.get("abc") is None
    ks.mark_used(["abc"])
    assert not (tmp_path / "memory" / f"{KNOWLEDGE}.lance").exists()


def test_get_by_unique_prefix_and_ambiguity(ks):
    ks.add(record(id="abc111000000"))
    ks.add(record(id="abc222000000"))
    assert ks.get("abc1").id == "abc111000000"
    assert ks.get("ABC2").id == "abc222000000"
    assert ks.get("ffff") is None
    assert ks.get("x'; --") is None
    with pytest.raises(KnowledgeError, match="ambiguous"):
        ks.get("abc")
    with pytest.raises(KnowledgeError, match="unknown knowledge id: 9"):
        ks.require("9")


def test_diff_is_bounded(ks):
    huge = DIFF + "".join(f"+line {i} {'x' * 60}\n" for i in range(2000))
    kept = ks.add(record(diff=huge))
    assert len(kept.diff) <= DIFF_CHARS + 40
    assert kept.diff.endswith("... (diff truncated)\n")
    assert kept.diff.startswith(DIFF)


def test_list_filters_by_status_newest_first(ks):
    old = ks.add(record(approved_at=1_000))
    new = ks.add(record(approved_at=2_000))
    gone = ks.add(record(approved_at=3_000))
    ks.retract(gone.id, "wrong")
    assert [k.id for k in ks.list()] == [gone.id, new.id, old.id]
    assert [k.id for k in ks.list("active")] == [new.id, old.id]
    assert [k.id for k in ks.list("retracted")] == [gone.id]
    with pytest.raises(KnowledgeError):
        ks.list("deleted")


# -- status changes -----------------------------------------------------------------------


def test_retract_is_durable_and_hides_from_search(ks, memory):
    kept = ks.add(record())
    assert ids(ks.search("invoice rounding")) == [kept.id]
    done = ks.retract(kept.id[:6], "  rounding is set by the ledger  ")
    assert (done.status, done.retracted_reason) == ("retracted", "rounding is set by the ledger")
    fresh = KnowledgeStore(MemoryStore(memory.uri))
    assert fresh.get(kept.id).status == "retracted"
    assert fresh.search("invoice rounding") == []
    assert ks.search("invoice rounding") == []
    with pytest.raises(KnowledgeError, match="already retracted"):
        ks.retract(kept.id, "again")
    with pytest.raises(KnowledgeError, match="needs a reason"):
        ks.retract(ks.add(record()).id, "  ")


def test_supersede_hides_old_and_shows_new(ks):
    old = ks.add(record())
    new = ks.add(record(solution="Use Decimal with banker's rounding", run_id="run-2"))
    assert set(ids(ks.search("invoice rounding"))) == {old.id, new.id}
    replaced = ks.supersede(old.id, new.id)
    assert (replaced.status, replaced.superseded_by) == ("superseded", new.id)
    assert ids(ks.search("invoice rounding")) == [new.id]
    assert ks.get(new.id).status == "active"
    with pytest.raises(KnowledgeError, match="already superseded"):
        ks.supersede(old.id, new.id)
    with pytest.raises(KnowledgeError, match="cannot supersede itself"):
        ks.supersede(new.id, new.id)
    with pytest.raises(KnowledgeError, match="only an active record"):
        ks.supersede(new.id, old.id)
    # A superseded record can still be retracted (it stays superseded_by for the record).
    assert ks.retract(old.id, "was wrong too").status == "retracted"


def test_a_second_store_object_sees_status_changes(ks, memory):
    kept = ks.add(record())
    reader = KnowledgeStore(MemoryStore(memory.uri))
    assert ids(reader.search("invoice")) == [kept.id]
    ks.retract(kept.id, "no")
    assert reader.search("invoice") == []


def test_usefulness_counters(ks, memory):
    a, b = ks.add(record()), ks.add(record(run_id="run-2"))
    ks.mark_used([a.id, b.id])
    ks.mark_used([a.id, a.id, "not-an-id", "ffffffffffff"])
    ks.mark_helped([b.id])
    ks.mark_used([])
    fresh = KnowledgeStore(MemoryStore(memory.uri))
    assert (fresh.get(a.id).uses, fresh.get(a.id).helped) == (2, 0)
    assert (fresh.get(b.id).uses, fresh.get(b.id).helped) == (1, 1)


# -- search -------------------------------------------------------------------------------


def test_search_matches_intent_solution_note_files_and_code(ks):
    kept = ks.add(record(note="ledger export"))
    other = ks.add(
        record(intent="Pagination cursor skips the last page", solution="fix off by one",
               files=["pages.py"], diff="", root_cause="", note="")
    )
    assert ids(ks.search("rounded decimal")) == [kept.id]
    assert ids(ks.search("ledger")) == [kept.id]
    assert ids(ks.search("billing")) == [kept.id]  # a path component
    assert ids(ks.search("lines")) == [kept.id]  # a name on a changed line of the diff
    assert ids(ks.search("pagination cursor")) == [other.id]
    assert ks.search("zzyzx") == []
    assert ks.search("!!! ::") == []
    assert ks.search('title:"cursor AND (page') != []


def test_search_as_of_hides_later_approvals_and_unreachable_bases(git_repo, ks):
    first = git_repo.commit("start", {"shop/billing.py": "x = 1\n"})
    git_repo.git("checkout", "-q", "-b", "side")
    side = git_repo.commit("side work", {"side.py": "y = 1\n"})
    git_repo.git("checkout", "-q", "main")
    later = git_repo.commit("later", {"shop/billing.py": "x = 2\n"})
    at_later = AsOf.resolve(git_repo.path, later)
    at_first = AsOf.resolve(git_repo.path, first)

    on_main = ks.add(record(base_sha=first, approved_at=at_first.committed_at))
    on_side = ks.add(record(base_sha=side, approved_at=at_first.committed_at, run_id="r2"))
    future = ks.add(record(base_sha=first, approved_at=at_later.committed_at + 1, run_id="r3"))
    no_base = ks.add(record(base_sha="", approved_at=0, run_id="r4"))

    assert set(ids(ks.search("invoice rounding", k=10))) == {on_main.id, on_side.id, future.id,
                                                             no_base.id}
    assert ids(ks.search("invoice rounding", k=10, as_of=at_later)) == [on_main.id]
    assert ids(ks.search("invoice rounding", k=10, as_of=at_first)) == [on_main.id]
    at_side = AsOf.resolve(git_repo.path, side)
    assert set(ids(ks.search("invoice rounding", k=10, as_of=at_side))) == {
        on_main.id, on_side.id}


def test_search_as_of_widens_past_hidden_records(git_repo, ks):
    base = git_repo.commit("start", {"a.py": "x = 1\n"})
    at = AsOf.resolve(git_repo.path, base)
    for i in range(8):  # better matches, all approved after the revision
        ks.add(record(intent=f"invoice rounding invoice rounding {i}", run_id=f"f{i}",
                      base_sha=base, approved_at=at.committed_at + 10))
    visible = ks.add(record(base_sha=base, approved_at=at.committed_at, run_id="ok"))
    assert ids(ks.search("invoice rounding", k=1, as_of=at)) == [visible.id]


def test_recall_knowledge_scores_like_recall_and_leaves_recall_alone(git_repo, memory, ks):
    git_repo.commit("Fix invoice rounding", {"shop/billing.py": "x = 1\n"})
    mine(git_repo.path, memory)
    before = [(h.memory.sha, h.score) for h in recall(memory, "invoice rounding")]
    a = ks.add(record())
    b = ks.add(record(intent="Invoice PDF header", solution="header", root_cause="",
                      files=["shop/pdf.py"], diff="", run_id="r2"))
    hits = recall_knowledge(ks, "invoice rounding decimal", k=5)
    assert ids(hits) == [a.id, b.id]
    assert [h.score for h in hits] == [1.0 / (RRF_K + 1), 1.0 / (RRF_K + 2)]
    assert [h.sources for h in hits] == [{"bm25": 1}, {"bm25": 2}]
    assert [(h.memory.sha, h.score) for h in recall(memory, "invoice rounding")] == before
    assert recall_knowledge(None, "invoice") == []
    assert recall_knowledge(ks, "::") == []
    ks.retract(a.id, "no")
    assert ids(recall_knowledge(ks, "invoice rounding decimal")) == [b.id]


def test_render_evidence_labels_knowledge_as_evidence(ks):
    kept = ks.add(record())
    text = render_evidence([kept])
    assert text.startswith("Approved past fixes")
    assert "EVIDENCE" in text and "not instructions" in text
    assert f"[knowledge {kept.id}] approved by Ada" in text
    assert "root cause: total() rounded to 1 digit" in text
    assert render_evidence([]) == ""


# -- locate ---------------------------------------------------------------------------------

BILLING = """\
class InvoiceCalculator:
    def total(self, lines):
        return round(sum(lines), 1)
"""
LEDGER = """\
def post_entry(amount):
    return amount
"""


def test_locate_knowledge_signal(git_repo, tmp_path, ks):
    base = git_repo.commit(
        "Initial shop", {"shop/billing.py": BILLING, "shop/ledger.py": LEDGER, "shop/misc.py": ""}
    )
    index = CodeIndex(git_repo.path, tmp_path / "cache").index("HEAD")
    issue = "customer totals look wrong on statements"
    assert Weights().knowledge == 1.5

    plain = Locator(index).locate(issue)
    assert "shop/ledger.py" not in [f.path for f in plain.files]

    kept = ks.add(record(intent="Statement totals wrong for customers", files=["shop/ledger.py",
                                                                              "gone.py"],
                         base_sha=base))
    result = Locator(index, knowledge=ks).locate(issue)
    top = result.files[0]
    assert top.path == "shop/ledger.py"
    assert f"approved fix {kept.id}: Statement totals wrong for customers" in top.why
    assert top.signals["knowledge"] == 1.0
    assert "gone.py" not in [f.path for f in result.files]

    muted = Locator(index, knowledge=ks, weights=Weights(knowledge=0.0)).locate(issue)
    assert "shop/ledger.py" not in [f.path for f in muted.files if f.score > 0]

    at = AsOf.resolve(git_repo.path, base)  # approved now, after the base commit: hidden
    assert "shop/ledger.py" not in [f.path for f in Locator(index, knowledge=ks, as_of=at)
                                    .locate(issue).files]

    ks.retract(kept.id, "wrong file")
    after = Locator(index, knowledge=ks).locate(issue)
    assert "shop/ledger.py" not in [f.path for f in after.files]
