"""How locate's evidence becomes a ranking: the weights, the per-file score, the result."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Weights:
    """How much each kind of evidence counts. Fitted by coordinate search
    (bench/tune_locate.py) on one half of a set of real issue reports from nine Python
    projects and checked on the other half, then rounded; signals the fit zeroed keep a
    small weight, since one benchmark's reporters are not every project's."""

    trace: float = 0.25  # any traceback frame in the repo (the ends count again below)
    trace_tail: float = 2.66  # the deepest frame in the repo of each traceback
    trace_head: float = 0.5  # the first frame in the repo (the API the reporter called)
    raised: float = 0.5  # code holding the literal text of an error message the issue quotes
    errname: float = 2.0  # files defining the names an error message mentions
    path: float = 3.0  # paths the issue names
    module: float = 0.25  # dotted modules the issue names (often just the reporter's imports)
    definition: float = 1.0  # files defining the names the issue cites
    call: float = 0.5  # files defining what the example calls (through its imports)
    content: float = 1.35  # BM25 of the issue against the whole file
    title: float = 2.66  # BM25 of the title alone against the whole file
    chunk: float = 0.9  # BM25 against the file's best-matching definition
    title_chunk: float = 1.46  # BM25 of the title alone against the file's best definition
    pathname: float = 1.33  # issue words that are the file's own name
    history: float = 1.125  # files changed by past commits similar to the issue
    story: float = 0.5  # BM25 against the subjects of the commits that changed the file
    title_story: float = 2.0  # BM25 of the title alone against the file's story
    knowledge: float = 1.5  # files of approved fixes similar to the issue
    churn: float = 0.65  # how often the file changed
    cochange: float = 0.17  # share of a leading file's commits that also changed this one
    test_penalty: float = 0.35  # multiplier for test files the issue does not cite
    doc_penalty: float = 0.25  # multiplier for non-code files the issue does not cite
    foreign_penalty: float = 0.3  # code in a language other than the repo's main one


@dataclass
class FileHit:
    path: str
    score: float
    why: list[str] = field(default_factory=list)
    signals: dict[str, float] = field(default_factory=dict)
    flags: dict[str, bool] = field(default_factory=dict)


@dataclass
class SymbolHit:
    path: str
    name: str
    line: int
    score: float


@dataclass
class LocateResult:
    files: list[FileHit]
    symbols: list[SymbolHit]

    def to_json(self) -> dict:
        return {
            "files": [
                {"path": f.path, "score": round(f.score, 6), "why": f.why} for f in self.files
            ],
            "symbols": [
                {"path": s.path, "name": s.name, "line": s.line, "score": round(s.score, 6)}
                for s in self.symbols
            ],
        }



def score_file(signals: dict[str, float], flags: dict[str, bool], w: Weights) -> float:
    """Weighted evidence, damped for files an issue rarely means unless it cites them."""
    score = sum(getattr(w, name) * value for name, value in signals.items())
    if not flags["cited"]:
        if flags["test"]:
            score *= w.test_penalty
        elif not flags["code"]:
            score *= w.doc_penalty
        elif flags["foreign"]:
            score *= w.foreign_penalty
    return score
