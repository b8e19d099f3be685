"""A small in-process BM25 over term-count documents (files' token bags).

Postings are built once per document set; scoring touches only the query's terms, so
one query over a few thousand files costs milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


class BM25:
    def __init__(self, docs: Mapping[str, Mapping[str, int]], k1: float = 1.2, b: float = 0.75):
        self.k1 = k1
        self.b = b
        self.names = list(docs)
        self.lengths = [sum(docs[n].values()) for n in self.names]
        self.avg_length = (sum(self.lengths) / len(self.lengths)) if self.lengths else 1.0
        self.postings: dict[str, list[tuple[int, int]]] = {}
        for i, name in enumerate(self.names):
            for term, count in docs[name].items():
                self.postings.setdefault(term, []).append((i, count))

    def idf(self, term: str) -> float:
        n = len(self.names)
        df = len(self.postings.get(term, ()))
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def scores(self, query: Mapping[str, float]) -> dict[str, float]:
        """BM25 score of each document matching at least one term; query maps term->weight."""
        acc: dict[int, float] = {}
        k1, b, avg = self.k1, self.b, self.avg_length or 1.0
        for term, weight in query.items():
            postings = self.postings.get(term)
            if not postings:
                continue
            idf = self.idf(term) * weight
            for i, tf in postings:
                norm = tf + k1 * (1 - b + b * self.lengths[i] / avg)
                acc[i] = acc.get(i, 0.0) + idf * tf * (k1 + 1) / norm
        return {self.names[i]: s for i, s in acc.items()}
