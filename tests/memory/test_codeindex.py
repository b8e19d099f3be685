import sqlite3
from collections import Counter

import pytest
from evoagent.memory import codeindex
from evoagent.memory.codeindex import (
    MODULE_CHUNK,
    Chunk,
    CodeIndex,
    parse_blob,
    split_identifier,
    token_bag,
)

PY = b'''\
"""Shapes and their areas."""
MAX_SIDES = 8
helper_value = 3


class Shape:
    """A shape."""

    @property
    def area(self):
        return compute_area(self)


def compute_area(shape):
    def inner():
        return 0
    return inner()
'''

JS = b"""\
class Widget {
  render() {
    return draw(this);
  }
}

function draw(w) {
  return w.paint();
}

const helper = () => draw(null);
"""

TS = b"""\
interface Point {
  x: number;
}

type Pair = [Point, Point];

enum Color { Red, Green }

export class Canvas {
  drawPoint(p: Point): void {}
}

function makePoint(): Point {
  return { x: 1 };
}
"""

TSX = b"""\
export function Button(props: ButtonProps) {
  return <div onClick={props.onClick}>{props.label}</div>;
}

interface ButtonProps {
  label: string;
}
"""

GO = b"""\
package server

type Server struct {
\tAddr string
}

type Handler interface {
\tServe() error
}

func (s *Server) Start() error {
\treturn listen(s.Addr)
}

func listen(addr string) error {
\treturn nil
}
"""

RUST = b"""\
pub struct Config {
    name: String,
}

pub trait Loader {
    fn load(&self) -> Config;
}

impl Config {
    pub fn new() -> Self {
        Config { name: String::new() }
    }
}

pub enum Mode { Fast, Slow }

fn helper() -> Mode { Mode::Fast }
"""

JAVA = b"""\
package demo;

public class Account {
    private int balance;

    public Account() {}

    public void deposit(int amount) {
        balance = Ledger.add(balance, amount);
    }
}

interface Auditable {
    void audit();
}

enum Status { OPEN, CLOSED }
"""


def defs(lang, source):
    symbols = parse_blob(lang, source)
    return {(d.name, d.kind, d.line, d.end_line, d.container) for d in symbols.definitions}


@pytest.mark.parametrize(
    ("lang", "source", "expected"),
    [
        (
            "python",
            PY,
            {
                ("MAX_SIDES", "constant", 2, 2, None),
                ("Shape", "class", 6, 11, None),
                ("area", "method", 10, 11, "Shape"),
                ("compute_area", "function", 14, 17, None),
                ("inner", "function", 15, 16, "compute_area"),
            },
        ),
        (
            "javascript",
            JS,
            {
                ("Widget", "class", 1, 5, None),
                ("render", "method", 2, 4, "Widget"),
                ("draw", "function", 7, 9, None),
                ("helper", "function", 11, 11, None),
            },
        ),
        (
            "typescript",
            TS,
            {
                ("Point", "interface", 1, 3, None),
                ("Pair", "type", 5, 5, None),
                ("Color", "enum", 7, 7, None),
                ("Canvas", "class", 9, 11, None),
                ("drawPoint", "method", 10, 10, "Canvas"),
                ("makePoint", "function", 13, 15, None),
            },
        ),
        (
            "tsx",
            TSX,
            {("Button", "function", 1, 3, None), ("ButtonProps", "interface", 5, 7, None)},
        ),
        (
            "go",
            GO,
            {
                ("Server", "struct", 3, 5, None),
                ("Handler", "interface", 7, 9, None),
                ("Serve", "method", 8, 8, "Handler"),
                ("Start", "method", 11, 13, "Server"),
                ("listen", "function", 15, 17, None),
            },
        ),
        (
            "rust",
            RUST,
            {
                ("Config", "struct", 1, 3, None),
                ("Loader", "trait", 5, 7, None),
                ("load", "method", 6, 6, "Loader"),
                ("Config", "impl", 9, 13, None),
                ("new", "method", 10, 12, "Config"),
                ("Mode", "enum", 15, 15, None),
                ("helper", "function", 17, 17, None),
            },
        ),
        (
            "java",
            JAVA,
            {
                ("Account", "class", 3, 11, None),
                ("Account", "method", 6, 6, "Account"),
                ("deposit", "method", 8, 10, "Account"),
                ("Auditable", "interface", 13, 15, None),
                ("audit", "method", 14, 14, "Auditable"),
                ("Status", "enum", 17, 17, None),
            },
        ),
    ],
)
def test_definitions_per_language(lang, source, expected):
    assert defs(lang, source) == expected


