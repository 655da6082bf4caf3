"""Performance harnesses behind BENCHMARKS.md: hdr's time, CPU and memory against baselines and its own variants."""
