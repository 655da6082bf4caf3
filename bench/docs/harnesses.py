"""BENCHMARKS.md's blocks rendered from the newest results of the performance harnesses in
bench/perf/ (time to 99 %, 10,000 runs, sweeps, Ray, tune, TensorBoard, prediction start-up,
photos). Each function reads the newest stored result of its harness; what the harnesses and
these tables share (the targets, the phases' names, the index modes, the labels) is declared here,
and the harnesses import it: rendering imports no harness.

A stored result records the command that wrote it as it was typed then; `current()` shows it as
it runs now (`python -m bench.perf.NAME`).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from bench.layout import RESULTS, current

# ------------------------------------------------------------------------------ time to 99 % (bench/perf/time_to_accuracy.py)

TARGETS = {"mnist": 0.99, "usps": 0.97}  # test accuracy, mean of seeds
WALL_TARGETS = {"mnist": 15.0, "usps": 5.0}  # whole `hdr train` process, seconds
LABELS = {"fast": "hdr configs/fast/mnist.yaml", "plain": "plain Keras, write-up 003 script",
          "hdr": "hdr configs/cnn_adam.yaml"}
# The phases of a `hdr train` process, in order, as time_to_accuracy.py's child marks them.
PHASES = ["python start-up", "import (hdr, Keras, TensorFlow)", "config and data", "model build",
          "run folder", "first epoch (tracing)", "later epochs", "checkpoints and history", "test",
          "plots", "model.keras", "finish and exit"]


def newest(prefix: str) -> tuple[str, dict] | None:
    """The newest PREFIX-<time>.json in bench/results/: (file name, contents), or None."""
    paths = sorted(RESULTS.glob(f"{prefix}-2*.json"))
    return (paths[-1].name, json.loads(paths[-1].read_text())) if paths else None


def latest(name: str) -> dict | None:
    """The newest NAME-<time>.json's contents with its file name under "file", or None."""
    got = newest(name)
    return got[1] | {"file": got[0]} if got else None


def latest_time_to_99() -> dict | None:
    return latest("time-to-99")


def _at(r: dict) -> str:
    return f", hdr {r['commit']}" if r.get("commit") else ""


def _mean(xs):
    xs = [x for x in xs if x is not None]
    return statistics.mean(xs) if xs else None


def time_to_99() -> str:
    """BENCHMARKS.md's block: per way and dataset, whole-process wall/user/system, test accuracy,
    time to the target, over the seeds of the newest run."""
    r = latest_time_to_99()
    if r is None:
        return "Not measured yet: `python -m bench.perf.time_to_accuracy run`.\n"
    lines = ["| dataset | how | seeds | wall s (each seed) | user s | system s | test accuracy (mean) | "
             "reached the target | time to it, s (mean) |", "|---|---|---|---|---|---|---|---|---|"]
    rows = [("mnist", k, LABELS[k], v) for k, v in r["mnist"].items()] + \
           [("usps", "fast", "hdr configs/fast/usps.yaml", r["usps"]["fast"])]
    loads = []
    for ds, key, label, runs in rows:
        if not runs:
            continue
        loads += [x["load"] for x in runs]
        reached = [x["reached_seconds"] for x in runs]
        note = ""
        if key == "hdr":
            note = f", {r['cnn_epochs']} epochs"
        if key == "plain":
            note = f", until 99.0% or {r['plain_epochs']} epochs"
        target = f"{100 * TARGETS[ds]:.0f}%"
        lines.append(
            f"| {ds.upper()} ≥ {target} | {label}{note} | {len(runs)} | "
            + " / ".join(f"{x['wall']:.1f}" for x in runs)
            + f" | {_mean(x['user'] for x in runs):.1f} | {_mean(x['sys'] for x in runs):.1f} | "
            f"**{100 * _mean(x['test_accuracy'] for x in runs):.2f}%** | {sum(t is not None for t in reached)} of "
            f"{len(runs)} | " + (f"**{_mean(reached):.1f}**" if any(reached) else "-") + " |")
    lines += ["", f"Source: `bench/results/{r['file']}` ({r['written'][:10]}{_at(r)}, {r['host_cpus']} cores, load average "
                  f"{min(loads):.1f}-{max(loads):.1f} while it ran), written by `{current(r['command'])}`. "
                  "Wall, user and system seconds are the whole process's; time to the target is from launch to "
                  "the end of the process (hdr) or of the first epoch at the target plus one test scoring (plain)."]
    return "\n".join(lines) + "\n"


