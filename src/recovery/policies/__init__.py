"""
Call-level strategies: retry, circuit breaking, fallback and limits.

The names are re-exported from `recovery`; each module here holds one.
"""

__all__: list[str] = []
