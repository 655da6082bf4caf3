"""A train result's A/B pairs (hdr train against the plain Keras script), summarised: the pure
arithmetic that bench/perf/run.py's own table and BENCHMARKS.md's tables (bench/docs/tables.py)
both use, here so that rendering the documents imports no harness."""

from __future__ import annotations

import statistics


def med(values) -> float:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def steady(seconds: list) -> float | None:
    rest = [s for s in seconds[1:] if s is not None]
    return statistics.median(rest) if rest else None


PER_EPOCH = {"first": lambda r: r["epoch_seconds"][0], "steady": lambda r: steady(r["epoch_seconds"]),
             "steady_cpu": lambda r: steady(r["epoch_cpu_seconds"])}


def summarise(pairs: list[dict]) -> dict:
    """Each measure over the A/B pairs of a train result: {measure: (ratio, plain, hdr)}, medians
    of the pairs (a ratio's median comes from its own pair, not from the columns' medians).
    Whole-process measures are ratios hdr / plain, epoch times speed-ups plain / hdr; "acc" is
    (hdr - plain, plain, hdr) of the mean test accuracies. Results written before a measure was
    recorded give nan for it."""
    def ratio(get, speedup):
        vals = []
        for p in pairs:
            x, y = get(p["hdr"]), get(p["plain"])
            if x and y:
                vals.append(y / x if speedup else x / y)
        return med(vals)

    out = {}
    for k in ("wall", "cpu", "user", "sys", "minflt", "majflt", "load", "peak_mib", *PER_EPOCH):
        get = PER_EPOCH.get(k, lambda r, k=k: r.get(k))
        out[k] = (ratio(get, k in PER_EPOCH), med(get(p["plain"]) for p in pairs), med(get(p["hdr"]) for p in pairs))
    plain, hdr = (statistics.mean(p[side]["test_accuracy"] for p in pairs) for side in ("plain", "hdr"))
    out["acc"] = (hdr - plain, plain, hdr)
    return out