def time_to_99_phases() -> str:
    r = latest("phases")
    if r is None:
        return "Not measured yet: `python -m bench.perf.time_to_accuracy phases`.\n"
    runs = [x for x in r["runs"] if not x.get("before")]
    before = [x for x in r["runs"] if x.get("before")]

    def med(xs, name, i):
        return statistics.median(x["phases"][name][i] for x in xs)

    def cpu(x):
        return sum(v[1] for v in x["phases"].values())

    lines = [f"| phase of `hdr train {r['config']}` | wall s (median of {len(runs)}) | CPU s | share of wall |",
             "|---|---|---|---|"]
    total = statistics.median(x["wall"] for x in runs)
    for name in PHASES:
        lines.append(f"| {name} | {med(runs, name, 0):.2f} | {med(runs, name, 1):.2f} | "
                     f"{100 * med(runs, name, 0) / total:.0f}% |")
    lines.append(f"| **whole process** | **{total:.1f}** | {statistics.median(cpu(x) for x in runs):.1f} | |")
    loads = [x["load"] for x in r["runs"]]
    lines += ["", f"Source: `bench/results/{r['file']}` ({r['written'][:10]}{_at(r)}, load average {min(loads):.1f}-"
                  f"{max(loads):.1f}), written by `{current(r['command'])}`. CPU is the process's (all threads); "
                  "start-up and exit are seen from outside, so their CPU is not counted."
              + (f" Note: {current(r['note'])}." if r.get("note") else "")]
    if before:
        imp, ex = "import (hdr, Keras, TensorFlow)", "finish and exit"
        lines += ["", f"Before the cuts (alternated with the runs above, {len(before)} runs): import "
                      f"{med(before, imp, 1):.2f} CPU s (now {med(runs, imp, 1):.2f}), finish and exit "
                      f"{med(before, ex, 0):.2f} s wall (now {med(runs, ex, 0):.2f}), whole process "
                      f"{statistics.median(cpu(x) for x in before):.1f} CPU s (now "
                      f"{statistics.median(cpu(x) for x in runs):.1f}; its wall time, "
                      f"{statistics.median(x['wall'] for x in before):.1f} s against {total:.1f} s, "
                      "follows the machine's other load more than hdr)."]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ 10,000 runs (bench/perf/manyruns.py)

MANYRUNS_MODES = ("before", "no index", "cold", "index only", "warm")


