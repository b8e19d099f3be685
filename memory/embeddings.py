"""Pluggable, optional embeddings for memory search.

Embedding functions are LanceDB embedding functions, so any of LanceDB's own (or one a
team registers) can be used. evoagent adds two: `evoagent-hash`, a tiny deterministic
hashing embedder that needs no weights (tests, offline smoke runs), and
`evoagent-litellm`, which calls any litellm embedding model. A local
sentence-transformers model is LanceDB's built-in `sentence-transformers` given a path.

Spec strings (config `embedding = ...`): "none" | "hash[:DIM]" | "litellm:MODEL" |
"st:/path/to/model". Nothing here downloads weights.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from .errors import MemoryUserError

_WORD = re.compile(r"[A-Za-z0-9_]+")


@dataclass
class Embedder:
    """A configured embedding function and the spec it came from (stored with the table,
    so a store never mixes vectors from two models)."""

    spec: str
    fn: Any

    def ndims(self) -> int:
        return int(self.fn.ndims())

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [list(map(float, v)) for v in self.fn.compute_source_embeddings(texts)]

    def embed_query(self, query: str) -> list[float]:
        return list(map(float, self.fn.compute_query_embeddings(query)[0]))


class EmbeddingSpecError(MemoryUserError, ValueError):
    pass


def hash_embed(text: str, dims: int) -> list[float]:
    """Feature-hashing of words and word bigrams, L2-normalised. Deterministic."""
    vec = [0.0] * dims
    words = [w.lower() for w in _WORD.findall(text)]
    grams = words + [a + " " + b for a, b in zip(words, words[1:], strict=False)]
    for gram in grams:
        digest = hashlib.blake2b(gram.encode(), digest_size=8).digest()
        bucket = int.from_bytes(digest[:4], "little") % dims
        sign = 1.0 if digest[4] & 1 else -1.0
        vec[bucket] += sign
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [v / norm for v in vec]


@cache
def _registered() -> Any:
    """Register evoagent's embedding functions with LanceDB once, on first use."""
    from lancedb.embeddings import TextEmbeddingFunction, get_registry, register

    @register("evoagent-hash")
    class HashEmbeddings(TextEmbeddingFunction):
        dims: int = 64

        def ndims(self) -> int:
            return self.dims

        def generate_embeddings(self, texts):
            return [hash_embed(t, self.dims) for t in texts]

    @register("evoagent-litellm")
    class LiteLLMEmbeddings(TextEmbeddingFunction):
        model: str
        _dims: int | None = None

        def ndims(self) -> int:
            if self._dims is None:
                self._dims = len(self.generate_embeddings(["dimension probe"])[0])
            return self._dims

        def generate_embeddings(self, texts):
            import os

            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            import litellm

            response = litellm.embedding(model=self.model, input=list(texts))
            return [item["embedding"] for item in response.data]

    return get_registry()


def make_embedder(spec: str | None) -> Embedder | None:
    """Build an embedding function from a spec string; None means no vectors."""
    spec = (spec or "none").strip()
    if spec in ("", "none"):
        return None
    kind, _, arg = spec.partition(":")
    registry = _registered()
    if kind == "hash" and (arg or "64").isdigit() and int(arg or 64) > 0:
        fn = registry.get("evoagent-hash").create(dims=int(arg or 64))
    elif kind == "litellm" and arg:
        fn = registry.get("evoagent-litellm").create(model=arg)
    elif kind == "st" and arg:
        fn = registry.get("sentence-transformers").create(name=arg, device="cpu")
    else:
        raise EmbeddingSpecError(
            f"unknown embedding {spec!r}: use none, hash[:DIM], litellm:MODEL or st:/path/to/model"
        )
    return Embedder(spec=spec, fn=fn)
