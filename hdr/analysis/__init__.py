"""Judging runs: pure functions from run folders to data (compare, evaluate, ensemble, describe,
statistics), and their views (text, CSV, plots)."""
