"""Localization without a model: rank the files and symbols an issue needs changed.

Evidence is gathered from five independent places and fused per file:

- the issue itself: traceback frames (the deepest and the first count again), paths (also
  inside links), dotted module names, code names it cites, the error messages it quotes
  (looked up as literal text in the code) and the calls of its examples (resolved through
  their imports and assignments);
- the code at the revision: which files define the cited names, and BM25 of the issue's
  words against each file's token bag (paths count as words too);
- the history the revision can reach: past commits similar to the issue, and the files
  they changed (what was wanted -> where it landed);
- knowledge: active fixes a person approved that match the issue, and their files;
- priors: how often a file changed, test files and docs weighed down unless cited; files
  that usually change together with the leading ones.

Each signal is normalised to [0, 1] over the candidate files and mixed with fixed
weights (`Weights`), so every file's score can be explained by its `why` list.
"""

from __future__ import annotations

import math
import re
import subprocess
from collections import Counter, defaultdict
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from .bm25 import BM25
from .codeindex import MODULE_CHUNK, CodeIndex, RevisionIndex, token_bag
from .commit_names import is_test_path
from .issue_evidence import IssueEvidence, extract, looks_like_code_name, message_fragments
from .locate_scoring import FileHit, LocateResult, SymbolHit, Weights, score_file
from .repo_paths import PathResolver, is_code_path
from .revisions import AsOf
from .search import clean_query
from .store import MemoryStore

if TYPE_CHECKING:
    from .knowledge import KnowledgeStore

# Signals whose raw value already means the same across issues (a cited path is a cited
# path); the others are relative and scaled to the best file of each query.
ABSOLUTE_SIGNALS = ("trace", "trace_tail", "trace_head", "path", "module", "definition", "raised", "errname", "call")
HISTORY_DEPTH = 60
RERANK_DEPTH = 100
STORY_COMMITS = 200  # latest commit subjects that make up a file's story  # files whose definitions are scored one by one  # similar past commits considered
KNOWLEDGE_DEPTH = 20  # matching approved fixes considered
MAX_DEFINING_FILES = 8  # a name defined in more files than this says little about where
MAX_RAISING_FILES = 5  # an error message found in more files than this is a common phrase
MAX_MESSAGES = 3  # error messages of an issue looked up in the code (the last ones)
COCHANGE_SEEDS = 3  # leading files whose usual companions are looked up


def _normalise(values: dict[str, float]) -> dict[str, float]:
    top = max(values.values(), default=0.0)
    if top <= 0:
        return {}
    return {k: v / top for k, v in values.items() if v > 0}