def test_signature_is_the_definition_line():
    symbols = parse_blob("python", PY)
    by_name = {d.name: d for d in symbols.definitions}
    assert by_name["area"].signature == "def area(self):"
    assert by_name["area"].depth == 1
    assert by_name["Shape"].signature == "class Shape:"


@pytest.mark.parametrize(
    ("lang", "source", "used", "not_used"),
    [
        ("python", PY, {"compute_area": 1, "property": 1}, ["Shape", "area"]),
        ("javascript", JS, {"draw": 2, "paint": 1}, ["Widget"]),
        ("typescript", TS, {"Point": 4}, ["Canvas"]),
        ("go", GO, {"listen": 1, "Addr": 2, "Server": 1}, ["Start", "Handler"]),
        ("rust", RUST, {"Config": 3, "Mode": 2, "String": 2}, ["helper"]),
        ("java", JAVA, {"Ledger": 1, "add": 1, "balance": 3}, ["deposit"]),
    ],
)
def test_references_exclude_definition_names(lang, source, used, not_used):
    refs = parse_blob(lang, source).references
    for name, count in used.items():
        assert refs[name] == count, name
    for name in not_used:
        assert name not in refs


def test_split_identifier():
    assert split_identifier("parseHTTPResponse_v2") == ["parse", "http", "response", "v2"]
    assert split_identifier("snake_case_name") == ["snake", "case", "name"]
    assert split_identifier("XMLParser") == ["xml", "parser"]


def test_token_bag_splits_identifiers_and_keeps_prose():
    bag = token_bag("result = parseHTTPResponse_v2(raw)  # decode the payload\n'Timeout error'")
    for word in ["parsehttpresponse_v2", "parse", "http", "response", "v2", "raw", "result"]:
        assert bag[word] == 1, word
    assert bag["decode"] == 1 and bag["payload"] == 1 and bag["timeout"] == 1
    assert "the" not in bag


def test_token_bag_cap_keeps_most_frequent():
    text = "common " * 50 + " ".join(f"word{i}" for i in range(100))
    bag = token_bag(text, cap=10)
    assert len(bag) == 10
    assert bag["common"] == 50


def test_docs_get_tokens_and_binaries_are_skipped(git_repo, tmp_path):
    git_repo.commit(
        "mixed",
        {
            "README.md": "# Retry policy\nConfigure exponentialBackoff here.\n",
            "setup.cfg": "[tool]\nmax_retries = 3\n",
            "logo.png": b"\x89PNG\r\n\x1a\n\0\0binary",
            "data.json": "[" + "1," * 5000 + "1]",
            "node_modules/lib/index.js": "function vendored() {}\n",
            "app.py": "def main():\n    pass\n",
        },
    )
    index = CodeIndex(git_repo.path, tmp_path / "cache").index()
    assert sorted(index.files) == ["README.md", "app.py", "setup.cfg"]
    readme = index.files["README.md"]
    assert readme.lang == "text" and readme.definitions == []
    assert readme.tokens["backoff"] == 1 and readme.tokens["retry"] == 1
    assert index.files["setup.cfg"].tokens["retries"] == 1


def test_syntax_errors_and_invalid_utf8_do_not_crash(git_repo, tmp_path):
    git_repo.commit(
        "broken",
        {
            "broken.py": "def ok():\n    pass\n\ndef broken(:\n    class (\n",
            "latin.py": b"# caf\xe9\ndef caf\xe9_fn():\n    return 1\n\ndef plain():\n    pass\n",
            "bad.go": "package x\nfunc {{{ \n",
            "bad.rs": b"fn \xff\xfe() {",
        },
    )
    index = CodeIndex(git_repo.path, tmp_path / "cache").index()
    assert sorted(index.files) == ["bad.go", "bad.rs", "broken.py", "latin.py"]
    assert "ok" in {d.name for d in index.files["broken.py"].definitions}
    assert "plain" in {d.name for d in index.files["latin.py"].definitions}


