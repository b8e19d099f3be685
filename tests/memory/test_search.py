"""recall(): BM25, RRF fusion with vectors, as_of visibility, and hostile query text."""

from __future__ import annotations

import pytest
from evoagent.memory.embeddings import make_embedder
from evoagent.memory.mine import mine
from evoagent.memory.revisions import AsOf
from evoagent.memory.search import MAX_QUERY_TERMS, RRF_K, clean_query, recall
from evoagent.memory.store import MemoryStore, StoreError

SUBJECTS = [
    "Fix tokenizer crash on unicode escapes",
    "Document the install steps",
    "Add pagination cursor helper",
    "Speed up the sqlite connection pool",
    "Pagination cursor: fix off-by-one on the last page",
]


@pytest.fixture
def repo(git_repo):
    shas = [
        git_repo.commit(subject, {f"m{i}.py": f"x = {i}\n"}) for i, subject in enumerate(SUBJECTS)
    ]
    git_repo.shas = shas
    return git_repo


@pytest.fixture
def bm25_store(repo, tmp_path):
    store = MemoryStore(tmp_path / "bm25")
    mine(repo.path, store)
    return store


@pytest.fixture
def vector_store(repo, tmp_path):
    store = MemoryStore(tmp_path / "vectors", make_embedder("hash:32"))
    mine(repo.path, store)
    assert store.has_vectors
    return store


def test_clean_query():
    assert clean_query('title:"Foo" AND bar(baz) -- x') == "title foo and bar baz"
    assert clean_query("Foo foo FOO") == "foo"
    assert clean_query("!!! ::: ''") == ""
    assert len(clean_query(" ".join(f"w{i}" for i in range(200))).split()) == MAX_QUERY_TERMS


def test_bm25_finds_the_matching_commit(repo, bm25_store):
    hits = recall(bm25_store, "tokenizer unicode")
    assert hits[0].memory.sha == repo.shas[0]
    assert hits[0].sources == {"bm25": 1}
    assert hits[0].score == pytest.approx(1.0 / (RRF_K + 1))
    assert all(set(h.sources) == {"bm25"} for h in hits)


def test_bm25_has_no_hit_for_unknown_words(bm25_store):
    assert recall(bm25_store, "zzyzx quuxly") == []


def test_k_limits_results(bm25_store):
    assert len(recall(bm25_store, "pagination cursor fix", k=1)) == 1


def test_vectors_fuse_with_bm25(repo, vector_store):
    hits = recall(vector_store, "pagination cursor", k=5)
    both = [h for h in hits if set(h.sources) == {"bm25", "vector"}]
    assert both, [h.sources for h in hits]
    for hit in hits:
        expected = sum(1.0 / (RRF_K + rank) for rank in hit.sources.values())
        assert hit.score == pytest.approx(expected)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert {h.memory.sha for h in hits[:2]} == {repo.shas[2], repo.shas[4]}
    # A commit found by both retrievers outranks any found by one at the same ranks.
    assert set(hits[0].sources) == {"bm25", "vector"}


def test_vectors_answer_when_no_word_matches(vector_store):
    hits = recall(vector_store, "zzyzx quuxly", k=3)
    assert len(hits) == 3
    assert all(set(h.sources) == {"vector"} for h in hits)


def test_vector_store_without_its_embedder_is_bm25_only(repo, vector_store):
    plain = MemoryStore(vector_store.uri)
    hits = recall(plain, "tokenizer unicode")
    assert hits[0].memory.sha == repo.shas[0]
    assert all(set(h.sources) == {"bm25"} for h in hits)


def test_a_different_embedding_is_refused(vector_store):
    with pytest.raises(StoreError, match="hash:32"):
        recall(MemoryStore(vector_store.uri, make_embedder("hash:64")), "cursor")


@pytest.mark.parametrize("store_name", ["bm25_store", "vector_store"])
def test_as_of_hides_unreachable_commits(repo, request, store_name):
    store = request.getfixturevalue(store_name)
    latest = recall(store, "pagination cursor last page")
    assert latest[0].memory.sha == repo.shas[4]
    as_of = AsOf.resolve(repo.path, repo.shas[2])
    hits = recall(store, "pagination cursor last page", as_of=as_of)
    assert hits and hits[0].memory.sha == repo.shas[2]
    assert {h.memory.sha for h in hits} <= set(repo.shas[:3])


def test_as_of_hides_a_side_branch(git_repo, tmp_path):
    base = git_repo.commit("widget base", {"w.py": "x = 0\n"})
    git_repo.git("checkout", "-q", "-b", "side")
    side = git_repo.commit("widget frobnicator on the side", {"s.py": "x = 1\n"})
    git_repo.git("checkout", "-q", "main")
    main = git_repo.commit("widget frobnicator on main", {"m.py": "x = 2\n"})
    git_repo.git("merge", "-q", "--no-ff", "-m", "merge side", "side")
    store = MemoryStore(tmp_path / "s")
    mine(git_repo.path, store)
    assert {h.memory.sha for h in recall(store, "widget frobnicator")} >= {base, side, main}
    hits = recall(store, "widget frobnicator", as_of=AsOf.resolve(git_repo.path, main))
    assert {h.memory.sha for h in hits} == {base, main}


def test_empty_store(tmp_path):
    assert recall(MemoryStore(tmp_path / "nothing"), "anything") == []


@pytest.mark.parametrize(
    "query",
    [
        'title:"cursor',
        "cursor AND (page OR",
        "NOT cursor",
        "'; DROP TABLE memories; --",
        'fix "unterminated',
        "path: src/app.py:12: in <module>",
        "a^2 ~ cursor* +page -fix [x TO y] {z}",
        "C:\\Users\\x\\file.py",
        "ünïcödé ✓ 🐍 cursor",
        "cursor " * 500,
    ],
)
@pytest.mark.parametrize("store_name", ["bm25_store", "vector_store"])
def test_odd_queries_do_not_crash(request, store_name, query):
    store = request.getfixturevalue(store_name)
    hits = recall(store, query)
    assert isinstance(hits, list)


@pytest.mark.parametrize("query", ["", "   ", "!!", "a", ":::"])
def test_queries_without_words_return_nothing(bm25_store, query):
    assert recall(bm25_store, query) == []
