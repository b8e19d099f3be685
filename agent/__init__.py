"""evoagent.agent"""
