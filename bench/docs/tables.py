"""BENCHMARKS.md's tables, rendered from the stored results in bench/results/.

One function per table, each registered as a generated block in bench/docs/blocks.py. Each
function names the result files it reads: a new measurement changes the page only when a function
is pointed at it (and the prose beside the table is read again). The figures are computed here
from the raw records; the scripts that wrote them (bench/perf/: run.py, feeds.py, variants.py,
steps.py, resume.py, gpu.py) keep their own stdout tables. `targets()` is the page's first screen:
every target the page states, its latest figure, met or not, and where it was measured.
"""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

from bench.docs.harnesses import TARGETS, WALL_TARGETS
from bench.docs.pairs import steady, summarise
from bench.layout import RESULTS, current
med = statistics.median


def load(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


def table(header: list[str], rows: list[list[str]]) -> str:
    def line(cells):
        return "|" + "|".join(f" {c} " if c else " " for c in cells) + "|"

    return "\n".join([line(header), "|" + "---|" * len(header), *map(line, rows)]) + "\n"


def x(v: float) -> str:
    return f"{v:.2f}×"


def pct(v: float) -> str:
    return f"{100 * v:.2f}%"


def pp(v: float) -> str:
    return f"{100 * v:+.2f} pp".replace("-", "−")


def bold(s: str, on: bool = True) -> str:
    return f"**{s}**" if on else s


def day(name: str) -> str:
    """The date in a result's name: train-cnn-20261125-052055 -> 2026-11-25."""
    d = re.search(r"-(\d{8})-\d{6}$", name)[1]
    return f"{d[:4]}-{d[4:6]}-{d[6:]}"


def src(*names: str) -> str:
    return ", ".join(f"`bench/results/{n}`" for n in names)


def loads(*records: dict) -> str:
    """The range of the 1-minute load average recorded in train or feeds results."""
    vs = [r["load"] for d in records for p in d.get("pairs", []) for r in (p["plain"], p["hdr"])]
    vs += [r["load"] for d in records for rounds in d.get("results", {}).values() for r in rounds]
    return f"{min(vs):.1f}-{max(vs):.1f}"


# ------------------------------------------------------------------------------ hdr train vs plain Keras

TRAIN_NOW = ("train-cnn-20261125-052055", "train-mlp-20261125-052340")  # AVX2 EPYC, tf.data feed
TRAIN_AVX512 = ("train-cnn-20261124-072056", "train-mlp-20261124-071441")  # PyDataset feed
BF16 = ("train-cnn-20261124-070554", "train-cnn-20261124-061947", "train-cnn-20261124-053356")
SEC, FAULTS, MIB = "{:.1f} s", "{:,.0f}", "{:.0f} MiB"


def train_cells(s: dict, k: str, fmt: str = SEC, strong: bool = False) -> list[str]:
    """[ratio, plain, hdr] of one measure of summarise()."""
    r, a, b = s[k]
    if k == "acc":
        return [pp(r), pct(a), pct(b)]
    return [bold(x(r), strong), fmt.format(a), fmt.format(b)]


def per_pair(d: dict, k: str) -> str:
    return ", ".join(x(p["hdr"][k] / p["plain"][k]) for p in d["pairs"])


def seeds(d: dict) -> str:
    return ", ".join(str(p["seed"]) for p in d["pairs"])


def config(d: dict) -> str:
    return f"`configs/{Path(d['config']).name}`"


def train_now() -> str:
    """Section 1: hdr train against plain Keras, CNN and MLP side by side."""
    cnn, mlp = map(load, TRAIN_NOW)
    sc, sm = summarise(cnn["pairs"]), summarise(mlp["pairs"])
    rows = [("whole process, wall: hdr / plain", "wall", SEC, True),
            ("whole process, CPU (user + system): hdr / plain", "cpu", SEC, True),
            ("user CPU", "user", SEC, False), ("system CPU", "sys", SEC, False),
            ("minor page faults, whole process", "minflt", FAULTS, False),
            ("steady epoch, CPU: speed-up plain / hdr", "steady_cpu", SEC, False),
            ("peak memory: hdr / plain", "peak_mib", MIB, False),
            (f"test accuracy, mean of seeds {seeds(cnn)}", "acc", SEC, False)]
    header = [f"{cnn['epochs']} epochs, {len(cnn['pairs'])} alternated pairs, median",
              f"CNN ({config(cnn)}): ratio", "plain", "hdr", f"MLP ({config(mlp)}): ratio", "plain", "hdr"]
    body = [[label, *train_cells(sc, k, f, b), *train_cells(sm, k, f, b)] for label, k, f, b in rows]
    return table(header, body) + (
        f"\n({src(*TRAIN_NOW)}; load average {loads(cnn, mlp)}. Per pair, hdr / plain: the CNN's wall "
        f"{per_pair(cnn, 'wall')}, CPU {per_pair(cnn, 'cpu')}; the MLP's wall {per_pair(mlp, 'wall')}, "
        f"CPU {per_pair(mlp, 'cpu')}.)\n")


AVX512_ROWS = [("whole process, wall: hdr / plain", "wall", SEC, True),
               ("whole process, CPU time: hdr / plain", "cpu", SEC, False),
               ("first epoch: speed-up plain / hdr", "first", SEC, False),
               ("steady epoch: speed-up plain / hdr", "steady", SEC, False),
               ("steady epoch, CPU time: speed-up plain / hdr", "steady_cpu", SEC, False),
               ("peak memory: hdr / plain", "peak_mib", MIB, False)]


def _train_avx512(name: str, what: str) -> str:
    d = load(name)
    s = summarise(d["pairs"])
    rows = [*AVX512_ROWS, (f"test accuracy, mean of seeds {seeds(d)}", "acc", SEC, False)]
    header = [f"{what} ({config(d)}), {d['epochs']} epochs, {len(d['pairs'])} pairs", "ratio (median of pairs)",
              "plain Keras", "hdr"]
    return table(header, [[label, *train_cells(s, k, f, b)] for label, k, f, b in rows]) + (
        f"\n({src(name)}; load average {loads(d)}; per pair, whole process wall hdr / plain "
        f"{per_pair(d, 'wall')}, CPU {per_pair(d, 'cpu')}.)\n")


def train_avx512_cnn() -> str:
    return _train_avx512(TRAIN_AVX512[0], "seed-003 CNN")


def train_avx512_mlp() -> str:
    return _train_avx512(TRAIN_AVX512[1], "seed-004 512-512 dropout MLP")


def accuracy_per_seed() -> str:
    """Test accuracy per seed after 2 epochs, hdr − plain, in every stored 2-epoch measurement."""
    names = [*TRAIN_NOW, *TRAIN_AVX512]
    rows = []
    for n in names:
        d = load(n)
        diffs = [pp(p["hdr"]["test_accuracy"] - p["plain"]["test_accuracy"]) for p in d["pairs"]]
        rows.append([f"`{n}`", config(d), *diffs])
    return table(["measurement", "config", *(f"seed {p['seed']}" for p in load(names[0])["pairs"])], rows)


# ------------------------------------------------------------------------------ bf16

def bf16_speed() -> str:
    d = load(BF16[0])
    s = summarise(d["pairs"])
    rows = [*AVX512_ROWS]
    rows[3] = ("**steady epoch: speed-up plain / hdr**", "steady", SEC, True)
    header = [f"seed-003 CNN, {d['epochs']} epochs: `hdr train {config(d)[1:-1]}` vs plain Keras (fp32)",
              "ratio (median of pairs)", "plain Keras", "hdr"]
    speedups = ", ".join(x(steady(p["plain"]["epoch_seconds"]) / steady(p["hdr"]["epoch_seconds"]))
                         for p in d["pairs"])
    return table(header, [[label, *train_cells(s, k, f, b)] for label, k, f, b in rows]) + (
        f"\n({src(BF16[0])}; steady epoch per pair, plain / hdr: {speedups}.)\n")


def bf16_runs() -> str:
    """Every stored bf16 measurement against plain Keras: per-epoch speed-up and accuracy."""
    rows = []
    for n in BF16:
        d = load(n)
        s = summarise(d["pairs"])
        rows.append([f"`{n}`", str(d["epochs"]), x(s["steady"][0]), x(s["steady_cpu"][0]), x(s["wall"][0]),
                     pp(s["acc"][0])])
    return table(["measurement", "epochs", "steady epoch, wall: plain / hdr", "steady epoch, CPU: plain / hdr",
                  "whole process, wall: hdr / plain", "test accuracy, hdr − plain (mean of 3 seeds)"], rows)


def bf16_accuracy() -> str:
    """Test accuracy per seed after the experiment's 10 epochs, in the stored 10-epoch measurements."""
    names = [n for n in BF16 if load(n)["epochs"] == 10]
    runs = [load(n) for n in names]
    by_seed = [{p["seed"]: p for p in d["pairs"]} for d in runs]
    rows = []
    for seed in sorted(by_seed[0]):
        plain = sorted({pct(b[seed]["plain"]["test_accuracy"]) for b in by_seed})  # one figure if every run agrees
        rows.append([str(seed), " / ".join(plain), *(pct(b[seed]["hdr"]["test_accuracy"]) for b in by_seed)])
    means = [summarise(d["pairs"])["acc"] for d in runs]
    plain = sorted({pct(m[1]) for m in means})
    rows.append(["**mean**", bold(" / ".join(plain)), *(bold(f"{pct(m[2])} ({pp(m[0])})") for m in means)])
    return table(["seed", "plain Keras, fp32", *(f"hdr, `cnn_adam_bf16.yaml` (`{n}`)" for n in names)], rows)


VARIANT_WHAT = {  # bench/perf/variants.py's variants in words, as this page uses them
    "spe16": "fp32, `steps_per_execution` 16 (hdr's default)",
    "bf16s": "+ `mixed_bfloat16` (`configs/cnn_adam_bf16.yaml`)",
    "bf16s_nodet": "+ no TF op determinism",
    "bf16s_inter1": "+ TF inter-op threads 1",
}


def _variants(d: dict) -> dict:
    """{variant: (median steady s/epoch, median steady CPU s/epoch)} of a bench/perf/variants.py result."""
    return {v: (med(r["steady"] for r in rs), med(r["steady_cpu"] for r in rs)) for v, rs in d["results"].items()}


def bf16_variants() -> str:
    name = "variants-bf16-avx512"
    m = _variants(load(name))
    base = next(iter(m.values()))
    rows = [[v, VARIANT_WHAT[v], f"{w:.2f}", bold(x(base[0] / w), v == "bf16s"), f"{c:.2f}", x(base[1] / c)]
            for v, (w, c) in m.items()]
    return table(["variant", "what", "median s/epoch", "speed-up", "CPU s/epoch", "CPU speed-up"], rows) + (
        f"\n({src(name)}.)\n")


# ------------------------------------------------------------------------------ the feed

FEEDS_NOW, FEEDS_FIRST = "feeds-20261125-052741", "feeds-20261125-045711"
FEED_ROWS = [  # (result, variant, label, bold, show the losses)
    (FEEDS_NOW, "pydataset", "PyDataset of fancy-indexed batches (hdr before)", True, True),
    (FEEDS_NOW, "hdr", "`EpochFeed`: tf.data, order in a variable, rows gathered in TF (hdr now)", True, True),
    (FEEDS_NOW, "hdr_nodet", "the same without TF op determinism", False, True),
    (FEEDS_NOW, "arrays", "`fit(x, y, shuffle=False)` on the arrays, no reshuffling (a floor)", False, True),
    (FEEDS_FIRST, "pydataset_nodet", "*first run:* PyDataset, no TF op determinism", False, False),
    (FEEDS_FIRST, "pyview", "*first run:* PyDataset of views of a buffer permuted once per epoch "
                            "(`np.take(..., out=)`)", False, False),
    (FEEDS_FIRST, "perepoch", "*first run:* a `fit` call per epoch on the rows taken in that epoch's order", False,
     True),
]


def _feed(d: dict, v: str) -> dict:
    """Medians per steady epoch (2nd on, over rounds) of a bench/perf/feeds.py variant, and round 1's losses."""
    runs = d["results"][v]
    steady = [e for r in runs for e in r["epochs"][1:]]
    m = {k: med(e[k] for e in steady) for k in ("user", "sys", "minflt")}
    return {**m, "cpu": m["user"] + m["sys"], "loss": [e["loss"] for e in runs[0]["epochs"]]}


def feeds() -> str:
    now, first = load(FEEDS_NOW), load(FEEDS_FIRST)
    data = {FEEDS_NOW: now, FEEDS_FIRST: first}
    args = re.search(r"--samples (\d+) --epochs (\d+)", now["command"])
    rows = []
    for name, v, label, strong, losses in FEED_ROWS:
        f = _feed(data[name], v)
        rows.append([label, f"{f['user']:.2f}", bold(f"{f['sys']:.2f}", strong), bold(f"{f['minflt']:,.0f}", strong),
                     ", ".join(f"{loss:.5f}" for loss in f["loss"]) if losses else ""])
    header = [f"feed (seed-003 CNN, {int(args[1]):,} training images, {int(args[1]) // 200} batches of 200; "
              "per steady epoch)", "user s", "system s", "minor faults", f"loss, epochs 1-{args[2]}"]
    py, ours, nodet = (_feed(now, v) for v in ("pydataset", "hdr", "hdr_nodet"))
    return table(header, rows) + (
        f"\n({src(FEEDS_NOW)}, `{current(now['command'])}`, load {loads(now)}; the rows marked *first run* are "
        f"from `{FEEDS_FIRST}`, `{current(first['command'])}`, load {loads(first)}.) Per steady epoch `EpochFeed` used "
        f"{ours['cpu']:.1f} CPU-seconds (user + system) against the PyDataset's {py['cpu']:.1f} "
        f"({x(ours['cpu'] / py['cpu'])}), {py['sys'] / ours['sys']:.0f}× less system time and "
        f"{py['minflt'] / ours['minflt']:.0f}× fewer page faults; without TF op determinism "
        f"{nodet['cpu']:.1f} ({x(nodet['cpu'] / ours['cpu'])} of `EpochFeed`). The PyDataset faulted "
        f"{py['minflt'] / (int(args[1]) // 200):,.0f} times per training step.\n")


# ------------------------------------------------------------------------------ CLI, data, predict, resume

CLI = "cli-20261124-053949"


def cli_latency() -> str:
    d = load(CLI)
    n = d["runs"]
    cases = [("python -c pass (interpreter start, for scale)", "`python -c pass` (interpreter start, for scale)",
              None),
             ("python -c 'import keras' (for scale)", "`python -c 'import keras'` (what the light commands avoid)",
              None),
             ("hdr --help", "`hdr --help`", 0.3),
             (f"hdr compare over {n} runs", f"`hdr compare` over {n} runs", 1.0),
             (f"hdr runs over {n} runs", f"`hdr runs` over {n} runs", None)]
    rows = [[label, bold(f"{med(d['seconds'][k]):.3f} s", target is not None), f"{min(d['seconds'][k]):.3f} s",
             "" if target is None else f"≤ {target} s"] for k, label, target in cases]
    return table(["command", "median", "min", "target"], rows) + f"\n({src(CLI)}.)\n"


def data_loading() -> str:
    name = "data-20261124-054054"
    s = load(name)["seconds"]
    rows = []
    for ds in ("mnist", "usps"):
        d, c = med(s[f"{ds}|decode"]), med(s[f"{ds}|cached"])
        rows.append([ds, f"{d:.3f} s", f"{c:.3f} s", f"{d / c:.0f}×"])
    return table(["dataset", "decode: gunzip + sha256 + parse", "from the array cache", "speed-up"], rows) + (
        f"\n({src(name)}.)\n")


def predict_throughput() -> str:
    name = "predict-20261124-054048"
    d = load(name)
    ips = {k: med(v) for k, v in d["images_per_second"].items()}

    def arg(flag, default):  # bench/perf/run.py predict's defaults unless the command set them
        m = re.search(rf"{flag} (\d+)", d["command"])
        return int(m[1]) if m else default

    cases = [("one image a call", arg("--single", 200), "`model.predict`",
              "`hdr.apps.predict.predict_arrays` (what `hdr predict` and `hdr draw` use)"),
             ("batched", arg("--batched", 10000), "`model.predict` (batch 32)",
              "`hdr.apps.predict.predict_arrays` (batch 1024)")]
    rows = []
    for case, n, plain, ours in cases:
        a, b = ips[f"{case}|model.predict"], ips[f"{case}|hdr.predict.predict_arrays"]
        r = b / a
        rows += [[f"{case} ({n:,} images)", plain, f"{a:,.0f}", "1.00×"],
                 [f"{case} ({n:,} images)", ours, f"{b:,.0f}", f"{r:.1f}×" if r >= 10 else x(r)]]
    return table(["case", "function", "images/s", "vs `model.predict`"], rows) + f"\n({src(name)}.)\n"


def resume() -> str:
    name, before = "resume-20261124-071627", "resume-20261124-054232"
    rows = [[str(r["seed"]), str(r["kept"]), "yes" if r["same_before_cut"] else "NO",
             bold("yes") if r["same_after_cut"] else "NO", pct(r["test_whole"]), pct(r["test_resumed"])]
            for r in load(name)["rows"]]
    gaps = ", ".join(pp(r["test_resumed"] - r["test_whole"]) for r in load(before)["rows"])
    return table(["seed", "epochs kept at SIGINT", "history identical before the cut", "after the cut",
                  "test accuracy, uninterrupted", "test accuracy, resumed"], rows) + (
        f"\n({src(name)}. Before this, {src(before)}: resumed minus uninterrupted test accuracy {gaps}.)\n")


# ------------------------------------------------------------------------------ GPU

GPU_STEADY_GOAL = 0.15  # s per steady epoch, hdr's bf16 CNN with one call into the backend per epoch
GPU_TO_99_GOAL = 8.0  # s from `hdr train` start to >= 99.0% test accuracy, fastest config


def _gpu_result() -> dict | None:
    found = sorted(RESULTS.glob("gpu-*.json"))
    return json.loads(found[-1].read_text()) if found else None


def gpu() -> str:
    """bench/perf/gpu.py's newest result; until there is one, the figures it would fill in."""
    d = _gpu_result()
    if d is None:
        return table(["figure", "value"], [
            ["plain Keras + JAX, seed-003 CNN, s/epoch (first / steady)",
             "not measured (task's figure on H100: ~7.6 s / ~0.7 s)"],
            ["hdr, `configs/cnn_adam.yaml`, s/epoch (first / steady)", "not measured"],
            ["hdr, `configs/cnn_adam_bf16.yaml` + `training.steps_per_execution=240`, s/epoch",
             f"not measured (goal ≤ {GPU_STEADY_GOAL} s steady)"],
            ["time from `hdr train` start to ≥ 99.0% test accuracy, fastest config",
             f"not measured (goal ≤ {GPU_TO_99_GOAL:.0f} s)"]])
    rows = []
    for what, rs in d["per_epoch"].items():
        first = med(r["epoch_seconds"][0] for r in rs)
        steady = med(med(r["epoch_seconds"][1:]) for r in rs)
        rows.append([what, f"{first:.2f} s / {steady:.3f} s", f"{med(r['wall'] for r in rs):.1f} s",
                     pct(statistics.mean(r["test_accuracy"] for r in rs))])
    for r in d["to_99"]:
        rows.append([f"{r['label']}: `{r['command']}`", "", bold(f"{r['wall']:.1f} s", r is _gpu_fastest(d)),
                     pct(r["test_accuracy"])])
    return table(["what", "s/epoch (first / steady)", "whole process", "test accuracy"], rows) + (
        f"\n({src(_gpu_name())}; {', '.join(d['devices'])}.)\n")


def _gpu_fastest(d: dict) -> dict | None:
    ok = [r for r in d["to_99"] if r["test_accuracy"] >= 0.99]
    return min(ok, key=lambda r: r["wall"]) if ok else None


def _gpu_name() -> str:
    return sorted(RESULTS.glob("gpu-*.json"))[-1].stem


# ------------------------------------------------------------------------------ the first screen: the targets

# The CPU each day's results were measured on, as the page says (its top and section 1): a result
# names its day, not its CPU model. Other days: the cores and architecture the result recorded.
CPUS = {"2026-11-23": "AVX2-only EPYC (earlier session)", "2026-11-24": "EPYC with AVX-512 BF16",
        "2026-11-25": "AVX2-only EPYC"}
SECTIONS = {  # where each target's details are
    "train": "[§1](#1-hdr-train-against-plain-keras)", "bf16": "[§2](#2-twice-as-fast-per-epoch-bf16)",
    "cli": "[§3](#3-cli-latency)", "predict": "[§5](#start-up-one-image-from-process-start)",
    "gpu": "[§7](#7-gpu)", "manyruns": "[§8](#8-10000-runs)", "time_to_99": "[§9](#9-time-to-99-)",
    "sweep": "[§10](#10-sweeps-of-short-runs-reused-workers)",
}


def cpu_on(date: str, recorded: str = "") -> str:
    """The "measured on" cell of a result of that date (YYYY-MM-DD...)."""
    d = date[:10]
    return f"{CPUS.get(d) or (recorded + ' (model not recorded)' if recorded else 'CPU not recorded')}, {d}"


def met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def gpu_target() -> str:
    """The time-to-99.0% cell of the GPU, from bench/perf/gpu.py's newest result."""
    d = _gpu_result()
    if d is None:
        return "**not measured: no GPU was lent to this task**"
    best = _gpu_fastest(d)
    return f"fastest to ≥ 99.0%: {best['label']}, {bold(format(best['wall'], '.1f'))} s" if best else \
        "no candidate reached 99.0%"


def _gpu_rows() -> list[list[str]]:
    d = _gpu_result()
    steady_what = (f"GPU: hdr's bf16 CNN (`configs/cnn_adam_bf16.yaml`, one call into the backend per epoch), "
                   f"steady epoch ≤ {GPU_STEADY_GOAL} s")
    to_99_what = f"GPU: `hdr train` start to ≥ 99.0% test accuracy ≤ {GPU_TO_99_GOAL:.0f} s, whole process"
    if d is None:
        none = "**not measured: no GPU was lent to this task**"
        return [[steady_what, none, "not measured", "-", SECTIONS["gpu"]],
                [to_99_what, none, "not measured", "-", SECTIONS["gpu"]]]
    on = ", ".join(d["devices"]) + f", {_gpu_name()[4:8]}-{_gpu_name()[8:10]}-{_gpu_name()[10:12]}"
    bf16 = [rs for what, rs in d["per_epoch"].items() if "bf16" in what]
    rows = []
    if bf16:
        s = med(med(r["epoch_seconds"][1:]) for r in bf16[0])
        rows.append([steady_what, bold(f"{s:.3f} s"), met(s <= GPU_STEADY_GOAL), on, SECTIONS["gpu"]])
    best = _gpu_fastest(d)
    rows.append([to_99_what, gpu_target(), met(best is not None and best["wall"] <= GPU_TO_99_GOAL), on,
                 SECTIONS["gpu"]])
    return rows


def targets() -> str:
    """BENCHMARKS.md's first screen: every target the page states, its latest stored figure,
    whether it is met, the CPU it was measured on, and the section with the details."""
    cnn, mlp = (summarise(load(n)["pairs"]) for n in TRAIN_NOW)
    cli_s = load(CLI)["seconds"]
    helps, compare = med(cli_s["hdr --help"]), med(cli_s["hdr compare over 200 runs"])
    bf16 = [summarise(load(n)["pairs"]) for n in BF16]
    ten = [(n, s) for n, s in zip(BF16, bf16) if load(n)["epochs"] == 10]

    train_ok = all(round(s[k][0], 2) <= 1.0 for s in (cnn, mlp) for k in ("wall", "cpu"))
    at_limit = [m for m, s in (("CNN", cnn), ("MLP", mlp)) if round(s["wall"][0], 2) == 1.0]
    fast = [s["steady"][0] for s in bf16]
    twice = sum(round(v, 2) >= 2.0 for v in fast)
    cpu = [s["steady_cpu"][0] for s in bf16]
    acc_ok = all(abs(s["acc"][0]) <= 0.001 for _, s in ten)
    rows = [
        ["`hdr train` ≤ 1.00× plain Keras, wall and CPU time (same experiment, whole process)",
         f"CNN {bold(x(cnn['wall'][0]))} wall, {bold(x(cnn['cpu'][0]))} CPU; "
         f"MLP {bold(x(mlp['wall'][0]))} wall, {bold(x(mlp['cpu'][0]))} CPU",
         met(train_ok) + (f", the {' and '.join(at_limit)} at the limit" if train_ok and at_limit else ""),
         cpu_on(day(TRAIN_NOW[0])), SECTIONS["train"]],
        ["`hdr --help` ≤ 0.3 s", bold(f"{helps:.3f} s"), met(helps <= 0.3), cpu_on(day(CLI)), SECTIONS["cli"]],
        ["`hdr compare` over 200 runs ≤ 1 s", bold(f"{compare:.3f} s"), met(compare <= 1.0), cpu_on(day(CLI)),
         SECTIONS["cli"]],
        ["`hdr --help`, `hdr compare` import no TensorFlow/Keras",
         "none imported (`tests/test_perf_paths.py`, `tests/test_compare.py`)", "met", "every test run",
         SECTIONS["cli"]],
        ["≥ 2.0× per epoch on the seed-003 CNN (bf16, `configs/cnn_adam_bf16.yaml`)",
         f"{bold(x(fast[0]))} per steady epoch, wall ({' and '.join(map(x, fast[1:]))} earlier); "
         f"{min(cpu):.2f}-{max(cpu):.2f}× in CPU time",
         f"about 2× in wall time (at or above it in {twice} of {len(fast)}); "
         f"{'not' if max(cpu) < 2 else 'also'} in CPU time", cpu_on(day(BF16[0])), SECTIONS["bf16"]],
        ["bf16 test accuracy within 0.1 pp of plain Keras's fp32 (mean of 3 seeds, 10 epochs)",
         " and ".join(bold(pp(s["acc"][0])) for _, s in ten), met(acc_ok),
         cpu_on(day(ten[0][0])), SECTIONS["bf16"]],
        *_gpu_rows(),
        *later_targets(),
    ]
    order = list(SECTIONS.values())
    rows.sort(key=lambda row: order.index(row[-1]))  # in the page's order of sections
    return table(["target", "latest figure", "met?", "measured on", "details"], rows) + (
        "\n(Each figure is the newest stored measurement of its section, where its command, its result file "
        "and the machine's load are named.)\n")


def newest(prefix: str) -> tuple[str, dict] | None:
    paths = sorted(RESULTS.glob(f"{prefix}-2*.json"))
    return (paths[-1].name, json.loads(paths[-1].read_text())) if paths else None


def later_targets() -> list[list[str]]:
    """Rows for the targets set after the first phase: prediction start-up, time to 99 %, sweeps
    of short runs, 10,000 runs. Each from the newest result of its bench script."""
    rows = []
    got = newest("predict-startup")
    if got:
        r = got[1]
        wall = r["median_seconds"]["onnx"]["wall"]
        rows.append(["`hdr predict RUN IMAGE`, one image from process start, < 0.5 s",
                     f"{bold(f'{wall:.2f} s')} median wall with the run's ONNX export ({r['speedup']:.1f}× faster "
                     "than through Keras)", met(wall < 0.5), cpu_on(r["date"]), SECTIONS["predict"]])
    got = newest("time-to-99")
    if got:
        r = got[1]
        for ds, wall_target in WALL_TARGETS.items():
            runs = r[ds].get("fast") or []
            if not runs:
                continue
            acc = statistics.fmean(x["test_accuracy"] for x in runs)
            wall = statistics.fmean(x["wall"] for x in runs)
            goal = TARGETS[ds]
            rows.append([f"{ds.upper()} ≥ {100 * goal:.1f}% test accuracy (mean of seeds) in ≤ {wall_target:.0f} s, "
                         "whole `hdr train` process",
                         f"`configs/fast/{ds}.yaml`: {bold(pct(acc))} in {bold(f'{wall:.1f} s')} (means of "
                         f"{len(runs)} seeds)",
                         f"accuracy {met(acc >= goal)}, time {met(wall <= wall_target)}", cpu_on(r["written"]),
                         SECTIONS["time_to_99"]])
    got = newest("sweep")
    if got:
        r = got[1]
        two = newest("sweep-jobs2")
        also = (f"; two at a time on both sides: {x(two[1]['median_ratio_wall'])} wall, "
                f"{x(two[1]['median_ratio_cpu'])} CPU") if two else ""
        verdict = met(r["median_ratio_wall"] >= 3.0) + " one at a time" + (
            f", {met(two[1]['median_ratio_wall'] >= 3.0)} two at a time" if two else "")
        m = r["machine"]
        rows.append([f"a sweep of {r['points']} short runs ≥ 3× less wall time than separate `hdr train` processes",
                     f"{bold(x(r['median_ratio_wall']))} wall, {x(r['median_ratio_cpu'])} CPU, one at a time{also}",
                     verdict, cpu_on(r["when"], f"{m['cores']}-core {m['cpu']}"), SECTIONS["sweep"]])
    got = newest("manyruns")
    if got:
        r = got[1]
        for name in ("hdr runs DIR", "hdr compare DIR"):
            w = r["summary"][name]["warm"]
            wall = w["wall"]
            rows.append([f"`{name}` over {r['runs']:,} runs ≤ 1 s, ≤ 300 MB",
                         f"{bold(f'{wall:.2f} s')} wall ({w['cpu']:.2f} s CPU), {w['max_rss_mb']:.0f} MB, "
                         f"with the index, load {r['machine']['load_average_before'][0]:.1f}",
                         met(w["wall"] <= 1.0 and w["max_rss_mb"] <= 300), cpu_on(r["written"]),
                         SECTIONS["manyruns"]])
    return rows


# ------------------------------------------------------------------------------ appendix: an AVX2-only CPU

def appendix_measures() -> str:
    """Single measures against the same baseline, CPU time per epoch or per train step."""
    cnn, mlp, jit = (load(n) for n in ("variants-cnn", "variants-mlp", "variants-jit"))
    steps = load("steps-cnn")["results"]

    def speed(d, v, base):  # CPU speed-up of v over base; losses equal in every round: identical history
        m = _variants(d)
        same = all(a["loss"] == b["loss"] for a, b in zip(d["results"][base], d["results"][v]))
        return m[base][1] / m[v][1], "identical history" if same else "no"

    def step(v):
        return med(r["train_cpu"] for r in steps["tf"]) / med(r["train_cpu"] for r in steps[v])

    rows = []
    for v, label in (("spe16", "`steps_per_execution` 16"), ("inter1", "TF `inter_op` threads 1"),
                     ("nodet", "no TF op determinism")):
        (c, same), (m, _) = speed(cnn, v, "base"), speed(mlp, v, "base")
        rows.append([label, x(c), x(m), same])
    rows.append(["`TF_ENABLE_ONEDNN_OPTS=0`", "not stored; re-measure with "
                 "`python -m bench.perf.steps --rounds 2 tf tf_eigen --out bench/results/steps-onednn.json`", "", ""])
    c, same = speed(jit, "jit", "nodet")
    rows.append(["XLA `jit_compile` (against no determinism)", bold(x(c)), "", same])
    # steps.py times a train step only: the precisions and backends compute other numbers by design.
    rows.append(["`KERAS_BACKEND=jax` (XLA on CPU)", f"{x(step('jax'))} (train step)", "", "no"])
    rows.append(["`mixed_float16`", f"{bold(x(step('tf_f16')))} (train step)", "", "no"])
    rows.append(["`mixed_bfloat16`", f"{bold(x(step('tf_bf16')))} (train step)", "", "no"])
    return table(["measure (alone, against the same baseline)", "CNN: CPU per epoch vs baseline", "MLP",
                  "same results?"], rows)


def appendix_summary() -> str:
    """hdr train and the light commands on the AVX2-only CPU (2026-11-23)."""
    names = ("train-cnn-20261123-205008", "train-mlp-20261123-205609", "cli-20261123-210633")
    cnn, mlp = (summarise(load(n)["pairs"]) for n in names[:2])
    c = load(names[2])["seconds"]
    rows = [["`hdr train` / plain Keras, seed-003 CNN, 2 epochs, whole process", f"{x(cnn['wall'][0])} wall, "
             f"{x(cnn['cpu'][0])} CPU", f"`{names[0]}`"],
            ["`hdr train` / plain Keras, dropout MLP, 2 epochs, whole process", f"{x(mlp['wall'][0])} wall, "
             f"{x(mlp['cpu'][0])} CPU", f"`{names[1]}`"],
            ["`hdr --help`", f"{med(c['hdr --help']):.3f} s", f"`{names[2]}`"],
            ["`hdr compare` over 200 runs", f"{med(c['hdr compare over 200 runs']):.3f} s", f"`{names[2]}`"]]
    return table(["measure (AVX2-only EPYC, 2026-11-23)", "result (median)", "source"], rows)
