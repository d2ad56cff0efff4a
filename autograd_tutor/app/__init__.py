"""Use cases: plain functions that do one command's work and return records.

The commands call these and hand what they return to a view; nothing here draws or parses
a command line. Like the engine, nothing here imports torch or matplotlib at module level.
"""
