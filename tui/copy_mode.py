"""Copy mode: stop mouse reporting so the terminal itself can select and copy text.

Textual 8 has no public switch for mouse reporting at runtime; its terminal drivers turn
it on and off with `_enable_mouse_support` / `_disable_mouse_support` (what they do around
suspend). Drivers without them (headless, web) are left alone.
"""

from __future__ import annotations

from textual.app import App


def set_mouse_reporting(app: App, enabled: bool) -> bool:
    """Turn the terminal's mouse reporting on or off; False when the driver cannot."""
    driver = app._driver
    method = getattr(driver, "_enable_mouse_support" if enabled else "_disable_mouse_support",
                     None)
    if driver is None or method is None:
        return False
    method()
    return True