class Locator:
    """Ranks files of one revision for issue texts. Build once, query many times."""

    def __init__(
        self,
        index: RevisionIndex,
        store: MemoryStore | None = None,
        as_of: AsOf | None = None,
        weights: Weights | None = None,
        knowledge: KnowledgeStore | None = None,
        repo: Path | str | None = None,
    ):
        self.index = index
        # The repository (for looking error messages up in the code); as_of knows it too.
        self.repo = Path(repo) if repo else (as_of.repo if as_of is not None else None)
        self.store = store
        self.knowledge = knowledge
        self.as_of = as_of
        self.weights = weights or Weights()
        self.paths = sorted(index.files)
        self.resolver = PathResolver(self.paths)
        docs = {}
        for path, symbols in index.files.items():
            bag = Counter(symbols.tokens)
            for part in token_bag(path.replace("/", " ").replace(".", " ")):
                bag[part] += 3  # a file's path is strong evidence of what it is about
            docs[path] = bag
        self.bm25 = BM25(docs)
        self._churn: dict[str, int] | None = None
        self._stems: dict[str, set[str]] | None = None
        self._stories: BM25 | None = None
        self._stem_idf: dict[str, float] = {}
        self._commits_of: dict[str, list[int]] | None = None
        self._commit_files: list[list[str]] = []
        langs = Counter(s.lang for s in index.files.values() if s.lang != "text")
        self.main_language = langs.most_common(1)[0][0] if langs else None

    def _foreign(self, path: str) -> bool:
        symbols = self.index.files.get(path)
        return bool(symbols and self.main_language and symbols.lang not in ("text", self.main_language))

    # -- signals ----------------------------------------------------------------------

    def _trace_signal(self, ev: IssueEvidence, why: dict[str, list[str]]) -> dict[str, float]:
        scores: dict[str, float] = defaultdict(float)
        matched = []
        for frame in ev.frames:
            for cand, n in self.resolver.resolve(frame.path):
                if n == 0:
                    continue
                matched.append((frame, cand))
        if not matched:
            return {}
        last = max(f.depth for f, _ in matched)
        ambiguity = Counter(id(f) for f, _ in matched)
        for frame, cand in matched:
            weight = (1.0 + (0.5 if frame.depth == last else 0.0)) / ambiguity[id(frame)]
            scores[cand] = min(2.0, scores[cand] + weight)
            where = f" in {frame.function}" if frame.function else ""
            why[cand].append(f"traceback: line {frame.line}{where}")
        return dict(scores)

    def _trace_ends(self, ev: IssueEvidence) -> tuple[dict[str, float], dict[str, float]]:
        """The deepest frame in the repo of each traceback (where it failed) and the first
        one of the issue (the API the reporter called): each names one file more surely
        than the frames between."""
        matched = []
        for frame in ev.frames:
            hits = [c for c, n in self.resolver.resolve(frame.path) if n > 0]
            if hits:
                matched.append((frame.depth, frame.block, hits))
        if not matched:
            return {}, {}
        matched.sort(key=lambda m: m[0])
        deepest: dict[int, list[str]] = {}
        for _, block, hits in matched:
            deepest[block] = hits  # the last one of each block wins
        tail: dict[str, float] = {}
        for hits in deepest.values():
            for c in hits:
                tail[c] = max(tail.get(c, 0.0), 1.0 / len(hits))
        head = {c: 1.0 / len(matched[0][2]) for c in matched[0][2]}
        return tail, head

    def _raised_signal(self, ev: IssueEvidence, why: dict[str, list[str]]) -> dict[str, float]:
        """Files whose code holds the literal text of an error message the issue quotes:
        where `raise X("...")` says it is where the failure was noticed."""
        if self.repo is None or not ev.errors:
            return {}
        fragments: list[str] = []
        for _, message in reversed(ev.errors):
            found = message_fragments(message)
            if found and found[0] not in fragments:
                fragments.append(found[0])
            if len(fragments) >= MAX_MESSAGES:
                break
        scores: dict[str, float] = defaultdict(float)
        for fragment in fragments:
            files = [p for p in self._grep(fragment) if p in self.index.files]
            if not files or len(files) > MAX_RAISING_FILES:
                continue
            for path in files:
                scores[path] = max(scores[path], 1.0 / len(files))
                why[path].append(f"raises the message: {fragment[:60]}")
        return dict(scores)

    def _grep(self, fragment: str) -> list[str]:
        rev = self.index.commit  # the code being ranked (on a Ray worker: its copy's commit)
        try:
            out = subprocess.run(
                ["git", "-C", str(self.repo), "grep", "-F", "-I", "-l", "-z", "-e", fragment, rev, "--"],
                capture_output=True, timeout=20,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return []
        prefix = f"{rev}:".encode()
        return [p[len(prefix):].decode(errors="replace") for p in out.split(b"\0") if p.startswith(prefix)]

    def _errname_signal(self, ev: IssueEvidence, why: dict[str, list[str]]) -> dict[str, float]:
        """Files defining the code names an error message mentions (`RST.__init__() got an
        unexpected keyword` -> the file defining RST): the object that failed."""
        scores: dict[str, float] = defaultdict(float)
        for _, message in ev.errors:
            for m in re.finditer(r"([A-Za-z_]\w*)\.([A-Za-z_]\w*)|([A-Za-z_]\w*)", message):
                if m.group(1):
                    owner, member = m.group(1), m.group(2)
                    files = {p for p, d in self.index.definitions_named(member) if d.container == owner}
                    if not files:
                        files = {p for p, _ in self.index.definitions_named(owner)}
                    name = f"{owner}.{member}"
                else:
                    name = m.group(3)
                    if not looks_like_code_name(name):
                        continue
                    files = {p for p, _ in self.index.definitions_named(name)}
                if 0 < len(files) <= MAX_DEFINING_FILES:
                    for path in files:
                        if scores[path] < 1.0 / len(files):
                            scores[path] = 1.0 / len(files)
                            why[path].append(f"defines {name} (in the error message)")
        return dict(scores)

    def _path_signal(self, ev: IssueEvidence, why: dict[str, list[str]]) -> dict[str, float]:
        scores: dict[str, float] = defaultdict(float)
        for raw in ev.paths:
            hits = self.resolver.resolve(raw)
            for cand, n in hits:
                if n == 0:
                    continue
                # A bare file name ("index.rst", "conf.py") is often the reporter's own
                # file; a path with folders that match is the project's.
                strength = 1.0 if n >= 2 else 0.6
                scores[cand] = min(1.0, scores[cand] + strength / len(hits))
                why[cand].append(f"named in the issue: {raw}")
        return dict(scores)

    def _module_signal(
        self, ev: IssueEvidence, why: dict[str, list[str]], cited: dict[str, set[str]]
    ) -> dict[str, float]:
        scores: dict[str, float] = defaultdict(float)
        for dotted in ev.dotted:
            found = self.resolver.module(dotted)
            if not found:
                continue
            path, rest = found
            scores[path] = 1.0
            if rest:
                cited[path].add(rest[0])
            why[path].append(f"module cited: {dotted}")
        return dict(scores)

    def _definition_signal(
        self, ev: IssueEvidence, why: dict[str, list[str]], cited: dict[str, set[str]]
    ) -> dict[str, float]:
        scores: dict[str, float] = defaultdict(float)
        for name, strength in ev.names.items():
            defs = self.index.definitions_named(name)
            files = {p for p, _ in defs}
            if not files or len(files) > MAX_DEFINING_FILES:
                continue
            share = strength / len(files)
            for path in files:
                scores[path] += share
                cited[path].add(name)
        # `Owner.member` pins a member that many files define to the one its owner defines.
        for dotted in ev.dotted:
            parts = dotted.split(".")
            for owner, member in zip(parts, parts[1:], strict=False):
                files = {p for p, d in self.index.definitions_named(member) if d.container == owner}
                if 0 < len(files) <= MAX_DEFINING_FILES:
                    for path in files:
                        scores[path] += 2.0 / len(files)
                        cited[path].add(f"{owner}.{member}")
        # Saturate: a name cited once in prose is a hint, one in code and the title is
        # strong, and ten weak hints do not make a certainty.
        scores = defaultdict(float, {p: v / (v + 2.0) for p, v in scores.items()})
        for path, names in cited.items():
            if path in scores:
                why[path].append("defines " + ", ".join(sorted(names)[:5]))
        return dict(scores)

    def _call_signal(self, ev: IssueEvidence, why: dict[str, list[str]]) -> dict[str, float]:
        """Files defining what the issue's example calls: `xr.merge(` after `import xarray
        as xr` is a top-level `merge`; `ds.sel(` after `ds = Dataset(` is `Dataset.sel`."""
        scores: dict[str, float] = defaultdict(float)
        for kind, owner, member in ev.calls:
            defs = self.index.definitions_named(member)
            if kind == "module":
                files = {p for p, d in defs if d.container is None}
            else:
                files = {p for p, d in defs if d.container == owner}
            if not files or len(files) > MAX_DEFINING_FILES:
                continue
            label = f"{owner}.{member}" if kind == "type" else member
            for path in files:
                scores[path] += 1.0 / len(files)
                why[path].append(f"defines {label} (called in the example)")
        return {p: v / (v + 1.0) for p, v in scores.items()}

    def _content_signal(self, ev: IssueEvidence) -> dict[str, float]:
        return self.bm25.scores(self._content_query(ev))

    def _content_query(self, ev: IssueEvidence) -> dict[str, float]:
        query = token_bag(ev.body or ev.text)
        query.update(token_bag(ev.title))  # the title says what the issue is about: count it twice
        for name, strength in ev.names.items():
            query[name.lower()] += strength
        # Damp repetition: a word said ten times is not ten times the evidence.
        return {t: 1.0 + math.log(c) for t, c in query.items()}

    def _title_query(self, ev: IssueEvidence) -> dict[str, float]:
        """The title alone: one line that says what is wrong, before the examples and
        output that make up most of an issue's words."""
        return {t: 1.0 for t in token_bag(ev.title)}

    def _pathname_signal(self, ev: IssueEvidence) -> dict[str, float]:
        """Issue words that name a file: `mathematica` -> printing/mathematica.py.

        A file is named by its stem (its folder for __init__/index files); words that are
        the stem of many files (utils, core, base) count for little.
        """
        if self._stems is None:
            self._stems = {}
            df: Counter = Counter()
            for path in self.paths:
                p = PurePosixPath(path)
                stem = p.parent.name if p.stem in ("__init__", "index", "mod", "main") else p.stem
                parts = set(token_bag(stem)) | {stem.lower()}
                self._stems[path] = parts
                df.update(parts)
            n = len(self.paths) or 1
            self._stem_idf = {t: math.log(1 + n / c) for t, c in df.items()}
        words = ev.naming | {n.lower() for n in ev.names}
        scores = {}
        for path, parts in self._stems.items():
            hit = parts & words
            if hit:
                scores[path] = sum(self._stem_idf[t] for t in hit) / len(parts)
        return scores

    def _history_signal(self, ev: IssueEvidence, why: dict[str, list[str]]) -> dict[str, float]:
        if self.store is None or self.store.count() == 0:
            return {}
        from .search import _visible

        names = " ".join(n for n, _ in ev.names.most_common(20))
        query = clean_query(ev.title + " " + names + " " + " ".join(ev.words))
        rows = _visible(self.store.fts, query, HISTORY_DEPTH, self.as_of)
        scores: dict[str, float] = defaultdict(float)
        examples: dict[str, list[str]] = defaultdict(list)
        known = self.index.files
        for memory, score in rows:
            targets = [f.path for f in memory.files if f.path in known]
            if not targets or len(memory.files) > 50:
                continue
            share = score / math.sqrt(len(targets))
            for path in targets:
                scores[path] += share
                if len(examples[path]) < 2:
                    examples[path].append(f"{memory.sha[:8]} {memory.subject[:70]}")
        for path, shas in examples.items():
            why[path].append("changed by similar commits: " + "; ".join(shas))
        return dict(scores)

    def _knowledge_signal(self, ev: IssueEvidence, why: dict[str, list[str]]) -> dict[str, float]:
        """Files of active approved fixes similar to the issue (as of the revision)."""
        if self.knowledge is None:
            return {}
        names = " ".join(n for n, _ in ev.names.most_common(20))
        query = clean_query(ev.title + " " + names + " " + " ".join(ev.words))
        scores: dict[str, float] = defaultdict(float)
        known = self.index.files
        for hit in self.knowledge.search(query, KNOWLEDGE_DEPTH, self.as_of):
            record = hit.knowledge
            targets = [p for p in record.files if p in known]
            if not targets:
                continue
            share = hit.score / math.sqrt(len(targets))
            for path in targets:
                scores[path] += share
                why[path].append(f"approved fix {record.id}: {record.intent[:70]}")
        return dict(scores)

    def _file_story_signal(self, ev: IssueEvidence, title: bool = False) -> dict[str, float]:
        """BM25 of the issue against each file's story: the subjects of the commits that
        changed it (the latest STORY_COMMITS), as of the revision. A file whose past
        changes were about "lambdify" or "latex printing" is where such issues land."""
        if self.store is None or self.store.count() == 0:
            return {}
        if self._stories is None:
            stories: dict[str, list[str]] = defaultdict(list)
            for sha, paths, subject in reversed(self.store.file_history()):
                if self.as_of is not None and not self.as_of.visible(sha):
                    continue
                if len(paths) > 50:  # sweeping changes say nothing about any one file
                    continue
                for path in paths:
                    if path in self.index.files and len(stories[path]) < STORY_COMMITS:
                        stories[path].append(subject)
            self._stories = BM25({p: token_bag(" ".join(s)) for p, s in stories.items()})
        return self._stories.scores(self._title_query(ev) if title else self._content_query(ev))

    def _churn_signal(self) -> dict[str, float]:
        if self._churn is None:
            self._churn = {}
            if self.store is not None and self.store.count():
                counts: Counter = Counter()
                for sha, paths, _ in self.store.file_history():
                    if self.as_of is not None and not self.as_of.visible(sha):
                        continue
                    counts.update(paths)
                self._churn = {p: math.log1p(c) for p, c in counts.items() if p in self.index.files}
        return self._churn

    # -- ranking ----------------------------------------------------------------------

    def locate(self, text: str, k: int = 10) -> LocateResult:
        ev, hits, cited = self.candidates(text)
        hits.sort(key=lambda h: (-h.score, h.path))
        top = hits[:k]
        return LocateResult(top, self._symbols(top, ev, cited, k))

    def candidates(self, text: str) -> tuple[IssueEvidence, list[FileHit], dict[str, set[str]]]:
        """Every file with any evidence, scored but unsorted (benchmarks re-weigh these)."""
        ev = extract(text)
        w = self.weights
        why: dict[str, list[str]] = defaultdict(list)
        cited: dict[str, set[str]] = defaultdict(set)
        tail, head = self._trace_ends(ev)
        raw = {
            "trace": self._trace_signal(ev, why),
            "trace_tail": tail,
            "trace_head": head,
            "raised": self._raised_signal(ev, why),
            "errname": self._errname_signal(ev, why),
            "path": self._path_signal(ev, why),
            "module": self._module_signal(ev, why, cited),
            "definition": self._definition_signal(ev, why, cited),
            "call": self._call_signal(ev, why),
            "content": self._content_signal(ev),
            "title": self.bm25.scores(self._title_query(ev)),
            "title_story": self._file_story_signal(ev, title=True),
            "pathname": self._pathname_signal(ev),
            "history": self._history_signal(ev, why),
            "story": self._file_story_signal(ev),
            "knowledge": self._knowledge_signal(ev, why),
            "churn": self._churn_signal(),
        }
        # Explicit evidence keeps its absolute strength (one unambiguous mention is worth
        # the same whatever else the issue says); graded evidence is scaled to its best file.
        norm = {
            name: (values if name in ABSOLUTE_SIGNALS else _normalise(values))
            for name, values in raw.items()
        }
        explicit = {p for p, v in norm["trace"].items() if v >= 0.5}
        explicit |= {p for p, v in norm["path"].items() if v >= 0.75}
        candidates = set().union(*(set(v) for k_, v in norm.items() if k_ != "churn"))
        hits = []
        for path in candidates:
            signals = {name: values.get(path, 0.0) for name, values in norm.items()}
            flags = {
                "cited": path in explicit,
                "test": is_test_path(path),
                "code": is_code_path(path),
                "foreign": self._foreign(path),
            }
            reasons = why.get(path, [])
            if signals["content"] > 0.3 and len(reasons) < 4:
                reasons = reasons + [f"text matches (bm25 {signals['content']:.2f} of best)"]
            hits.append(FileHit(path, score_file(signals, flags, w), reasons, signals, flags))
        self._rerank_by_chunks(ev, hits)
        self._cochange(hits)
        return ev, hits, cited

    def _cochange(self, hits: list[FileHit]) -> None:
        """Third stage: files that usually change together with the leading ones.

        A fix often spans a module and its companion (a class and its printer, a parser and
        its table); how often a file changed in the commits that changed a leading file,
        as a share of those commits, is evidence that it belongs to the same fix."""
        commits_of = self._cochange_index()
        if not commits_of:
            return
        top = sorted(hits, key=lambda h: (-h.score, h.path))[:COCHANGE_SEEDS]
        together: Counter = Counter()
        for seed in top:
            commits = commits_of.get(seed.path, [])
            if len(commits) < 2:
                continue
            counts: Counter = Counter()
            for i in commits:
                counts.update(self._commit_files[i])
            for path, c in counts.items():
                if path != seed.path:
                    together[path] = max(together[path], c / len(commits))
        if not together:
            return
        w = self.weights
        for hit in hits:
            value = together.get(hit.path, 0.0)
            if value:
                hit.signals["cochange"] = value
                hit.score = score_file(hit.signals, hit.flags, w)

    def _cochange_index(self) -> dict[str, list[int]]:
        if self._commits_of is None:
            self._commits_of = defaultdict(list)
            if self.store is not None and self.store.count():
                for sha, paths, _ in self.store.file_history():
                    if len(paths) > 20 or (self.as_of is not None and not self.as_of.visible(sha)):
                        continue
                    known = [p for p in paths if p in self.index.files]
                    if len(known) < 2:
                        continue
                    for path in known:
                        self._commits_of[path].append(len(self._commit_files))
                    self._commit_files.append(known)
        return self._commits_of

    def _rerank_by_chunks(self, ev: IssueEvidence, hits: list[FileHit]) -> None:
        """Second stage: score the functions and classes of the leading files.

        A big file's whole-file BM25 is diluted by everything else in it; its best-matching
        definition is not. Only the top files are read, so this stays cheap."""
        top = sorted(hits, key=lambda h: (-h.score, h.path))[:RERANK_DEPTH]
        chunks = self.index.chunks_for([h.path for h in top])
        if not chunks:
            return
        lengths = [sum(c.tokens.values()) for _, c in chunks]
        avg = (sum(lengths) / len(lengths)) or 1.0
        k1, b = self.bm25.k1, self.bm25.b

        def best_chunks(query: dict[str, float]) -> dict[str, tuple[float, str]]:
            idf = {t: self.bm25.idf(t) * weight for t, weight in query.items()}
            best: dict[str, tuple[float, str]] = {}
            for (path, chunk), length in zip(chunks, lengths, strict=True):
                score = 0.0
                for term, term_idf in idf.items():
                    tf = chunk.tokens.get(term)
                    if tf:
                        score += term_idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avg))
                if score > best.get(path, (0.0, ""))[0]:
                    best[path] = (score, chunk.name)
            return best

        best = best_chunks(self._content_query(ev))
        norm = _normalise({p: s for p, (s, _) in best.items()})
        by_title = _normalise({p: s for p, (s, _) in best_chunks(self._title_query(ev)).items()})
        w = self.weights
        for hit in top:
            value = norm.get(hit.path, 0.0)
            hit.signals["chunk"] = value
            hit.signals["title_chunk"] = by_title.get(hit.path, 0.0)
            hit.score = score_file(hit.signals, hit.flags, w)
            if value > 0.5 and best[hit.path][1] != MODULE_CHUNK:
                hit.why.append(f"best matching definition: {best[hit.path][1]}")

    def _symbols(
        self, files: list[FileHit], ev: IssueEvidence, cited: dict[str, set[str]], k: int
    ) -> list[SymbolHit]:
        words = set(ev.words)
        frame_funcs = {f.function for f in ev.frames if f.function}
        out: list[SymbolHit] = []
        for hit in files:
            symbols = self.index.files.get(hit.path)
            if symbols is None:
                continue
            for d in symbols.definitions:
                strength = 0.0
                if d.name in cited.get(hit.path, ()) or d.name in ev.names:
                    strength += 1.0 + math.log1p(ev.names.get(d.name, 0))
                if d.name in frame_funcs:
                    strength += 1.5
                parts = set(token_bag(d.name))
                if parts:
                    strength += 0.5 * len(parts & words) / len(parts)
                if strength > 0.5:
                    out.append(SymbolHit(hit.path, d.name, d.line, hit.score * strength))
        out.sort(key=lambda s: (-s.score, s.path, s.line))
        return out[:k]


def locate(
    repo: Path | str,
    text: str,
    store: MemoryStore | None = None,
    cache_dir: Path | str | None = None,
    k: int = 10,
    as_of: AsOf | None = None,
    knowledge: KnowledgeStore | None = None,
) -> LocateResult:
    """Rank files and symbols for an issue; code at `as_of` (default HEAD), history as of it."""
    repo = Path(repo)
    cache = Path(cache_dir) if cache_dir else repo / ".evoagent" / "cache"
    rev = as_of.sha if as_of else "HEAD"
    index = CodeIndex(repo, cache).index(rev)
    locator = Locator(index, store=store, as_of=as_of, knowledge=knowledge, repo=repo)
    return locator.locate(text, k=k)
