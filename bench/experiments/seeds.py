"""The write-ups' experiments, each trained once as shipped: the README's table of configs.

    python -m bench.experiments.seeds train                  # hdr train every config into runs/writeups/ (~30 min on 2 cores)
    python -m bench.experiments.seeds collect runs/writeups  # bench/results/writeups.json from those run folders
    python -m bench.docs.blocks render                       # the README table from that file

`collect` reads run folders only, so any set of completed runs of these configs can be collected
(runs of one config: the newest completed one counts). What each write-up reported is written
down once, here, beside the experiment it describes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from bench.layout import DEFAULT_DATA, RESULTS, ROOT

RESULT = RESULTS / "writeups.json"

# config -> (the experiment in the write-up's words, what the write-up reported)
WRITEUPS = {
    "mlp_adam.yaml": ("write-up 000: MLP, ReLU hidden layers, softmax, 5 epochs, Adam",
                      "97.97% (validated on the test set)"),
    "mlp_adagrad.yaml": ("write-up 000: the same with Adagrad as Keras 2.1 had it (learning rate 0.01, "
                         "accumulators from 0)", "97.99%"),
    "mlp_adadelta.yaml": ("write-up 000: the same with Adadelta (learning rate 1.0, the Keras default then)",
                          "98.27%"),
    "usps_cnn.yaml": ("write-up 001: CNN for 16×16 USPS, 5×5 kernels, LeakyReLU, dropout, 100 epochs, batch 256; "
                      "hdr adds small rotations, shifts and zooms (RECORDS.md says why)",
                      "97.11% test, error 2.89%"),
    "cnn_small_adam.yaml": ("write-up 002: small CNN (8 and 16 filters, dropout), Adam, 5 epochs",
                            "98.9% train accuracy"),
    "cnn_adam.yaml": ("write-up 003: CNN 32-64-64 3×3, dense 100, He-uniform, Adam, batch 200, 10 epochs",
                      "98.96% ± 0.10 (5-fold CV)"),
    "cnn_adam_bf16.yaml": ("write-up 003's CNN in mixed bfloat16: faster where bf16 is native (GPUs, AVX-512 "
                           "BF16/AMX CPUs), slower elsewhere; see BENCHMARKS.md", "-"),
    "slp_sgd.yaml": ("write-up 004, model 1: single-layer perceptron, SGD, batch 64, 70 epochs", "92.10% test"),
    "mlp_sgd.yaml": ("write-up 004, model 2: MLP 64-64, SGD, 100 epochs", "97.37% test"),
    "mlp_dropout_sgd.yaml": ("write-up 004, model 3: MLP 128-128, dropout 0.3, SGD, 50 epochs", "97.28% test"),
    "mlp_dropout_adam.yaml": ("write-up 004, model 4: MLP 512-512, dropout 0.3, Adam, batch 128, 31 epochs",
                              "98.24% test"),
}


def train(runs: Path, only: list[str]) -> None:
    exe = Path(sys.executable).with_name("hdr")
    env = {**os.environ}
    env.setdefault("HDR_DATA_DIR", str(DEFAULT_DATA))
    for name in only or WRITEUPS:
        print(f"training {name}", file=sys.stderr, flush=True)
        subprocess.run([str(exe), "train", str(ROOT / "configs" / name), "--runs-dir", str(runs), "-q"],
                       env=env, check=True)


def trained_as_shipped(folder: Path, name: str) -> bool:
    """A run counts only if it trained the config as it is now (a changed config needs a new run)."""
    from hdr.engine import config as config_mod

    return config_mod.load_run_config(folder / "config.yaml").resolved() == \
        config_mod.load(ROOT / "configs" / name).resolved()


def collect(runs: Path) -> dict:
    newest: dict[str, dict] = {}
    for folder in sorted(p for p in runs.iterdir() if (p / "metrics.json").is_file()):
        info = json.loads((folder / "run.json").read_text())
        name = f"{info['config_name']}.yaml"
        if name not in WRITEUPS or info.get("status") != "completed" or not trained_as_shipped(folder, name):
            continue
        m = json.loads((folder / "metrics.json").read_text())
        newest[name] = {
            "run": folder.name, "started": info["started"], "test_accuracy": m["test_accuracy"],
            "train_accuracy": m["train_accuracy"], "best_val_accuracy": m.get("best_val_accuracy"),
            "epochs": m["epochs"], "train_seconds": m["train_seconds"], "seed": info["seed"],
            "runtime": info.get("runtime", {}), "versions": info.get("versions", {}),
        }
    return {
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "configs": {name: {"experiment": exp, "reported": rep, "hdr": newest.get(name)}
                    for name, (exp, rep) in WRITEUPS.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "writeups")
    t.add_argument("configs", nargs="*", help="only these config file names")
    c = sub.add_parser("collect")
    c.add_argument("runs_dir", type=Path)
    args = ap.parse_args()
    if args.cmd == "train":
        train(args.runs_dir, args.configs)
    else:
        RESULT.write_text(json.dumps(collect(args.runs_dir), indent=2) + "\n")
        print(RESULT)


if __name__ == "__main__":
    main()
