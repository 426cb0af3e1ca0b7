"""In-memory twins of aurora-sync's I/O stages, for fast tests of the pure core.

Each twin obeys the same contract as the real stage; contract tests run the same cases
against both.
"""
