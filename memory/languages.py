"""Which files are code in which language, and the tree-sitter queries that read them.

Grammars come from the bundled wheels (tree_sitter_python, ...) and are imported on first
use, never at module import, so `evoagent --help` stays fast.

Definition queries tag the whole definition node `@def.<kind>` and its name `@name`;
Go methods also capture the receiver list `@receiver`. A Rust `impl` is tagged `@def.impl`
with the implemented type as `@name`: it is a container for methods, not a definition.
Reference queries capture every identifier-like node `@ref`; the indexer drops the ones
that are definition names.
"""

from __future__ import annotations

import functools
import importlib
import posixpath
import threading
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LanguageSpec:
    name: str
    module: str
    loader: str
    definitions: tuple[str, ...]
    references: tuple[str, ...]


_JS_DEFS = (
    "(class_declaration name: (_) @name) @def.class",
    "(class name: (_) @name) @def.class",
    "(function_declaration name: (_) @name) @def.function",
    "(generator_function_declaration name: (_) @name) @def.function",
    "(method_definition name: (_) @name) @def.method",
    "(variable_declarator name: (identifier) @name"
    " value: [(arrow_function) (function_expression) (generator_function)]) @def.function",
    "(assignment_expression left: (member_expression property: (property_identifier) @name)"
    " right: [(arrow_function) (function_expression)]) @def.function",
)
_JS_REFS = (
    "(identifier) @ref",
    "(property_identifier) @ref",
    "(shorthand_property_identifier) @ref",
)
_TS_DEFS = _JS_DEFS + (
    "(abstract_class_declaration name: (_) @name) @def.class",
    "(interface_declaration name: (_) @name) @def.interface",
    "(type_alias_declaration name: (_) @name) @def.type",
    "(enum_declaration name: (_) @name) @def.enum",
    "(method_signature name: (_) @name) @def.method",
    "(abstract_method_signature name: (_) @name) @def.method",
    "(function_signature name: (_) @name) @def.function",
    "(internal_module name: (_) @name) @def.module",
)
_TS_REFS = _JS_REFS + ("(type_identifier) @ref",)

LANGUAGES: dict[str, LanguageSpec] = {
    "python": LanguageSpec(
        "python",
        "tree_sitter_python",
        "language",
        (
            "(class_definition name: (identifier) @name) @def.class",
            "(function_definition name: (identifier) @name) @def.function",
            "(module (expression_statement (assignment left: (identifier) @name) @def.constant))",
        ),
        ("(identifier) @ref",),
    ),
    "javascript": LanguageSpec(
        "javascript", "tree_sitter_javascript", "language", _JS_DEFS, _JS_REFS
    ),
    "typescript": LanguageSpec(
        "typescript", "tree_sitter_typescript", "language_typescript", _TS_DEFS, _TS_REFS
    ),
    "tsx": LanguageSpec("tsx", "tree_sitter_typescript", "language_tsx", _TS_DEFS, _TS_REFS),
    "go": LanguageSpec(
        "go",
        "tree_sitter_go",
        "language",
        (
            "(function_declaration name: (_) @name) @def.function",
            "(method_declaration receiver: (parameter_list) @receiver name: (_) @name) @def.method",
            "(type_spec name: (_) @name type: (struct_type)) @def.struct",
            "(type_spec name: (_) @name type: (interface_type)) @def.interface",
            "(type_spec name: (_) @name) @def.type",
            "(type_alias name: (_) @name) @def.type",
            "(method_elem name: (_) @name) @def.method",
            "(method_spec name: (_) @name) @def.method",
            "(source_file (const_declaration (const_spec name: (identifier) @name) @def.constant))",
        ),
        ("(identifier) @ref", "(type_identifier) @ref", "(field_identifier) @ref"),
    ),
    "rust": LanguageSpec(
        "rust",
        "tree_sitter_rust",
        "language",
        (
            "(function_item name: (_) @name) @def.function",
            "(function_signature_item name: (_) @name) @def.function",
            "(struct_item name: (_) @name) @def.struct",
            "(union_item name: (_) @name) @def.struct",
            "(enum_item name: (_) @name) @def.enum",
            "(trait_item name: (_) @name) @def.trait",
            "(type_item name: (_) @name) @def.type",
            "(mod_item name: (_) @name) @def.module",
            "(macro_definition name: (_) @name) @def.macro",
            "(const_item name: (_) @name) @def.constant",
            "(static_item name: (_) @name) @def.constant",
            "(impl_item type: (_) @name) @def.impl",
        ),
        ("(identifier) @ref", "(type_identifier) @ref", "(field_identifier) @ref"),
    ),
    "java": LanguageSpec(
        "java",
        "tree_sitter_java",
        "language",
        (
            "(class_declaration name: (_) @name) @def.class",
            "(interface_declaration name: (_) @name) @def.interface",
            "(enum_declaration name: (_) @name) @def.enum",
            "(record_declaration name: (_) @name) @def.class",
            "(annotation_type_declaration name: (_) @name) @def.interface",
            "(method_declaration name: (_) @name) @def.method",
            "(constructor_declaration name: (_) @name) @def.method",
        ),
        ("(identifier) @ref", "(type_identifier) @ref"),
    ),
}

