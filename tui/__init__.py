"""evoagent.tui"""