def test_second_revision_parses_only_the_changed_blob(git_repo, tmp_path):
    files = {f"pkg/mod{i}.py": f"def func{i}():\n    return {i}\n" for i in range(20)}
    first = git_repo.commit("base", files)
    second = git_repo.commit("change one", {"pkg/mod3.py": "def renamed():\n    return 3\n"})
    code_index = CodeIndex(git_repo.path, tmp_path / "cache")

    old = code_index.index(first)
    assert (old.stats.parsed, old.stats.cached, old.stats.files) == (20, 0, 20)
    new = code_index.index(second)
    assert (new.stats.parsed, new.stats.cached) == (1, 19)
    assert code_index.parse_count == 21
    assert new.definitions_named("renamed") == [
        ("pkg/mod3.py", new.files["pkg/mod3.py"].definitions[0])
    ]
    assert new.definitions_named("func3") == []
    assert old.definitions_named("func3")[0][0] == "pkg/mod3.py"

    # A new process (new CodeIndex) finds everything in the on-disk cache.
    again = CodeIndex(git_repo.path, tmp_path / "cache").index(second)
    assert (again.stats.parsed, again.stats.cached) == (0, 20)
    # Symbols and (lazily decoded) tokens read back from disk equal the fresh parse.
    assert again.files["pkg/mod7.py"] == old.files["pkg/mod7.py"]
    assert again.files["pkg/mod7.py"].tokens["func7"] == 1


def test_same_blob_under_two_languages_is_cached_per_language(git_repo, tmp_path):
    git_repo.commit("same bytes", {"a.ts": "function f() {}\n", "a.txt": "function f() {}\n"})
    index = CodeIndex(git_repo.path, tmp_path / "cache").index()
    assert index.stats.parsed == 2
    assert index.files["a.ts"].lang == "typescript" and index.files["a.txt"].lang == "text"


def test_older_revision_ignores_working_tree(git_repo, tmp_path):
    first = git_repo.commit("one", {"core.py": "def original():\n    pass\n"})
    git_repo.commit("two", {"core.py": "def changed():\n    pass\n"})
    git_repo.write("core.py", "def uncommitted():\n    pass\n")
    git_repo.write("new.py", "def untracked():\n    pass\n")
    index = CodeIndex(git_repo.path, tmp_path / "cache").index(first)
    assert index.commit == first
    assert list(index.files) == ["core.py"]
    assert [d.name for d in index.files["core.py"].definitions] == ["original"]


def test_referencing_counts_uses(git_repo, tmp_path):
    git_repo.commit(
        "refs",
        {
            "lib.py": "def target():\n    pass\n",
            "a.py": "from lib import target\ntarget()\ntarget()\n",
            "b.py": "import lib\nlib.target()\n",
        },
    )
    index = CodeIndex(git_repo.path, tmp_path / "cache").index()
    assert index.referencing("target") == [("a.py", 3), ("b.py", 1)]
    assert index.referencing("nothing") == []
    assert index.files["a.py"].references == Counter({"target": 3, "lib": 1})


CHUNKY_PY = b'''\
"""Billing helpers."""
import decimal

TAX_RATE = 0.2


class Invoice:
    """An invoice with lines."""

    currency = "EUR"

    # Sum of the lines before tax.
    def subtotal(self):
        return sum(line.amount for line in self.lines)

    @property
    def total(self):
        return self.subtotal() * (1 + TAX_RATE)


def render(invoice):
    return format_money(invoice.total)


if __name__ == "__main__":
    render(Invoice())
'''


def chunk_table(symbols):
    return [(c.name, c.kind, c.start_line, c.end_line) for c in symbols.chunks]


