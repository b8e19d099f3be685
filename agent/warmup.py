"""Import litellm and LanceDB in the background while a run sets itself up.

The two imports cost about 4 s and 1.3 s of one core. `fix` starts them in a daemon thread
(`start_warmup`) right after the model check, so they overlap creating the workspace and the
baseline tests instead of delaying the first model call. Code that needs either module just
imports it as before: Python's import lock makes it wait for the import already under way
rather than start a second one. A failed import is kept quiet here; the real import, where
the module is used, fails again and reports it there.
"""

from __future__ import annotations

import os
import threading

MODULES = ("litellm", "lancedb")
"""Imported in this order: the model call needs litellm, memory (locate, recall) LanceDB."""

_lock = threading.Lock()
_thread: threading.Thread | None = None
_done = threading.Event()
failures: dict[str, str] = {}
"""Module → one line saying why its import failed (for diagnostics; the real call reports)."""


def start_warmup() -> None:
    """Begin the background imports; later calls do nothing."""
    global _thread
    with _lock:
        if _thread is not None:
            return
        # Set on this thread, before the other starts: the imports read them, and the
        # environment is not changed while this thread may be copying it for a subprocess.
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        os.environ.setdefault("LITELLM_LOG", "ERROR")
        _thread = threading.Thread(target=_import_all, name="evoagent-warmup", daemon=True)
        _thread.start()


def wait_warm(timeout: float | None = None) -> bool:
    """Wait for the imports started by `start_warmup`; True when they have finished (or
    failed), False on timeout or when nothing was started."""
    with _lock:
        started = _thread is not None
    return started and _done.wait(timeout)


def _import_all() -> None:
    try:
        for module in MODULES:
            try:
                _import(module)
            except BaseException as exc:  # the real import reports it
                failures[module] = f"{type(exc).__name__}: {exc}".splitlines()[0]
    finally:
        _done.set()


def _import(module: str) -> None:
    if module == "litellm":
        from .model import litellm_module

        litellm_module()  # also quiets litellm and turns its telemetry off, once
    else:
        __import__(module)