EXTENSIONS: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".jsx": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Files indexed for their words only (no grammar): docs, config, and code in languages
# without a bundled grammar. Issues often name a doc page or a config key.
TEXT_EXTENSIONS = _words(
    ".md .markdown .rst .txt .adoc .toml .yaml .yml .json .cfg .ini .conf .properties .html "
    ".htm .css .scss .less .xml .sh .bash .zsh .c .h .cc .cpp .cxx .hpp .hh .cs .rb .php "
    ".swift .kt .kts .scala .lua .sql .r .proto .graphql .vue .svelte .gradle .el .ex .exs "
    ".erl .hs .ml .dart .jl .pl .pm .tf .cmake .mk .in .tpl .j2 .jinja"
)
TEXT_FILENAMES = _words(
    "makefile dockerfile readme changelog changes news contributing authors jenkinsfile "
    "gemfile rakefile procfile vagrantfile"
)
# Generated or vendored: large, noisy, and never where an issue's fix goes.
SKIP_DIRS = _words("node_modules vendor bower_components .git __pycache__")
SKIP_FILENAMES = _words(
    "package-lock.json yarn.lock pnpm-lock.yaml cargo.lock poetry.lock pipfile.lock go.sum "
    "composer.lock uv.lock gemfile.lock"
)

# Containers whose function children are methods.
CLASS_LIKE = frozenset({"class", "interface", "struct", "trait", "impl", "enum"})


def kind_for_path(path: str) -> str | None:
    """Language name, "text" for a words-only file, or None for a file not worth indexing."""
    parts = path.split("/")
    base = parts[-1].lower()
    if any(part in SKIP_DIRS for part in parts[:-1]) or base in SKIP_FILENAMES:
        return None
    if ".min." in base or base.endswith(".map"):
        return None
    stem, ext = posixpath.splitext(base)
    if ext in EXTENSIONS:
        return EXTENSIONS[ext]
    if ext in TEXT_EXTENSIONS or stem in TEXT_FILENAMES or base in TEXT_FILENAMES:
        return "text"
    return None


@functools.cache
def get_language(name: str) -> Any:
    from tree_sitter import Language

    spec = LANGUAGES[name]
    module = importlib.import_module(spec.module)
    return Language(getattr(module, spec.loader)())


_local = threading.local()


def get_parser(name: str) -> Any:
    """A parser for `name`, one per thread: tree-sitter parsers are not thread-safe."""
    parsers = _local.__dict__.setdefault("parsers", {})
    if name not in parsers:
        from tree_sitter import Parser

        parsers[name] = Parser(get_language(name))
    return parsers[name]


def _compile(name: str, patterns: tuple[str, ...]) -> Any:
    """One query from all patterns; patterns a grammar version lacks are dropped."""
    from tree_sitter import Query

    language = get_language(name)
    try:
        return Query(language, "\n".join(patterns)), list(patterns)
    except Exception:  # a node type or field missing in this grammar version
        valid = []
        for pattern in patterns:
            try:
                Query(language, pattern)
            except Exception:
                continue
            valid.append(pattern)
        return Query(language, "\n".join(valid)), valid


@functools.cache
def definition_query(name: str) -> Any:
    return _compile(name, LANGUAGES[name].definitions)[0]


@functools.cache
def reference_query(name: str) -> Any:
    return _compile(name, LANGUAGES[name].references)[0]
