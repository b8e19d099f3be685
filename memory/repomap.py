"""A ranked map of a repository: which files matter most, and what they define.

Files form a graph: an edge A -> B for each name A references that B defines, weighted by
how often A uses it and how specific the name is (a name defined in many files says little).
PageRank over that graph, optionally personalized towards files in focus, ranks files;
`render_map` lists the best-ranked files with their definitions' signature lines until a
token budget is used up. `pagerank` is also a prior for localization.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from evoagent.memory.codeindex import Definition, RevisionIndex

DAMPING = 0.85
# Share of the teleport mass spread over all files when a personalization is given, so
# files unreachable from the focus still get a non-zero rank.
UNIFORM_FLOOR = 0.1
FOCUS_NAME_BOOST = 10.0
# A name defined in more files than this is generic (main, run, app) and weighs less.
COMMON_NAME_FILES = 5


def estimate_tokens(text: str) -> int:
    return (len(text) + 3) // 4


@dataclass
class _Graph:
    paths: list[str]
    src: list[int]
    dst: list[int]
    weight: list[float]
    name: list[str]


def _name_weight(name: str, definers: int, focus_names: set[str]) -> float:
    weight = 1.0
    if name in focus_names:
        weight *= FOCUS_NAME_BOOST
    if name.startswith("_") or len(name) < 3:
        weight *= 0.1
    if definers > COMMON_NAME_FILES:
        weight *= 0.1
    return weight / definers


def _build_graph(index: RevisionIndex, focus_names: set[str]) -> _Graph:
    paths = sorted(index.files)
    position = {path: i for i, path in enumerate(paths)}
    definers: dict[str, list[int]] = {}
    for name, entries in index.definitions_by_name().items():
        definers[name] = sorted({position[path] for path, _ in entries})
    graph = _Graph(paths, [], [], [], [])
    for path in paths:
        source = position[path]
        for name, count in index.files[path].references.items():
            targets = definers.get(name)
            if not targets:
                continue
            weight = _name_weight(name, len(targets), focus_names) * math.sqrt(count)
            for target in targets:
                if target != source:
                    graph.src.append(source)
                    graph.dst.append(target)
                    graph.weight.append(weight)
                    graph.name.append(name)
    return graph


def _teleport(paths: list[str], personalization: Mapping[str, float] | None):
    import numpy as np

    n = len(paths)
    uniform = np.full(n, 1.0 / n)
    if not personalization:
        return uniform
    focus = np.array([max(personalization.get(path, 0.0), 0.0) for path in paths])
    if focus.sum() <= 0:
        return uniform
    return UNIFORM_FLOOR * uniform + (1 - UNIFORM_FLOOR) * focus / focus.sum()


def _pagerank(graph: _Graph, personalization: Mapping[str, float] | None):
    """Ranks (summing to 1) and each edge's share of rank flow."""
    import numpy as np

    n = len(graph.paths)
    teleport = _teleport(graph.paths, personalization)
    src = np.array(graph.src, dtype=np.int64)
    dst = np.array(graph.dst, dtype=np.int64)
    weight = np.array(graph.weight, dtype=np.float64)
    out = np.bincount(src, weights=weight, minlength=n)
    dangling = out == 0
    share = weight / out[src] if len(src) else weight
    rank = teleport.copy()
    for _ in range(100):
        flow = np.bincount(dst, weights=rank[src] * share, minlength=n)
        new = (1 - DAMPING) * teleport + DAMPING * (flow + rank[dangling].sum() * teleport)
        done = np.abs(new - rank).sum() < 1e-10
        rank = new
        if done:
            break
    return rank, rank[src] * share if len(src) else share


def pagerank(
    index: RevisionIndex,
    personalization: Mapping[str, float] | None = None,
    focus_names: Iterable[str] = (),
) -> dict[str, float]:
    """Path -> rank (sums to 1) for every file in the index.

    `personalization` maps paths to weights (files named in an issue or chat); references
    to `focus_names` count FOCUS_NAME_BOOST times more.
    """
    if not index.files:
        return {}
    graph = _build_graph(index, set(focus_names))
    rank, _ = _pagerank(graph, personalization)
    return {path: float(r) for path, r in zip(graph.paths, rank, strict=True)}


def render_map(
    index: RevisionIndex,
    budget_tokens: int = 1024,
    focus_paths: Iterable[str] = (),
    focus_names: Iterable[str] = (),
) -> str:
    """Best-ranked files with their definitions' signature lines, within `budget_tokens`."""
    if not index.files or budget_tokens <= 0:
        return ""
    focus_paths = [p for p in focus_paths if p in index.files]
    names = set(focus_names)
    personalization = dict.fromkeys(focus_paths, 1.0)
    for name in names:
        for path, _ in index.definitions_named(name):
            personalization[path] = personalization.get(path, 0.0) + 0.5
    graph = _build_graph(index, names)
    rank, flows = _pagerank(graph, personalization)
    # A definition's score is the rank flowing into its file through its name.
    scores: dict[tuple[str, str], float] = {}
    for target, name, flow in zip(graph.dst, graph.name, flows, strict=True):
        key = (graph.paths[target], name)
        scores[key] = scores.get(key, 0.0) + float(flow)
    order = sorted(range(len(graph.paths)), key=lambda i: (-rank[i], graph.paths[i]))

    budget_chars = budget_tokens * 4
    blocks: list[str] = []
    used = 0
    for i in order:
        path = graph.paths[i]
        definitions = _shown(index.files[path].definitions)
        if not definitions and path not in focus_paths:
            continue
        for limit in (30, 10, 3, 0):
            block = _block(path, definitions, scores, names, limit)
            if used + len(block) <= budget_chars:
                blocks.append(block)
                used += len(block)
                break
        else:
            break
    return "".join(blocks).rstrip("\n")


def _shown(definitions: list[Definition]) -> list[Definition]:
    """Top-level definitions and the methods directly inside them; nested helpers are left out."""
    return [d for d in definitions if d.depth == 0 or (d.kind == "method" and d.depth == 1)]


def _block(
    path: str,
    definitions: list[Definition],
    scores: Mapping[tuple[str, str], float],
    focus_names: set[str],
    limit: int,
) -> str:
    chosen = definitions
    if len(definitions) > limit:

        def score(d: Definition) -> tuple[bool, float, bool, int]:
            return (d.name in focus_names, scores.get((path, d.name), 0.0), d.depth == 0, -d.line)

        chosen = sorted(definitions, key=score, reverse=True)[:limit]
        containers = {d.container for d in chosen if d.depth}
        chosen += [d for d in definitions if d.depth == 0 and d.name in containers]
        unique = {id(d): d for d in chosen}
        chosen = sorted(unique.values(), key=lambda d: d.line)
    lines = [f"{path}:"]
    lines += ["  " * (d.depth + 1) + d.signature for d in chosen]
    if len(chosen) < len(definitions):
        lines.append("  ⋮")
    return "\n".join(lines) + "\n\n"
