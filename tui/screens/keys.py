"""Keeping footers within 80 columns: a screen re-binds the app's keys it does not need to
advertise with `show=False`. The keys still work (they run the same app actions) and stay
in the command palette (Ctrl+P) and the help (/help)."""

from __future__ import annotations

from textual.binding import Binding

APP_KEYS = {
    "ctrl+t": "app.cycle_mode",
    "ctrl+z": "app.undo",
    "f2": "app.show_memory",
    "f3": "app.show_runs",
    "f4": "app.show_evolution",
    "f9": "app.toggle_copy_mode",
}
SHOWN_ON_SUBSCREENS = ("f2", "f3")
"""Screens other than the main one show only Quit and the way to the other lists (F4, the
evolution screen, stays out of their footers: the help and the palette list it)."""


def quiet_app_bindings(*also: str) -> list[Binding]:
    """Hidden bindings for the app keys a sub-screen leaves out of its footer: all but
    F2/F3, plus the keys in `also` (the screen's own key, which would do nothing, or keys a
    crowded footer leaves out)."""
    keys = [k for k in APP_KEYS if k not in SHOWN_ON_SUBSCREENS or k in also]
    return [Binding(key, APP_KEYS[key], show=False) for key in keys]
