"""Fuzzy file matching for the `@` finder: a subsequence match scored for contiguous runs,
word starts and the file name, fast enough for tens of thousands of paths."""

from __future__ import annotations

SEPARATORS = "/_-. "


def score(query: str, path: str) -> float | None:
    """Higher is better; None when `query`'s characters are not a subsequence of `path`."""
    if not query:
        return 0.0
    q, p = query.lower(), path.lower()
    name_start = p.rfind("/") + 1
    total = 0.0
    position = -1
    previous = -2
    for char in q:
        position = p.find(char, position + 1)
        if position < 0:
            return None
        bonus = 1.0
        if position == previous + 1:
            bonus += 2.0
        if position == 0 or p[position - 1] in SEPARATORS:
            bonus += 1.5
        if position >= name_start:
            bonus += 1.0
        total += bonus
        previous = position
    if q in p[name_start:]:
        total += 3.0 * len(q)
    return total - 0.01 * len(path)


def rank(query: str, paths: list[str], limit: int = 50) -> list[str]:
    scored = [(s, path) for path in paths if (s := score(query, path)) is not None]
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [path for _, path in scored[:limit]]
