"""The figures of README.md, BENCHMARKS.md and RECORDS.md, rendered from bench/results/ (imports no harness)."""