def test_python_chunks_split_class_methods_and_module_code():
    symbols = parse_blob("python", CHUNKY_PY)
    assert chunk_table(symbols) == [
        (MODULE_CHUNK, "module", 1, 26),
        ("Invoice", "class", 7, 18),
        ("subtotal", "method", 12, 14),  # with the comment above it
        ("total", "method", 16, 18),  # with its decorator
        ("render", "function", 21, 22),
    ]
    by_name = {c.name: c.tokens for c in symbols.chunks}
    # Module code: docstring, imports, constants and the __main__ block.
    assert by_name[MODULE_CHUNK]["billing"] == 1 and by_name[MODULE_CHUNK]["decimal"] == 1
    assert by_name[MODULE_CHUNK]["tax_rate"] == 1 and by_name[MODULE_CHUNK]["invoice"] == 1
    # The class keeps its header, docstring and attributes, not its methods' text.
    assert by_name["Invoice"] == Counter({"invoice": 2, "lines": 1, "currency": 1, "eur": 1})
    assert by_name["subtotal"]["sum"] == 2 and by_name["subtotal"]["before"] == 1
    assert by_name["total"]["property"] == 1 and by_name["total"]["tax_rate"] == 1
    assert "subtotal" not in by_name["Invoice"] and "property" not in by_name["Invoice"]
    # Every line is in exactly one chunk: the chunks add up to the file's bag.
    summed = sum((c.tokens for c in symbols.chunks), Counter())
    assert summed == symbols.tokens == token_bag(CHUNKY_PY.decode())


def test_nested_definitions_deeper_than_methods_stay_in_their_method():
    source = b"""\
class Outer:
    class Inner:
        def deep(self):
            return hidden_value
    def method(self):
        def closure():
            return closure_value
        return closure
"""
    symbols = parse_blob("python", source)
    assert chunk_table(symbols) == [
        ("Outer", "class", 1, 8),
        ("Inner", "class", 2, 4),
        ("method", "method", 5, 8),
    ]
    by_name = {c.name: c.tokens for c in symbols.chunks}
    assert by_name["Inner"]["hidden_value"] == 1 and by_name["Inner"]["deep"] == 1
    assert by_name["method"]["closure_value"] == 1
    assert by_name["Outer"] == Counter({"outer": 1})


def test_function_with_a_nested_function_at_depth_one():
    symbols = parse_blob("python", PY)
    table = chunk_table(symbols)
    assert ("compute_area", "function", 14, 17) in table
    assert ("inner", "function", 15, 16) in table
    compute = next(c for c in symbols.chunks if c.name == "compute_area")
    assert "inner" in compute.tokens  # `return inner()` is the outer function's own line
    assert compute.tokens["compute_area"] == 1


@pytest.mark.parametrize(
    ("lang", "source", "expected"),
    [
        (
            "javascript",
            JS,
            [
                ("Widget", "class", 1, 5),
                ("render", "method", 2, 4),
                ("draw", "function", 7, 9),
                ("helper", "function", 11, 11),
            ],
        ),
        (
            "go",
            GO,
            [
                (MODULE_CHUNK, "module", 1, 1),
                ("Server", "struct", 3, 5),
                ("Handler", "interface", 7, 9),
                ("Serve", "method", 8, 8),
                ("Start", "method", 11, 13),
                ("listen", "function", 15, 17),
            ],
        ),
    ],
)
def test_other_languages_get_chunks(lang, source, expected):
    symbols = parse_blob(lang, source)
    assert chunk_table(symbols) == expected
    assert sum((c.tokens for c in symbols.chunks), Counter()) == symbols.tokens


def test_multiline_python_decorator_belongs_to_its_function():
    source = b"""\
import pytest


@pytest.mark.parametrize(
    "value",
    [special_case_one, special_case_two],
)
def test_value(value):
    assert value
"""
    symbols = parse_blob("python", source)
    assert chunk_table(symbols) == [
        (MODULE_CHUNK, "module", 1, 1),
        ("test_value", "function", 4, 9),
    ]
    assert symbols.chunks[1].tokens["special_case_one"] == 1
    assert [d.line for d in symbols.definitions] == [8]  # the definition itself is unchanged


def test_go_doc_comment_belongs_to_its_function():
    source = b"package netx\n\n// Listen opens the socket.\n// It retries.\nfunc Listen() {}\n"
    symbols = parse_blob("go", source)
    assert chunk_table(symbols) == [(MODULE_CHUNK, "module", 1, 1), ("Listen", "function", 3, 5)]
    assert symbols.chunks[1].tokens["socket"] == 1 and symbols.chunks[1].tokens["retries"] == 1


