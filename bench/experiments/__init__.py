"""Trained experiments behind RECORDS.md and the README's table of write-ups (hours of training, not timings)."""
