"""Recall: the memories most relevant to a query.

BM25 over the full-text index, fused by reciprocal rank with vector search when the
store has vectors. `as_of` hides every memory its revision cannot reach.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .records import Memory
from .revisions import AsOf
from .store import MemoryStore

if TYPE_CHECKING:
    from .knowledge import KnowledgeHit, KnowledgeStore

RRF_K = 60
# The full-text query parser treats some characters as syntax; issue text is not a query
# language, so keep only words.
_QUERY_WORD = re.compile(r"[A-Za-z0-9_]{2,}")
MAX_QUERY_TERMS = 64


@dataclass
class Hit:
    memory: Memory
    score: float
    sources: dict[str, int] = field(default_factory=dict)  # retriever -> 1-based rank


def clean_query(text: str) -> str:
    words = _QUERY_WORD.findall(text)
    seen: dict[str, None] = {}
    for word in words:
        seen.setdefault(word.lower(), None)
    return " ".join(list(seen)[:MAX_QUERY_TERMS])


def _visible(
    fetch, query: str, k: int, as_of: AsOf | None
) -> list[tuple[Memory, float]]:
    """Run one retriever, widening the fetch until k visible results (or no more)."""
    if as_of is None:
        return fetch(query, k, None)
    want = k * 3
    for _ in range(6):
        rows = fetch(query, want, as_of.where_clause())
        kept = [(m, s) for m, s in rows if as_of.visible(m.sha)]
        if len(kept) >= k or len(rows) < want:
            return kept[:k]
        want *= 4
    return kept[:k]


def recall(
    store: MemoryStore, query: str, k: int = 10, as_of: AsOf | None = None
) -> list[Hit]:
    cleaned = clean_query(query)
    if not cleaned:
        return []
    depth = max(k * 2, 20)
    ranked: dict[str, Hit] = {}
    retrievers = {"bm25": store.fts}
    if store.has_vectors and store.embedder is not None:
        retrievers["vector"] = store.nearest
    for name, fetch in retrievers.items():
        text = cleaned if name == "bm25" else query
        for rank, (memory, _score) in enumerate(_visible(fetch, text, depth, as_of), 1):
            hit = ranked.setdefault(memory.sha, Hit(memory, 0.0))
            hit.score += 1.0 / (RRF_K + rank)
            hit.sources[name] = rank
    hits = sorted(ranked.values(), key=lambda h: (-h.score, -h.memory.committed_at))
    return hits[:k]


def recall_knowledge(
    knowledge_store: KnowledgeStore | None, query: str, k: int = 5, as_of: AsOf | None = None
) -> list[KnowledgeHit]:
    """Active approved fixes relevant to a query, beside `recall`'s memories.

    Scores are reciprocal ranks like `recall`'s (BM25 is the only retriever here), so the
    two lists read on one scale. Retracted and superseded records never appear; `as_of`
    hides fixes approved after it or made on a base it cannot reach.
    """
    if knowledge_store is None or not clean_query(query):
        return []
    hits = knowledge_store.search(query, k=k, as_of=as_of)
    for rank, hit in enumerate(hits, 1):
        hit.score = 1.0 / (RRF_K + rank)
        hit.sources = {"bm25": rank}
    return hits