def test_text_files_get_line_window_chunks():
    text = "".join(f"paragraph{i} about topic\n" for i in range(1, 131))
    symbols = parse_blob("text", text.encode())
    # 130 lines: 1-60, then 61-130 (a last window under 20 lines joins the previous one).
    assert chunk_table(symbols) == [
        ("lines 1-60", "text", 1, 60),
        ("lines 61-130", "text", 61, 130),
    ]
    assert symbols.chunks[0].tokens["paragraph60"] == 1
    assert "paragraph61" not in symbols.chunks[0].tokens
    assert symbols.chunks[1].tokens["topic"] == 70
    short = parse_blob("text", b"# Title\n\nSome words.\n")
    assert chunk_table(short) == [("lines 1-3", "text", 1, 3)]
    windows = parse_blob("text", "".join(f"w{i}x\n" for i in range(150)).encode())
    assert [c.name for c in windows.chunks] == ["lines 1-60", "lines 61-120", "lines 121-150"]


def test_chunk_tokens_are_capped():
    body = "\n".join(f"    value_{i}_x = {i}" for i in range(1000))
    symbols = parse_blob("python", f"def big():\n{body}\n".encode())
    (chunk,) = symbols.chunks
    assert len(chunk.tokens) == codeindex.MAX_CHUNK_TOKENS
    assert chunk.tokens["value"] == 1000  # the most frequent words are kept


def test_empty_file_has_no_chunks():
    assert parse_blob("python", b"").chunks == []
    assert parse_blob("text", b"\n\n").chunks == []


def test_chunks_round_trip_through_the_cache(git_repo, tmp_path):
    git_repo.commit(
        "chunks",
        {"billing.py": CHUNKY_PY, "web/widget.js": JS, "server.go": GO, "README.md": "# Hi\n"},
    )
    fresh = CodeIndex(git_repo.path, tmp_path / "cache").index()
    again = CodeIndex(git_repo.path, tmp_path / "cache").index()
    assert (again.stats.parsed, again.stats.cached) == (0, 4)
    for path, symbols in fresh.files.items():
        loaded = again.files[path]
        assert loaded._chunks is None  # not decoded until asked for
        assert loaded.chunks == symbols.chunks, path
        assert loaded == symbols
    assert again.files["billing.py"].chunks == parse_blob("python", CHUNKY_PY).chunks
    assert all(isinstance(c, Chunk) for c in again.files["server.go"].chunks)


def test_chunks_for(git_repo, tmp_path):
    git_repo.commit("two", {"a.py": "def one():\n    pass\n", "b.md": "Some docs\n"})
    index = CodeIndex(git_repo.path, tmp_path / "cache").index()
    pairs = index.chunks_for(["b.md", "missing.py", "a.py"])
    assert [(path, chunk.name) for path, chunk in pairs] == [("b.md", "lines 1-1"), ("a.py", "one")]
    assert index.chunks_for([]) == []


def test_old_version_cache_is_not_reused(git_repo, tmp_path):
    git_repo.commit("one", {"app.py": "def main():\n    pass\n"})
    sha = git_repo.git("rev-parse", "HEAD:app.py")
    cache = tmp_path / "cache"
    cache.mkdir()
    # A cache written by the previous version: no chunks column, and a stale payload.
    db = sqlite3.connect(cache / codeindex.CACHE_FILE)
    old = f"symbols_v{codeindex.INDEX_VERSION - 1}"
    db.execute(
        f"CREATE TABLE {old} (sha TEXT NOT NULL, lang TEXT NOT NULL, symbols BLOB,"
        " tokens BLOB, PRIMARY KEY (sha, lang)) WITHOUT ROWID"
    )
    stale = codeindex.FileSymbols("python", [codeindex.Definition("stale", "function", 1, 1)])
    db.execute(f"INSERT INTO {old} VALUES (?, ?, ?, ?)", (sha, "python", *stale.to_payload()[:2]))
    db.commit()
    db.close()

    index = CodeIndex(git_repo.path, cache).index()
    assert (index.stats.parsed, index.stats.cached) == (1, 0)
    assert [d.name for d in index.files["app.py"].definitions] == ["main"]
    assert [c.name for c in index.files["app.py"].chunks] == ["main"]
