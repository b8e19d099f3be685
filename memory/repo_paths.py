"""Repository paths as issues mention them: suffix matching, dotted modules, code files."""

from __future__ import annotations

from collections import defaultdict
from pathlib import PurePosixPath

_CODE_EXT = {
    ".py", ".pyi", ".pyx", ".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".go", ".rs", ".java",
    ".kt", ".c", ".h", ".cc", ".cpp", ".hpp", ".rb", ".php", ".scala", ".swift", ".cs",
}


def is_code_path(path: str) -> bool:
    return PurePosixPath(path).suffix in _CODE_EXT


class PathResolver:
    """Map a path-ish string from an issue (absolute, site-packages, partial) to repo files."""

    def __init__(self, paths: list[str]):
        self.by_name: dict[str, list[str]] = defaultdict(list)
        for p in paths:
            self.by_name[PurePosixPath(p).name].append(p)

    def resolve(self, raw: str) -> list[tuple[str, int]]:
        """Candidate files with how many trailing path components match (best first)."""
        parts = [p for p in raw.replace("\\", "/").split("/") if p and p != "."]
        if not parts:
            return []
        candidates = self.by_name.get(parts[-1], [])
        scored = []
        for cand in candidates:
            cparts = cand.split("/")
            n = 0
            while n < min(len(parts), len(cparts)) and parts[-1 - n] == cparts[-1 - n]:
                n += 1
            scored.append((cand, n))
        if not scored:
            return []
        best = max(n for _, n in scored)
        return [(c, n) for c, n in scored if n == best]

    def module(self, dotted: str) -> tuple[str, list[str]] | None:
        """`pkg.mod.Class.meth` -> ('pkg/mod.py', ['Class', 'meth']) for the longest module prefix."""
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            stem = "/".join(parts[:cut])
            for suffix in (".py", "/__init__.py", ".pyi"):
                hits = self.resolve(stem + suffix)
                exact = [c for c, n in hits if n >= min(cut + (suffix == "/__init__.py"), 2) or n == len(c.split("/"))]
                if len(exact) == 1 and cut >= 2:
                    return exact[0], parts[cut:]
        return None