def manyruns() -> str:
    """BENCHMARKS.md's block: the latest manyruns-*.json."""
    path = sorted(RESULTS.glob("manyruns-*.json"))[-1]
    r = json.loads(path.read_text())
    lines = ["| command | index | wall s | user s | sys s | peak MB | wall vs no index | CPU vs no index |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, row in r["summary"].items():
        for mode in MANYRUNS_MODES:
            if mode not in row:
                continue
            m = row[mode]
            label = {"before": f"none, hdr before the index (`{r['before']}`)", "no index": "none (`HDR_RUNS_INDEX=0`)",
                     "cold": "cold (none; written)", "index only": "index, no kept result (a run changed)",
                     "warm": "warm"}[mode]
            lines.append(f"| `{name}` | {label} | {m['wall']:.2f} | {m['user']:.2f} | {m['sys']:.2f} | "
                         f"{m['max_rss_mb']:.0f} | {m['wall_vs_no_index']:.3f}x | {m['cpu_vs_no_index']:.3f}x |")
    mach = r["machine"]
    same = ", ".join(f"{k}: {'same' if v else 'DIFFERENT'}" for k, v in r["same_output"].items())
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(r["statuses"].items(), key=lambda x: -x[1]))
    kept = f", compare's kept result {r['kept_bytes'] / 1e6:.1f} MB" if r.get("kept_bytes") else ""
    lines += ["", f"{r['runs']} run folders ({statuses}); the index is {r['index_bytes'] / 1e6:.1f} MB{kept}. "
                  f"Medians of {r['repeats']} fresh processes each (peak: the largest), "
                  f"{mach['cpu_count']}-core {mach['platform']}, Python {mach['python']}, load average "
                  f"{mach['load_average_before'][0]:.1f} before and {mach['load_average_after'][0]:.1f} after. "
                  f"Output with the index (and kept result) against without: {same}.",
              "", f"Source `bench/results/{path.name}` ({r['written'][:10]}), `{current(r['command'])}`."]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ sweeps (bench/perf/sweep.py)

def sweep() -> str:
    # sweep-<time>.json sort before sweep-jobsN-<time>.json, each family by time: the last file
    # of each --jobs setting is its newest; the others are listed as earlier measurements.
    results = {p: json.loads(p.read_text()) for p in sorted(RESULTS.glob("sweep-*.json"))}
    newest_of = {r["jobs"]: p for p, r in results.items()}
    med = statistics.median
    rows = ["| way | at a time | wall s | user s | system s |", "|---|---|---|---|---|"]
    notes = []
    for jobs in sorted(newest_of):
        path = newest_of[jobs]
        r = results[path]
        for way, name in (("sweep", "`hdr sweep` (reused workers)"),
                          ("separate", f"{r['points']} separate `hdr train` processes")):
            rows.append(f"| {name} | {r['jobs']} | {med(x[way]['wall'] for x in r['rounds']):.1f} | "
                        f"{med(x[way]['user'] for x in r['rounds']):.1f} | "
                        f"{med(x[way]['system'] for x in r['rounds']):.1f} |")
        m = r["machine"]
        notes.append(
            f"{r['jobs']} at a time: separate processes against reused workers, {r['median_ratio_wall']:.2f}× the wall "
            f"time, {r['median_ratio_cpu']:.2f}× the CPU time (medians of {len(r['rounds'])} alternated rounds; "
            f"{r['points']} runs of `{r['config']}`; {m['cores']}-core {m['cpu']}, load {m['load_before']:.1f} "
            f"before). Source: `bench/results/{path.name}` (`{current(r['command'])}`).")
    older = [r for p, r in results.items() if p not in newest_of.values()]
    if older:
        notes.append("Earlier measurements (same bench, other days and loads): " + "; ".join(
            f"{r['when'][:10]}, {r['jobs']} at a time: {r['median_ratio_wall']:.2f}× wall (load {r['machine']['load_before']:.1f} "
            f"before)" for r in older) + ".")
    return "\n".join(rows) + "\n\n" + "\n\n".join(notes) + "\n"


# ------------------------------------------------------------------------------ Ray (bench/perf/ray_overhead.py)

def _latest_ray() -> tuple[str, dict]:
    path = sorted(RESULTS.glob("ray-overhead-*.json"))[-1]
    return path.name, json.loads(path.read_text())


