"""A memory's searchable text carries the names its diff touched."""

from evoagent.memory.mine import mine
from evoagent.memory.records import changed_identifiers
from evoagent.memory.search import recall
from evoagent.memory.store import MemoryStore

DIFF = """diff --git a/shop/cart.py b/shop/cart.py
--- a/shop/cart.py
+++ b/shop/cart.py
@@ -1,3 +1,3 @@ def total(cart):
-    return sum_prices(cart.items)
+    return sum_prices(cart.items) - apply_discount(cart)
 unchanged_context = True
"""


def test_changed_identifiers_are_the_names_on_added_and_removed_lines():
    names = changed_identifiers(DIFF)
    assert names == ["return", "sum_prices", "cart", "items", "apply_discount"]
    assert "unchanged_context" not in names and "shop" not in names


def test_recall_finds_a_commit_by_a_name_only_its_diff_mentions(git_repo, tmp_path):
    git_repo.commit("Start", {"shop/cart.py": "def total(cart):\n    return 0\n"})
    sha = git_repo.commit(
        "Fix totals", {"shop/cart.py": "def total(cart):\n    return apply_discount(cart)\n"}
    )
    store = MemoryStore(tmp_path / "store")
    mine(git_repo.path, store)
    hits = recall(store, "apply_discount", k=3)
    assert [h.memory.sha for h in hits] == [sha]
