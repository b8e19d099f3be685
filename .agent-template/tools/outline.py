"""outline: the classes and functions of a Python file with their line ranges.

A genome tool (see ../README.md): it runs in the sandbox with the workspace as its working
directory, so it sees the agent's edits so far. With the ranges the model can `read` exactly
one function of a large file instead of paging through it.
"""

import ast
import os

SCHEMA = {
    "name": "outline",
    "description": (
        "List the classes, functions and methods of a Python file with their line ranges "
        "(start-end), so you can read exactly the part you need with read."
    ),
    "parameters": {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "A .py file, relative to the repository root."},
        },
        "required": ["path"],
        "additionalProperties": False,
    },
}

MAX_ENTRIES = 400


def run(args, workspace):
    root = os.path.realpath(workspace)
    target = os.path.realpath(os.path.join(root, args["path"]))
    if os.path.commonpath([root, target]) != root:
        return f"{args['path']}: outside the repository"
    if not os.path.isfile(target):
        return f"{args['path']}: no such file"
    with open(target, encoding="utf-8", errors="replace") as handle:
        source = handle.read()
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return f"{args['path']}: not parseable as Python (line {exc.lineno}: {exc.msg})"
    lines = [f"{args['path']} ({len(source.splitlines())} lines)"]
    _walk(tree.body, 0, lines)
    if len(lines) > MAX_ENTRIES:
        lines = lines[:MAX_ENTRIES] + [f"... {len(lines) - MAX_ENTRIES} more"]
    return "\n".join(lines) if len(lines) > 1 else lines[0] + ": no classes or functions"


def _walk(body, depth, lines):
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            lines.append(f"{'  ' * depth}{start}-{node.end_lineno} {_signature(node)}")
            _walk(node.body, depth + 1, lines)


def _signature(node):
    if isinstance(node, ast.ClassDef):
        bases = ", ".join(ast.unparse(b) for b in node.bases)
        return f"class {node.name}" + (f"({bases})" if bases else "")
    prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    return f"{prefix} {node.name}({ast.unparse(node.args)})"
