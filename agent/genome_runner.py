"""Runs one genome tool or hook inside the sandbox: JSON on stdin, JSON on stdout.

    python genome_runner.py tool  <file>   stdin {"args": {...}, "workspace": "/path"}
    python genome_runner.py hook  <file>   stdin {"payload": {...}}
    python genome_runner.py check <file> tool|hook     (import and shape only, nothing runs)

stdout is exactly one JSON object: {"ok": true, "result": ...} or {"ok": false, "error":
"one line"}. The module's own prints (and anything writing to file descriptor 1) go to
stderr, so user code cannot corrupt the reply. Standard library only: the kernel copies this
file next to the request and runs it with `python -I` under the run's sandbox, never in
evoagent's process.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import sys
import traceback

SHAPES = {"tool": ("run", 2, "run(args, workspace)"), "hook": ("hook", 1, "hook(payload)")}


class Refusal(Exception):
    """A one-line reason the call produced no result."""


def main(argv: list[str]) -> int:
    # Save the real stdout for the reply, then point fd 1 (and sys.stdout) at stderr: prints,
    # C extensions and child processes of the user code all land there, not in the reply.
    reply = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        result = _dispatch(argv)
        text = json.dumps({"ok": True, "result": result}, ensure_ascii=False, allow_nan=False)
        code = 0
    except Refusal as exc:
        text, code = json.dumps({"ok": False, "error": _one_line(str(exc))}), 1
    reply.write(text + "\n")
    reply.flush()
    return code


def _dispatch(argv: list[str]) -> object:
    if len(argv) < 2 or argv[0] not in ("tool", "hook", "check"):
        raise Refusal("usage: genome_runner.py tool|hook <file> | check <file> tool|hook")
    mode, file = argv[0], argv[1]
    kind = argv[2] if mode == "check" and len(argv) > 2 else mode
    if kind not in SHAPES:
        raise Refusal(f"unknown kind {kind!r}")
    request = {} if mode == "check" else _request()
    module = _import(file)
    function = _shape(module, kind)
    if mode == "check":
        return {"schema": _schema(module)} if kind == "tool" else {}
    if kind == "tool":
        value = _call(function, file, request.get("args") or {}, request.get("workspace") or os.getcwd())
        if not isinstance(value, (dict, str)):
            raise Refusal(f"run() returned {type(value).__name__}, expected a dict or a str")
    else:
        value = _call(function, file, request.get("payload") or {})
        if not isinstance(value, dict):
            raise Refusal(f"hook() returned {type(value).__name__}, expected a dict")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise Refusal(f"returned a value that is not JSON: {exc}") from exc
    return value


def _request() -> dict:
    try:
        request = json.loads(sys.stdin.read() or "{}")
    except ValueError as exc:
        raise Refusal(f"the request on stdin is not JSON: {exc}") from exc
    if not isinstance(request, dict):
        raise Refusal("the request on stdin must be a JSON object")
    return request


def _import(file: str) -> object:
    if not os.path.isfile(file):
        raise Refusal(f"cannot read {file} in the sandbox")
    # The module's folder comes first so it can import its own helpers (`_common.py`).
    sys.path.insert(0, os.path.dirname(os.path.abspath(file)))
    name = "genome_" + os.path.splitext(os.path.basename(file))[0]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise Refusal(f"cannot import {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise Refusal(f"syntax error at line {exc.lineno}: {exc.msg}") from exc
    except BaseException as exc:  # noqa: BLE001 - SystemExit at import is a failure too
        raise Refusal(f"import failed: {_describe(exc, file)}") from exc
    return module


def _shape(module: object, kind: str):
    attr, arity, signature = SHAPES[kind]
    function = getattr(module, attr, None)
    if not callable(function):
        raise Refusal(f"no {signature} function")
    try:
        inspect.signature(function).bind(*([None] * arity))
    except TypeError as exc:
        raise Refusal(f"{attr}() must accept {signature}") from exc
    except ValueError:
        pass  # builtins without a signature: let the call decide
    return function


def _schema(module: object) -> object:
    schema = getattr(module, "SCHEMA", None)
    if not isinstance(schema, dict):
        raise Refusal("no SCHEMA dict")
    try:
        json.dumps(schema, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise Refusal(f"SCHEMA is not JSON: {exc}") from exc
    return schema


def _call(function, file: str, *args: object) -> object:
    try:
        return function(*args)
    except BaseException as exc:  # noqa: BLE001 - sys.exit() in a tool is a failure too
        raise Refusal(f"raised {_describe(exc, file)}") from exc


def _describe(exc: BaseException, file: str) -> str:
    """`Type: message (line N)`, the line being the deepest frame in the genome file; the
    full traceback goes to stderr for whoever reads the logs."""
    traceback.print_exception(exc, file=sys.stderr)
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if os.path.abspath(frame.filename) == os.path.abspath(file):
            line = frame.lineno
    if isinstance(exc, SyntaxError) and exc.filename and os.path.abspath(exc.filename) == os.path.abspath(file):
        line = exc.lineno
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text + (f" (line {line})" if line else "")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
