"""The Ray executor on a real Ray cluster on 127.0.0.1 (Ray's own multi-node test cluster: a head
and two worker nodes), started once for the module: a sweep across both workers, stopped with
SIGINT on the driver and resumed; a worker killed mid-run, whose run goes on from its last epoch
on the other. Every history must equal the one local workers give the same point.

Each node trains in a scratch folder of its own (HDR_SCRATCH): nothing a node writes lands in the
driver's runs folder except through the bytes it sends, as on nodes that share no filesystem.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hdr.orchestration.executors import THREAD_VARS
from tests.battery import Command, attack, battery_rng, undisturbed
from tests.conftest import CONFIGS, REPO, run_cli, use_data_dir, write_tiny_data

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

SLP = CONFIGS / "slp_sgd.yaml"
# Tiny noisy digits, 15 short epochs: a run lasts long enough to be stopped or lose its node.
FIXED = ["training.epochs=15", "training.batch_size=64", "training.steps_per_execution=1"]
GRID = ["--grid", "optimizer.learning_rate=0.05,0.2", "--seeds", "2"]
NODE = {"num_cpus": 1, "object_store_memory": 80 * 2**20}


def history(run: Path) -> list[dict]:
    rows = list(csv.DictReader((run / "history.csv").open()))
    for r in rows:
        del r["seconds"]  # wall time, the one column that may differ
    return rows


def sweep_runs(runs: Path) -> dict[tuple, Path]:
    """(learning rate, seed) -> run folder of the one sweep in runs/sweeps."""
    folder = next((runs / "sweeps").iterdir())
    points = json.loads((folder / "sweep.json").read_text())["points"]
    return {(p["label"], p["seed"]): (folder / p["run"]).resolve() for p in points}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head node that trains nothing (it holds the cluster's state, and the driver connects to
    it when it can) and two worker nodes of one CPU each: whichever node the driver's process
    attaches to, another one can be killed."""
    data = write_tiny_data(tmp_path_factory.mktemp("data"), mnist=(300, 100), usps=None, style="bars")
    scratch = tmp_path_factory.mktemp("scratch")
    with pytest.MonkeyPatch.context() as mp:
        use_data_dir(mp, data)
        for var in THREAD_VARS:  # one thread per run, local or Ray: the same arithmetic
            mp.setenv(var, "1")
        c = Cluster(initialize_head=True, head_node_args={
            **NODE, "num_cpus": 0, "include_dashboard": False,
            # A killed node is declared dead after 10 missed checks of 1 s; a busy CI machine can
            # delay a live node's answers by seconds.
            "_system_config": {"health_check_period_ms": 1000, "health_check_failure_threshold": 10}})
        c.scratch = scratch
        c.workers = [c.add_node(**NODE, env_vars={"HDR_SCRATCH": str(scratch / name)}) for name in ("a", "b")]
        c.wait_for_nodes()
        try:
            yield c
        finally:
            c.shutdown()


@pytest.fixture(scope="module")
def local(cluster, tmp_path_factory) -> dict[tuple, Path]:
    """The same four points on local workers, two at a time."""
    runs = tmp_path_factory.mktemp("local")
    r = run_cli("sweep", SLP, *FIXED, *GRID, "--jobs", "2", "--runs-dir", runs, "-q")
    assert r.exit_code == 0, r.output
    return sweep_runs(runs)


