"""TensorBoard logging: what it costs an epoch, and what a person sees.

    python -m bench.perf.tensorboard_page cost [RUN]      # -> bench/results/tensorboard_cost.json
    python -m bench.perf.tensorboard_page page RUNS_DIR OUT.png [--tab scalars]
    python -m bench.perf.tensorboard_page render          # the BENCHMARKS.md block (bench/docs/harnesses.py)

cost: the per-epoch hook (hdr.engine.tensorboard_log.EpochLog) appending one epoch to the train and
validation event files, timed over many calls on a copy of a real run folder; opening the log
when a run starts or resumes (TensorBoard's protos imported, the session and graph written), in a
fresh process; set beside the run's own seconds per epoch.

page: `tensorboard --logdir RUNS_DIR` on 127.0.0.1 and a headless Chromium screenshot of a tab,
for a person to look at (not a test: nothing is asserted about pixels).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.docs.harnesses import TENSORBOARD_RESULT as RESULTS
from bench.docs.harnesses import tensorboard_cost as render
from bench.layout import ROOT


def cost(run: Path | None) -> dict:
    from hdr.runs import rundir

    work = Path(tempfile.mkdtemp(prefix="tb-cost-"))
    try:
        if run is None:  # a 3-epoch USPS perceptron, trained here
            out = subprocess.run([sys.executable, "-m", "hdr.cli", "train", str(ROOT / "configs" / "slp_sgd.yaml"),
                                  "dataset.name=usps", "training.epochs=3", "--runs-dir", str(work / "runs"), "-q"],
                                 capture_output=True, text=True, check=True)
            run = Path(out.stdout.strip().splitlines()[-1])
        folder = work / "copy"
        shutil.copytree(run, folder, ignore=shutil.ignore_patterns("tensorboard", ".lock"))
        history = rundir.read_history(folder / "history.csv")
        epoch_seconds = statistics.median(r["seconds"] for r in history)

        # opening, in a fresh process: imports included, as a run pays them once
        code = ("import time,sys; t=time.perf_counter(); from hdr.engine import tensorboard_log as t_l; "
                f"t_l.open_log({str(folder)!r}); print(time.perf_counter()-t)")
        opens = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                      cwd=ROOT).stdout) for _ in range(3)]

        from hdr.engine import tensorboard_log

        shutil.rmtree(folder / "tensorboard", ignore_errors=True)
        rundir.write_history(folder / "history.csv", history[:1])
        log = tensorboard_log.open_log(folder)
        calls, cpu = [], []
        row = dict(history[-1])
        for epoch in range(2, 502):
            row["epoch"] = epoch
            t, c = time.perf_counter(), time.process_time()
            log(epoch, row)
            calls.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        hook = statistics.median(calls)
        result = {
            "what": "hdr.engine.tensorboard_log: per-epoch hook (append one epoch to train/ and validation/) and "
                    "open_log at run start (fresh process, imports included)",
            "run": run.name, "config": rundir.read_json(run / "run.json").get("config_name"),
            "hook_median_ms": round(hook * 1e3, 4), "hook_p95_ms": round(sorted(calls)[int(0.95 * len(calls))] * 1e3, 4),
            "hook_cpu_median_ms": round(statistics.median(cpu) * 1e3, 4), "hook_calls": len(calls),
            "open_median_s": round(statistics.median(opens), 3), "open_runs": [round(x, 3) for x in opens],
            "epoch_median_s": epoch_seconds,
            "hook_fraction_of_epoch": hook / epoch_seconds,
            "machine": f"{os.cpu_count()}-core {platform.machine()}, {platform.python_version()}",
            "date": time.strftime("%Y-%m-%d"),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def page(runs: Path, out: Path, tab: str) -> None:
    port = _free_port()
    exe = Path(sys.executable).parent / "tensorboard"
    server = subprocess.Popen([str(exe), "--logdir", str(runs), "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                if json.loads(urllib.request.urlopen(f"{base}/data/runs", timeout=5).read()):
                    break
            except OSError:
                pass
            time.sleep(0.5)
        browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
        if browser is None:
            raise SystemExit("no chromium on PATH (apt-get install chromium)")
        with tempfile.TemporaryDirectory() as profile:
            subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
                            "--window-size=1500,1000", "--virtual-time-budget=20000", f"--screenshot={out.absolute()}",
                            f"{base}/#{tab}"], check=True, capture_output=True, timeout=180)
        print(out)
    finally:
        server.terminate()
        server.wait(30)


def main(argv: list[str]) -> None:
    if argv[:1] == ["cost"]:
        print(json.dumps(cost(Path(argv[1]) if len(argv) > 1 else None), indent=2))
    elif argv[:1] == ["render"]:
        print(render(), end="")
    elif argv[:1] == ["page"] and len(argv) >= 3:
        tab = argv[argv.index("--tab") + 1] if "--tab" in argv else "scalars"
        page(Path(argv[1]), Path(argv[2]), tab)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
