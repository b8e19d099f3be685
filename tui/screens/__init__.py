"""evoagent.tui.screens: one screen per module, each with a sibling .tcss."""