def ray_overhead() -> str:
    name, r = _latest_ray()
    rows = ["| way | wall s | user s | system s | wall vs local | CPU vs local |", "|---|---|---|---|---|---|"]
    med = statistics.median
    for way in ("local", "ray-fresh", "ray-cluster"):
        w = [x[way]["wall"] for x in r["rounds"]]
        u = [x[way]["user"] for x in r["rounds"]]
        s = [x[way]["system"] for x in r["rounds"]]
        ratio = ("1.00×", "1.00×") if way == "local" else (f"{r[f'median_{way}_ratio_wall']:.2f}×",
                                                            f"{r[f'median_{way}_ratio_cpu']:.2f}×")
        rows.append(f"| {way} | {med(w):.1f} | {med(u):.1f} | {med(s):.1f} | {ratio[0]} | {ratio[1]} |")
    m = r["machine"]
    return "\n".join(rows) + (
        f"\n\nMedians of {len(r['rounds'])} rounds; {r['runs']} runs of `{r['config']}`, two at a time; "
        f"Ray {r['ray']}, {m['cores']}-core {m['cpu']}, load {m['load_before']:.1f} before. "
        f"Source: `bench/results/{name}` (`{current(r['command'])}`).\n")


# ------------------------------------------------------------------------------ hdr tune (bench/perf/tune.py)