def wait_for(condition, what: str, timeout: float = 180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = condition()
        if got:
            return got
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def runs_with_epochs(runs: Path, at_least: int) -> list[dict]:
    out = []
    for p in runs.glob("*/run.json"):
        try:
            info = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if info.get("epochs_completed", 0) >= at_least:
            out.append(info)
    return out


def test_sweep_across_two_nodes_stopped_and_resumed(cluster, local, tmp_path):
    """Four points on two nodes; SIGINT on the driver once both nodes train: the running runs
    end interrupted, the rest never start; --resume finishes exactly what is missing."""
    runs = tmp_path / "runs"
    env = {**os.environ}
    proc = subprocess.Popen([sys.executable, "-m", "hdr", "sweep", str(SLP), *FIXED, *GRID, "--executor", "ray",
                             "--address", cluster.address, "--runs-dir", str(runs)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        # Both nodes train at once (one CPU each), and each has sent the driver an epoch.
        wait_for(lambda: len({i["ray_node"] for i in runs_with_epochs(runs, 2)}) == 2, "both nodes to train")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    trailer = err[-3000:]
    assert proc.returncode == 130, trailer
    assert "hdr sweep --resume" in err.strip().splitlines()[-1]
    sweep_dir = Path(out.strip().splitlines()[-1])
    info = json.loads((sweep_dir / "sweep.json").read_text())
    statuses = [p["status"] for p in info["points"]]
    assert info["status"] == "interrupted" and statuses.count("interrupted") == 2, (statuses, trailer)
    assert statuses.count("not run") == 2 and info["executor"] == "ray" and info["nodes"] == 3
    stopped = [json.loads((sweep_dir / p["run"] / "run.json").read_text()) for p in info["points"] if p["run"]]
    assert len(stopped) == 2 and {s["status"] for s in stopped} == {"interrupted"}
    assert len({s["ray_node"] for s in stopped}) == 2

    r = run_cli("sweep", "--resume", sweep_dir, "--executor", "ray", "--address", cluster.address, "-q")
    assert r.exit_code == 0, r.output
    done = sweep_runs(runs)
    assert len(done) == 4 and all(run.parent == runs.resolve() for run in done.values())
    assert sorted(p.name for p in runs.iterdir()) == sorted([*(run.name for run in done.values()), "sweeps"])
    for key, run in done.items():
        info = json.loads((run / "run.json").read_text())
        assert info["status"] == "completed" and len(history(run)) == 15
        assert history(run) == history(local[key]), key
        if any(s["id"] == run.name for s in stopped):
            # resumed from its last epoch, not trained again
            assert info["resumed"] and info["resumed"][0]["at_epoch"] >= 2
    # The nodes' scratch folders were used and are left empty.
    for node in ("a", "b"):
        scratch = cluster.scratch / node / "hdr-ray"
        assert scratch.is_dir() and not any(scratch.iterdir()), node


@pytest.mark.parametrize("kind", ["sweep", "cv", "tune"])
def test_a_driver_stopped_any_way_leaves_every_run_resumable(kind, cluster, local, tmp_path):
    """The stop battery (tests/battery.py) on the cluster: the driver is stopped at random
    moments (a signal, kill -9, its process group, a reboot of it and all it started) and
    resumed until it ends. Sweep and cv: every history equals the local workers' one. Tune: two
    trials train at once, so which trial a pruner compares with, and so what is proposed, depends
    on timing; the search still ends with exactly its trials, each in one folder, no parameters
    repeated, and each trial's history is the one its config has trained undisturbed."""
    ray_args = ["--executor", "ray", "--address", cluster.address, "-q"]
    args = {"sweep": [str(SLP), *FIXED, *GRID],
            "cv": [str(SLP), *FIXED, "--folds", "2"],
            "tune": [str(SLP), "optimizer.learning_rate=loguniform(0.01,0.5)", *FIXED, "--trials", "4",
                     "--startup-trials", "2"]}[kind]
    env = dict(os.environ)
    if kind == "sweep":
        expected = {key: history(run) for key, run in local.items()}
    elif kind == "cv":
        reference = Command("cv", [*args, "-q"], env, tmp_path / "local")
        assert reference.start(None, tmp_path / "local.log").wait(timeout=600) == 0, \
            (tmp_path / "local.log").read_text()[-3000:]
        expected = reference.final()
    rng, seed = battery_rng()
    cmd = Command(kind, [*args, *ray_args], env, tmp_path / "runs")
    done = attack(cmd, rng, seed, 1, 25.0, tmp_path / "battery.log")
    print(f"ray {kind}: battery seed {seed}: {done}")
    final = cmd.final()
    if kind == "tune":
        params = [tuple(p.values()) for p, _, _ in final.values()]
        assert len(set(params)) == len(params), f"battery seed {seed}: {done}: parameters repeated: {params}"
        # Each trial's history is its config's undisturbed one (up to where a pruned trial stopped).
        folder = cmd.folder()
        rows = {int(r["trial"]): r["run"] for r in csv.DictReader((folder / "trials.csv").open())}
        configs = [(folder / rows[t] / "config.yaml").read_text() for t in sorted(final)]
        for t, alone in zip(sorted(final), undisturbed(configs, env, tmp_path / "alone")):
            _, state, got = final[t]
            assert got == (alone if state == "complete" else alone[:len(got)]), f"battery seed {seed}: trial {t}"
    else:
        assert final == expected, f"battery seed {seed}: {done}"
    assert json.loads(next(cmd.folder().glob("*.json")).read_text())["options"]["executor"] == "ray"


def test_a_node_that_dies_mid_run_its_run_goes_on_elsewhere(cluster, local, tmp_path):
    """Kill a worker node (its raylet and workers, SIGKILL) once its run has sent a few epochs:
    the run continues from there on the other worker and ends with the history of an undisturbed
    run."""
    runs = tmp_path / "runs"
    killed = threading.Event()

    def kill_when_it_trains():
        def on_a_worker():
            try:  # the sweep below connects this process to the cluster as its driver
                driver = ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
            except Exception:  # still connecting
                driver = None
            if driver is None:
                return None
            doomed = {w.node_id: w for w in cluster.workers if w.node_id != driver}
            mine = [i for i in runs_with_epochs(runs, 3) if i["ray_node"] in doomed]
            return (mine[0], doomed[mine[0]["ray_node"]]) if mine else None

        try:
            killed.info, node = wait_for(on_a_worker, "a worker node's run to send three epochs")
        except BaseException:
            return
        cluster.remove_node(node, allow_graceful=False)
        killed.set()

    killer = threading.Thread(target=kill_when_it_trains, daemon=True)
    killer.start()
    r = run_cli("sweep", SLP, *FIXED, "--grid", "optimizer.learning_rate=0.05,0.2", "--executor", "ray",
                "--address", cluster.address, "--runs-dir", runs)
    killer.join(timeout=10)
    assert killed.is_set(), "the worker node was never killed"
    assert r.exit_code == 0, r.output
    assert "its Ray node was lost" in r.stderr
    done = sweep_runs(runs)
    for key, run in done.items():
        assert history(run) == history(local[key]), key
    moved = json.loads((runs / killed.info["id"] / "run.json").read_text())
    assert moved["status"] == "completed"
    assert moved["resumed"][0]["at_epoch"] >= 3  # not from the start
