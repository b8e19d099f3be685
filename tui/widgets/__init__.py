"""evoagent.tui.widgets: one widget per module."""