def tune() -> str:
    lines = []
    got = newest("tune-compare")
    if got:
        name, r = got
        lines += ["| search | best val accuracy (median of reps) | per rep | epochs trained | CPU h | wall min |",
                  "|---|---|---|---|---|---|"]
        for way in ("grid", "tpe+median"):
            reps = [x[way] for x in r["reps"]]
            cpu_h = [(x["user"] + x["system"]) / 3600 for x in reps]
            best = [x["best_value"] for x in reps]
            lines.append(f"| {way} | {100 * statistics.median(best):.2f}% | "
                         f"{', '.join(f'{100 * b:.2f}%' for b in best)} | "
                         f"{statistics.median(x['epochs_trained'] for x in reps):.0f} | "
                         f"{statistics.median(cpu_h):.3f} | {statistics.median(x['wall'] for x in reps) / 60:.1f} |")
        m = r["machine"]
        lines += ["", f"{len(r['reps'])} repetitions of {r['trials']} trials of `{r['config']}` over "
                      f"{', '.join(f'`{s}`' for s in r['space'])}; {m['cores']}-core {m['cpu']}, load "
                      f"{m['load_before']:.1f} before. Source: `bench/results/{name}` (`{current(r['command'])}`).", ""]
    got = newest("tune-lr")
    if got:
        name, r = got
        t = r["tune"]
        lines += ["| write-up 000's MLP, 2 epochs | learning rate | best val accuracy |", "|---|---|---|",
                  f"| the config's own | {r['default']['learning_rate']:g} | "
                  f"{100 * r['default']['best_val_accuracy']:.2f}% |",
                  f"| best of hdr tune, {r.get('trials', 8)} trials | {t['best_params']['optimizer.learning_rate']:.4g} | "
                  f"{100 * t['best_value']:.2f}% |", "",
                  f"The tuned trial's test accuracy, reported once: {100 * t['best_test_accuracy']:.2f}% "
                  f"(the default's: {100 * r['default']['test_accuracy']:.2f}%); {t['pruned']} of {r.get('trials', 8)} trials "
                  f"pruned. "
                  f"Source: `bench/results/{name}` (`{current(r['command'])}`).", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------ TensorBoard (bench/perf/tensorboard_page.py)

TENSORBOARD_RESULT = RESULTS / "tensorboard_cost.json"


def tensorboard_cost() -> str:
    """BENCHMARKS.md's block: what TensorBoard logging costs a run."""
    r = json.loads(TENSORBOARD_RESULT.read_text())
    return (f"| TensorBoard logging | median | |\n|---|---|---|\n"
            f"| appending one epoch (train/ and validation/) | {r['hook_median_ms']:.2f} ms "
            f"(95th percentile {r['hook_p95_ms']:.2f} ms) | {100 * r['hook_fraction_of_epoch']:.2f}% of the run's "
            f"{r['epoch_median_s']:.2f} s epoch |\n"
            f"| opening the log at a run's start, in a fresh process | {r['open_median_s']:.2f} s | imports "
            f"(tensorboardX's) included, once per run |\n\n"
            f"{r['hook_calls']} appended epochs on a copy of `{r['config']}` run {r['run']}; {r['machine']}, "
            f"{r['date']}. Source: `bench/results/{TENSORBOARD_RESULT.name}` (`python -m bench.perf.tensorboard_page cost`).\n")


# ------------------------------------------------------------------------------ prediction start-up (bench/perf/predict_startup.py)

def predict_startup() -> str:
    """BENCHMARKS.md's block: the latest measurement (wall, user and system CPU, medians)."""
    files = sorted(RESULTS.glob("predict-startup-*.json"))
    r = json.loads(files[-1].read_text())
    med = r["median_seconds"]
    if not isinstance(med["onnx"], dict):  # an older result recorded wall time only
        med = {k: {"wall": v} for k, v in med.items()}
    lines = ["| hdr predict RUN IMAGE reads | wall (median) | user CPU | system CPU | fastest wall |",
             "| --- | --- | --- | --- | --- |"]
    labels = {"onnx": "RUN/export/model.onnx with ONNX Runtime (no TensorFlow)", "keras": "RUN/model.keras with Keras/TensorFlow"}
    for k in ("onnx", "keras"):
        m = med[k]
        cpu = [f"{m[c]:.2f} s" if c in m else "-" for c in ("user", "system")]
        lines.append(f"| {labels[k]} | {m['wall']:.2f} s | {cpu[0]} | {cpu[1]} | {r['min_seconds'][k]:.2f} s |")
    m = r["machine"]
    lines += ["", f"One image ({Path(r['image']).name}), each a fresh process from start to exit, {r['repeats']} alternated "
                  f"runs of each; ONNX {r['speedup']}x faster (goal: under {r['goal_seconds']} s). Run: `{r['run']}`; "
                  f"{m['cpus']} CPUs" + (f" (load average {m['load_average_1min_at_end']} at the end: other work shared them)"
                                         if "load_average_1min_at_end" in m else "")
                  + f", Python {m['python']}, {r['date'][:10]}. Source: `bench/results/{files[-1].name}`, "
                  f"written by `{current(r['command'])}`."]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ photos (bench/perf/photos.py)

def photos() -> str:
    """BENCHMARKS.md's block: the latest measurement, each commit read as a row, by size and pen."""
    files = sorted(RESULTS.glob("photos-*.json"))
    r = json.loads(files[-1].read_text())
    keys = [k for k in ("size=small", "size=large", "pen=thin", "pen=ordinary", "pen=thick") if k in r["measured"][0]["groups"]]
    head = ["read by", "all", *(k.split("=")[1] for k in keys)]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for m in r["measured"]:
        cells = [f"{100 * m['accuracy']:.2f}%", *(f"{100 * m['groups'][k]['accuracy']:.2f}%" for k in keys)]
        lines.append(f"| hdr predict at {m['commit']} | " + " | ".join(cells) + " |")
    ref = r["reference_accuracy"]
    counts = ", ".join(f"{k.split('=')[1]} {r['measured'][0]['groups'][k]['n']}" for k in keys)
    lines += ["", f"{r['n']} photos of MNIST test digits (seed {r['seed']}; {counts}), "
                  f"read by a {r['run']['epochs']}-epoch run of `configs/{r['run']['config']}.yaml`. The same model reads "
                  f"{100 * ref['mnist_digits']:.2f}% of these digits as MNIST has them, and "
                  f"{100 * ref['pen_drawn_digits']:.2f}% of them drawn with the photos' pens and framed as MNIST "
                  f"frames digits, with no photo in between but with the pens' stroke widths. Reading the {r['n']} photos took "
                  + ", ".join(f"{m['predict']['wall_seconds']:.0f} s wall ({m['predict']['user_seconds']:.0f} s user, "
                              f"{m['predict']['system_seconds']:.0f} s system) at {m['commit']}" for m in r["measured"])
                  + f". Source: `bench/results/{files[-1].name}`, written by `{current(r['command'])}`."]
    return "\n".join(lines) + "\n"
