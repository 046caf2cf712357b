"""
Call-level strategies: retry, circuit breaking, fallback and limits.
"""
