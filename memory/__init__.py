"""evoagent.memory"""
