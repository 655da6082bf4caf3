"""The stop battery: an `hdr sweep`, `hdr tune` or `hdr cv` is stopped at random moments, in
every way a machine stops a command, and resumed until it ends; the runs it leaves must be
exactly those of an undisturbed command: every planned point completed once, each with the
history the undisturbed run has (hdr/orchestration/resuming.py states the rule).

Ways to stop (STOPS): SIGINT, SIGTERM and SIGHUP to the command; SIGKILL of the command alone
(its workers are left without it), of its process group, and of the command with every process
it started (a reboot). The moments are drawn from a seeded generator; the seed is printed in
every failure, and HDR_BATTERY_SEED replays it. HDR_BATTERY_MOMENTS sets how many times each
command is attacked (default 1, CI's share: the command and then its first resume are each
stopped once; every CI run draws new moments, and a longer battery is a matter of patience).
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import REPO

STOPS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGKILL", "killpg", "reboot")
MOMENTS = int(os.environ.get("HDR_BATTERY_MOMENTS", "1"))


def battery_rng() -> tuple[random.Random, int]:
    seed = int(os.environ.get("HDR_BATTERY_SEED") or time.time_ns() % 2**31)
    return random.Random(seed), seed


def history(run: Path) -> list[dict]:
    rows = list(csv.DictReader((run / "history.csv").open()))
    for r in rows:
        del r["seconds"]  # wall time, the one column that may differ
    return rows


def run_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if (p / "run.json").is_file())


@dataclass
class Command:
    """One orchestration: how to start it, resume it, and read what it left."""

    kind: str               # sweep | tune | cv
    args: list[str]         # after `hdr KIND`
    env: dict
    runs: Path
    resume_args: list[str] = field(default_factory=list)  # extra options given on every resume

    @property
    def parent(self) -> Path:
        return self.runs / {"sweep": "sweeps", "tune": "tune", "cv": "cv"}[self.kind]

    def folder(self) -> Path | None:
        found = sorted(self.parent.iterdir()) if self.parent.is_dir() else []
        assert len(found) <= 1, f"more than one {self.kind} folder: {found}"
        return found[0] if found else None

    def start(self, resume: Path | None, out: Path) -> subprocess.Popen:
        argv = ["--resume", str(resume), *self.resume_args] if resume else [*self.args, "--runs-dir", str(self.runs)]
        # Its own session: a signal sent to the command reaches nothing else (not pytest).
        return subprocess.Popen([sys.executable, "-m", "hdr.cli", self.kind, *argv], cwd=REPO, env=self.env,
                                stdout=out.open("a"), stderr=subprocess.STDOUT, start_new_session=True)

    def final(self) -> dict:
        """{point: its history (and, for a search, its parameters and state)} of a finished
        command, after checking that every planned point completed exactly once and that no
        half-written file is left anywhere."""
        folder = self.folder()
        assert folder is not None, f"no {self.kind} folder"
        partial = [p for p in self.runs.rglob(".*.tmp*")]
        assert not partial, f"half-written files left: {partial}"
        if self.kind == "sweep":
            info = json.loads((folder / "sweep.json").read_text())
            assert info["status"] == "completed", info["status"]
            points = info["points"]
            assert [p["status"] for p in points] == ["completed"] * len(points)
            runs = run_folders(self.runs)
            assert len(runs) == len(points), f"{len(runs)} run folders for {len(points)} points"
            assert len({p["run"] for p in points}) == len(points)
            return {(p["label"], p["seed"]): history((folder / p["run"]).resolve()) for p in points}
        if self.kind == "cv":
            info = json.loads((folder / "cv.json").read_text())
            assert info["status"] == "completed", info["status"]
            results = info["results"]
            assert [r["fold"] for r in results] == list(range(1, info["folds"] + 1))
            assert all(r["status"] == "completed" for r in results)
            runs = run_folders(folder)
            assert len(runs) == info["folds"], f"{len(runs)} run folders for {info['folds']} folds"
            out = {}
            for r in results:
                run = folder / r["run"]
                assert json.loads((run / "run.json").read_text())["fold"] == r["fold"]
                out[r["fold"]] = history(run)
            return out
        settings = json.loads((folder / "tune.json").read_text())
        rows = list(csv.DictReader((folder / "trials.csv").open()))
        assert len(rows) == settings["trials"], f"{len(rows)} trials of {settings['trials']} planned"
        assert {r["state"] for r in rows} <= {"complete", "pruned"}, [r["state"] for r in rows]
        runs = run_folders(folder)
        assert len(runs) == len(rows), f"{len(runs)} run folders for {len(rows)} trials"
        space = list(settings["space"])
        return {int(r["trial"]): ({k: r[k] for k in space}, r["state"], history(folder / r["run"]))
                for r in sorted(rows, key=lambda r: int(r["trial"]))}


def descendants(pid: int) -> list[int]:
    """Every live process started by pid, its workers included (they run in sessions of their own)."""
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(proc.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def stop(proc: subprocess.Popen, how: str) -> list[int]:
    """Stop the command one way (STOPS); the processes it had started, to check that none is left."""
    started = descendants(proc.pid)
    if how == "reboot":
        for pid in [proc.pid, *started]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    elif how == "killpg":
        os.killpg(proc.pid, signal.SIGKILL)
    else:
        os.kill(proc.pid, getattr(signal, how))
    return started


def expected_exit(how: str) -> set[int]:
    if how in ("SIGINT", "SIGTERM", "SIGHUP"):
        # Stopped as asked (128 + signal); before its stop handler is in place (importing, reading
        # data) the signal's own default: -signal, or click's 1 for Ctrl-C; 0 if it was ending anyway.
        sig = getattr(signal, how)
        return {128 + sig, -sig, 1, 0}
    return {-signal.SIGKILL}


def attack(cmd: Command, rng: random.Random, seed: int, stops: int, longest: float, log: Path) -> list[str]:
    """Start the command, stop it `stops` times at random moments (resuming in between), then
    resume it until it ends; what was done, for failure messages."""
    done: list[str] = []
    left: list[int] = []
    for i in range(stops + 1):
        folder = cmd.folder()
        if folder is not None and not any(folder.glob("*.json")):
            # Stopped in the milliseconds between making the folder and its first record: the
            # user has nothing to resume and starts again.
            import shutil

            shutil.rmtree(folder)
            folder = None
        proc = cmd.start(folder, log)
        if i == stops:
            code = proc.wait(timeout=600)
            done.append(f"{'resume' if folder else 'start'} to the end: exit {code}")
            assert code == 0, f"battery seed {seed}: {done}\n{log.read_text()[-4000:]}"
            break
        moment = rng.uniform(0.3, longest)
        how = rng.choice(STOPS)
        try:
            proc.wait(timeout=moment)
            done.append(f"{'resume' if folder else 'start'} ended by itself before {moment:.1f}s: exit {proc.returncode}")
            assert proc.returncode == 0, f"battery seed {seed}: {done}\n{log.read_text()[-4000:]}"
            continue
        except subprocess.TimeoutExpired:
            pass
        left += stop(proc, how)
        code = proc.wait(timeout=300)
        done.append(f"{'resume' if folder else 'start'} stopped by {how} at {moment:.1f}s: exit {code}")
        assert code in expected_exit(how), f"battery seed {seed}: {done}\n{log.read_text()[-4000:]}"
    deadline = time.time() + 60
    while time.time() < deadline and any(alive(p) for p in left):
        time.sleep(0.2)
    assert not [p for p in left if alive(p)], f"battery seed {seed}: processes left behind after {done}"
    return done


def undisturbed(configs: list[str], env: dict, runs: Path) -> list[list[dict]]:
    """The histories these resolved configs have trained undisturbed, one after another in one
    reused training process (which gives each the history of its own process:
    tests/test_sweep_workers.py), for runs whose order of training was left to timing."""
    proc = subprocess.Popen([sys.executable, "-m", "hdr.engine.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=env, cwd=REPO)
    out = []
    try:
        for text in configs:
            proc.stdin.write(json.dumps({"action": "train", "config": text, "config_name": "undisturbed",
                                         "runs_dir": str(runs), "info": {}}) + "\n")
            proc.stdin.flush()
            while True:
                message = json.loads(proc.stdout.readline())
                if "epoch" not in message:
                    break
                proc.stdin.write(json.dumps({"prune": None}) + "\n")
                proc.stdin.flush()
            assert message["status"] == "completed", message
            out.append(history(Path(message["run"])))
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    return out
