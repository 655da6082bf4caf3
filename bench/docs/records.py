"""RECORDS.md's tables, rendered from the stored results of the record experiments.

    records.json         bench/experiments/records.py collect   (records_mnist, records_usps)
    usps-diagnosis.json  bench/experiments/usps_diagnosis.py collect   (usps_diagnosis)
    usps-writeup.json    bench/baselines/usps_writeup.py   (usps_writeup)

The literature rows are the papers' published figures, written down here, beside the table that
shows them.
"""

from __future__ import annotations

import json
import statistics

from bench.layout import RESULTS

RECORDS_RESULT = RESULTS / "records.json"
DIAGNOSIS_RESULT = RESULTS / "usps-diagnosis.json"
WRITEUP_RESULT = RESULTS / "usps-writeup.json"

# Published test error rates (%), as the papers report them; model size where the paper gives it.
LITERATURE = {
    "mnist": [
        ("LeCun et al. 1998", "linear classifier (1-layer NN)", 12.0, "7.9k"),
        ("LeCun et al. 1998", "2-layer NN, 300 hidden units", 4.7, "240k"),
        ("LeCun et al. 1998", "LeNet-5", 0.95, "60k"),
        ("LeCun et al. 1998", "LeNet-5, distortions", 0.8, "60k"),
        ("Simard et al. 2003", "2-layer MLP, 800 hidden, elastic distortions", 0.7, "636k"),
        ("Simard et al. 2003", "CNN, elastic distortions", 0.4, "-"),
        ("Ciresan et al. 2010", "6-layer MLP, deformations, GPU", 0.35, "12.1M"),
        ("Ciresan et al. 2011", "committee of 7 CNNs, deformations", 0.27, "-"),
        ("An et al. 2020", "ensemble of 3 simple BN CNNs, augmentation", 0.13, "-"),
    ],
    "usps": [
        ("LeCun et al. 1989", "zip-code network, backpropagation", 5.0, "9.8k"),
        ("Bromley & Säckinger 1991", "human performance", 2.5, "-"),
        ("Chaaban & Scheessele 2007", "human performance", 2.37, "-"),
    ],
}
# The write-ups hdr grew from, as they report their figures (error %).
WRITEUPS = {
    "mnist": [("write-up 003", "CNN 32-64-64, 10 epochs (mean of its folds)", 100 - 98.86, "-")],
    "usps": [("write-up 001", "CNN, one 5x5 conv, 100 epochs, read off the test set", 100 - 97.11, "-"),
             ("ccexam package", "CNN on USPS", 100 - 97.09, "-")],
}


def _verdict(goal: float, accuracy: float) -> str:
    short = f"not met: {100 * (goal - accuracy):.2f} pp short"
    return f"≥ {100 * goal:.2f} %: {'met' if accuracy >= goal else short}"


def table(dataset: str) -> str:
    r = json.loads(RECORDS_RESULT.read_text()) if RECORDS_RESULT.is_file() else {"records": {}, "written": "never"}
    lines = ["| who | model | test error | parameters | wall / CPU time per run (2-core EPYC) | goal |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, e in r["records"].items():
        if not name.startswith(dataset):
            continue
        scored = e.get("seeds") or [x["seed"] for x in e["runs"]]
        seeds = ", ".join(map(str, scored))
        others = [x for x in e["runs"] if x["seed"] not in scored]
        wall = [x["wall_seconds"] for x in e["runs"] if x.get("wall_seconds") is not None]
        cpu = [x["cpu_seconds"] for x in e["runs"] if x["cpu_seconds"] is not None]
        time_txt = " / ".join(f"{statistics.fmean(t) / 60:.0f} min" if t else "-" for t in (wall, cpu))
        err = f"**{100 * (1 - e['mean']):.2f} %** " + (
            f"± {100 * e['std']:.2f} (seeds {seeds})" if len(scored) > 1 else f"(seed {seeds} only)") + (
            "; " + ", ".join(f"seed {x['seed']}: {100 * (1 - x['test_accuracy']):.2f} %" for x in others)
            if others else "")
        met = _verdict(e["goal"], e["mean"]) if len(scored) >= 3 or e["mean"] < e["goal"] else \
            f"≥ {100 * e['goal']:.2f} %: needs 3 seeds"
        lines.append(f"| hdr `{e['config']}` | {e['what']} | {err} | {e['runs'][0]['params']:,} | {time_txt} | "
                     f"{met} |")
        if "ensemble" in e:
            x = e["ensemble"]
            goal = _verdict(x["goal"], x["test_accuracy"]) if x["goal"] else "report it"
            lines.append(f"| hdr ensemble of {x['members']} `{e['config']}` runs | averaged probabilities | "
                         f"**{100 * (1 - x['test_accuracy']):.2f} %** | - | - | {goal} |")
    for who, model, err, params in WRITEUPS[dataset] + LITERATURE[dataset]:
        lines.append(f"| {who} | {model} | {err:.2f} % | {params} | - | |")
    lines += ["", f"hdr rows: `bench/results/records.json` ({r['written'][:10]}), from the run folders in "
                  "runs/records/ (`python -m bench.experiments.records collect`); the others as published."]
    return "\n".join(lines) + "\n"


def render_mnist() -> str:
    return table("mnist")


def render_usps() -> str:
    return table("usps")


def usps_diagnosis() -> str:
    """The write-up 001 diagnosis: one change at a time, sorted by validation accuracy."""
    r = json.loads(DIAGNOSIS_RESULT.read_text())
    lines = ["| variant (one change from the write-up as first read) | seeds | best val, mean | test, mean | params |",
             "| --- | --- | --- | --- | --- |"]
    for name, v in sorted(r["variants"].items(), key=lambda kv: -kv[1]["mean_best_val"]):
        seeds = ",".join(str(x["seed"]) for x in sorted(v["runs"], key=lambda x: x["seed"]))
        lines.append(f"| {name}: {v['what']} | {seeds} | {100 * v['mean_best_val']:.2f}% | "
                     f"{100 * v['mean_test']:.2f}% | {v['runs'][0]['params']:,} |")
    lines += ["", f"Sorted by validation accuracy (the selection); source `bench/results/usps-diagnosis.json` "
                  f"({r['written'][:10]}), `python -m bench.experiments.usps_diagnosis collect`."]
    return "\n".join(lines) + "\n"


def usps_writeup() -> str:
    """Write-up 001 replayed in plain Keras: the test accuracy after 100 epochs and the best of them."""
    r = json.loads(WRITEUP_RESULT.read_text())
    lines = ["| pixels | seed | test accuracy after 100 epochs | best of the 100 epochs on the test set (epoch) |",
             "| --- | --- | --- | --- |"]
    for x in r["runs"]:
        lines.append(f"| {x['scaling']} | {x['seed']} | {100 * x['last']:.2f}% | "
                     f"{100 * x['best']:.2f}% ({x['best_epoch']}) |")
    lines += ["", f"Source `bench/results/usps-writeup.json` ({r['written'][:10]}), "
                  "`python -m bench.baselines.usps_writeup`."]
    return "\n".join(lines) + "\n"
