"""evoagent.sandbox"""
