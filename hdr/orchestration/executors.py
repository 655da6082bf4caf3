"""Where the runs of `hdr sweep`, `hdr cv` and `hdr tune` train: reused local processes, or a Ray
cluster. Both take the same jobs (hdr/engine/worker.py's job format) and give the same answers; the
command that uses them only decides what to run next and what an answer means.

    executor = make(options, on_epoch)     # --executor local|ray and its options
    signum = drive(executor, next_job, on_done, progress)

Local: `--jobs N` worker processes (hdr/engine/worker.py), each reused from run to run, with cores/N
threads each. A worker that dies loses only the run it was training (the run is `failed`).

Ray: each job is a Ray task asking `--cpus-per-run` CPUs and `--gpus-per-run` GPUs (fractional
GPUs share one). A task trains in a scratch folder on its node and, after every committed epoch
and at the end, sends the run folder (checkpoint included) to the driver as bytes through Ray's
object store; the driver writes it into the runs folder. So run folders end up on the machine
that started the command whether or not the nodes share a filesystem, and a run whose node dies
is sent, with its last completed epoch, to another node and resumed there (hdr's exact resume:
the final history is the one an undisturbed run has). Pruning decisions are asked of the driver
through the same channel, so the study's storage is only ever opened on the driver.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from hdr.runs import rundir
from hdr.core.errors import EXIT_SIGNAL, STOP_SIGNALS, UsageError, after_hangup

THREAD_VARS = ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
MAX_ATTEMPTS = 3     # a run is sent to another node at most this many times after its node died
RAY_NAMESPACE = "hdr"


@dataclass
class Job:
    key: str                  # unique within the command: "point-003", "fold-2", "trial-0005"
    label: str                # what progress lines call it
    request: dict             # hdr/engine/worker.py's job, without runs_dir
    runs_dir: Path            # where the run folder goes on this machine
    log: Path | None = None
    attempt: int = 0          # Ray: how many times it was sent again after its node died
    run: Path | None = None   # its run folder on this machine, once known
    epochs: int = 0           # committed epochs seen so far
    meta: dict = field(default_factory=dict)  # the command's own bookkeeping


def threads_per_job(jobs: int) -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores // jobs)


def thread_env(threads: int, base: dict | None = None) -> dict:
    """N processes with one thread pool each as wide as the machine would fight over the cores;
    an explicit setting of the user's wins."""
    env = {} if base is None else dict(base)
    for var in THREAD_VARS:
        env.setdefault(var, str(threads))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


def failed_answer(error: str, status: str = rundir.FAILED, exit_code: int | None = 1) -> dict:
    return {"status": status, "run": None, "exit_code": exit_code, "error": error}


# ------------------------------------------------------------------------------ local

class Worker:
    """One reused training process (hdr/engine/worker.py), started when first needed and again after
    one died. Its own session: a Ctrl-C at the terminal reaches only the command, which passes it on."""

    def __init__(self, env: dict, inherit: tuple[int, ...] = ()):
        self.env = env
        self.inherit = inherit  # the command's folder lock (hdr/orchestration/resuming.py): held until the worker ends
        self.proc: subprocess.Popen | None = None

    def run(self, request: dict, on_epoch) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([sys.executable, "-m", "hdr.engine.worker"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True, env=self.env, start_new_session=True,
                                         pass_fds=self.inherit)
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            while True:
                line = self.proc.stdout.readline()
                if not line:
                    break
                message = json.loads(line)
                if "epoch" not in message:
                    return message
                reason = on_epoch(message["epoch"], message["row"])
                self.proc.stdin.write(json.dumps({"prune": reason or None}) + "\n")
                self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        code = self.proc.wait()  # died mid-run: out of memory, a crash, a second signal
        self.proc = None
        stopped = code in (*EXIT_SIGNAL.values(), *(-s for s in EXIT_SIGNAL))
        return failed_answer(f"the training process ended with exit code {code}",
                             rundir.INTERRUPTED if stopped else rundir.FAILED, code)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait()
        self.proc = None


class LocalExecutor:
    name = "local"

    def __init__(self, jobs: int, on_epoch):
        self.capacity = jobs
        self.threads = threads_per_job(jobs)
        self.on_epoch = on_epoch
        self.stopping = False
        self.todo: queue.Queue = queue.Queue()
        self.done: queue.Queue = queue.Queue()
        env = thread_env(self.threads, os.environ)
        self.workers = [Worker(env) for _ in range(jobs)]
        self.pool = [threading.Thread(target=self._drain, args=(w,), daemon=True) for w in self.workers]
        for t in self.pool:
            t.start()

    def describe(self) -> str:
        return f"{self.capacity} at a time, {self.threads} thread(s) each"

    def keep_open(self, fds: tuple[int, ...]) -> None:
        """File descriptors the workers started from now on inherit (the command's folder lock)."""
        for w in self.workers:
            w.inherit = tuple(fds)

    def settings(self) -> dict:
        return {"executor": self.name, "jobs": self.capacity, "threads_per_job": self.threads}

    def _drain(self, worker: Worker) -> None:
        try:
            while True:
                job = self.todo.get()
                if job is None:
                    return
                if self.stopping:
                    self.done.put((job, failed_answer("not started: the command was stopped", rundir.NOT_RUN, None)))
                    continue
                request = dict(job.request, runs_dir=str(job.runs_dir), log=str(job.log) if job.log else None)
                try:
                    answer = worker.run(request, lambda epoch, row: self._epoch(job, epoch, row))
                except BaseException as e:  # a bug here must not hang the command
                    answer = failed_answer(f"{type(e).__name__}: {e}")
                self.done.put((job, answer))
        finally:
            worker.close()

    def _epoch(self, job: Job, epoch: int, row: dict):
        job.epochs = epoch
        return self.on_epoch(job, epoch, row)

    def submit(self, job: Job) -> None:
        self.todo.put(job)

    def poll(self, timeout: float) -> list[tuple[Job, dict]]:
        out = []
        try:
            out.append(self.done.get(timeout=timeout))
            while True:
                out.append(self.done.get_nowait())
        except queue.Empty:
            pass
        for job, answer in out:
            if answer.get("run"):
                job.run = Path(answer["run"])
        return out

    def stop(self, signum: int) -> None:
        """Exactly one signal to each worker (a second would make a training stop without
        clean-up); the run it trains ends as `interrupted`."""
        self.stopping = True
        for w in self.workers:
            proc = w.proc
            if proc is not None and proc.poll() is None:
                try:
                    proc.send_signal(signum)
                except ProcessLookupError:
                    pass

    def close(self) -> None:
        for _ in self.pool:
            self.todo.put(None)
        for t in self.pool:
            t.join()


# ------------------------------------------------------------------------------ run folders as bytes

def pack(folder: Path) -> bytes:
    """A run folder as a tar: what a node sends the driver. The lock and half-written temporary
    files stay behind."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted(Path(folder).rglob("*")):
            rel = path.relative_to(folder)
            if path.name == rundir.LOCK or (path.name.startswith(".") and ".tmp" in path.name):
                continue
            tar.add(path, arcname=str(Path(folder.name) / rel), recursive=False)
    return buf.getvalue()


def unpack(data: bytes, parent: Path) -> Path:
    """Write a packed run folder into `parent`, replacing what an earlier state of it left there
    file by file (run.json last, as a run commits an epoch), so the folder is a whole run folder
    at every moment; files the new state no longer has (older checkpoints) are removed."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            names = {Path(m.name).parts[0] for m in tar.getmembers()}
            if len(names) != 1:
                raise ValueError(f"a packed run folder holds one folder, not {sorted(names)}")
            tar.extractall(staging, filter="data")
        name = names.pop()
        target = parent / name
        target.mkdir(exist_ok=True)
        incoming = staging / name
        files = sorted((p for p in incoming.rglob("*") if p.is_file()), key=lambda p: p.name == rundir.RUN)
        for path in files:
            dest = target / path.relative_to(incoming)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dest)
        keep = {p.relative_to(incoming) for p in files}
        for old in sorted(target.rglob("*"), reverse=True):
            rel = old.relative_to(target)
            if old.is_file() and rel not in keep and old.name != rundir.LOCK:
                old.unlink()
            elif old.is_dir() and not any(old.iterdir()):
                old.rmdir()
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def scratch_root() -> Path:
    """Where a Ray task trains on its node: $HDR_SCRATCH, else the node's temporary folder."""
    return Path(os.environ.get("HDR_SCRATCH") or tempfile.gettempdir()) / "hdr-ray"


def _only_run(folder: Path) -> Path | None:
    runs = [c for c in folder.iterdir() if c.is_dir() and (c / rundir.RUN).is_file()]
    return runs[0] if runs else None


def ray_task(key: str, attempt: int, request: dict, state: bytes | None, mailbox) -> dict:
    """One job on a Ray node (see the module's docstring). Runs in a Ray worker process."""
    import ray

    from hdr.engine import worker

    scratch_root().mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"{key}-", dir=scratch_root()))
    node = ray.get_runtime_context().get_node_id()

    def send(folder: Path, **message):
        try:
            return ray.get(mailbox.send.remote({"key": key, "attempt": attempt, "node": node, "run": folder.name,
                                                "state": pack(folder), **message}))
        except ray.exceptions.TaskCancelledError:  # the driver is stopping this task
            raise KeyboardInterrupt from None

    try:
        if state is not None:
            request = {"action": "resume", "run": str(unpack(state, scratch))}
        else:
            request = dict(request, info={**(request.get("info") or {}), "ray_node": node})

        def hook(epoch: int, row: dict):
            return send(_only_run(scratch), epoch=epoch, row=row)

        answer = worker.run_job(request, scratch, hooks=[hook])
        folder = _only_run(scratch)
        if folder is not None:
            send(folder, final=True)  # answered once the driver has written it
        answer["run"] = folder.name if folder is not None else None
        answer["node"] = node
        return answer
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class Mailbox:
    """A Ray actor between the tasks and the driver: a task's send() waits until the driver has
    taken the message and replied (a pruning decision, or that the folder state is written)."""

    def __init__(self):
        import asyncio

        self.inbox = asyncio.Queue()
        self.waiting: dict[int, object] = {}
        self.count = 0

    async def send(self, message: dict):
        import asyncio

        self.count += 1
        future = asyncio.get_running_loop().create_future()
        self.waiting[self.count] = future
        await self.inbox.put((self.count, message))
        return await future

    async def receive(self, timeout: float) -> list:
        import asyncio

        try:
            items = [await asyncio.wait_for(self.inbox.get(), timeout)]
        except asyncio.TimeoutError:
            return []
        while not self.inbox.empty():
            items.append(self.inbox.get_nowait())
        return items

    async def reply(self, number: int, value) -> None:
        future = self.waiting.pop(number, None)
        if future is not None and not future.done():
            future.set_result(value)


# ------------------------------------------------------------------------------ Ray

class RayExecutor:
    name = "ray"

    def __init__(self, address: str | None, cpus_per_run: float, gpus_per_run: float, on_epoch, log=None):
        import ray

        self.ray = ray
        self.on_epoch = on_epoch
        self.log = log or (lambda msg: None)
        self.cpus, self.gpus, self.address = cpus_per_run, gpus_per_run, address
        try:
            if address:
                ray.init(address=address, namespace=RAY_NAMESPACE, logging_level="ERROR", log_to_driver=False,
                         configure_logging=False)
            else:
                # "local": a new instance, never a cluster some earlier process left an address of
                ray.init(address="local", namespace=RAY_NAMESPACE, logging_level="ERROR", log_to_driver=False,
                         include_dashboard=False, configure_logging=False)
        except (ConnectionError, ValueError, RuntimeError) as e:
            where = f"at {address}" if address else "on this machine"
            first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            raise UsageError(f"cannot start or reach a Ray cluster {where} ({first}); start one with "
                             "ray start --head, then give --address HOST:6379") from None
        total = ray.cluster_resources()
        fits = [int(total.get("CPU", 0) // cpus_per_run) if cpus_per_run else None,
                int(total.get("GPU", 0) // gpus_per_run) if gpus_per_run else None]
        fits = [f for f in fits if f is not None]
        self.capacity = min(fits) if fits else int(total.get("CPU", 1))
        if self.capacity < 1:
            ray.shutdown()
            raise UsageError(f"the Ray cluster has {total.get('CPU', 0):g} CPUs and {total.get('GPU', 0):g} GPUs, "
                             f"fewer than one run asks for (--cpus-per-run {cpus_per_run:g}, --gpus-per-run "
                             f"{gpus_per_run:g}); ask for less or add nodes")
        self.nodes = len([n for n in ray.nodes() if n.get("Alive")])
        self.task = ray.remote(ray_task)
        # On the driver's node: its end of the channel lives as long as this command. Not soft:
        # a soft affinity spills the actor to another node whenever the driver's node has no CPU
        # free at that moment (a 0-CPU head, or one busy training), and that node may die.
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.mailbox = ray.remote(num_cpus=0)(Mailbox).options(scheduling_strategy=NodeAffinitySchedulingStrategy(
            ray.get_runtime_context().get_node_id(), soft=False)).remote()
        self.refs: dict = {}
        self.jobs: dict[str, Job] = {}
        self.stopping = False
        self.closed = threading.Event()
        self.written = threading.Lock()
        self.server = threading.Thread(target=self._serve, daemon=True)
        self.server.start()

    def keep_open(self, fds: tuple[int, ...]) -> None:
        """Nothing to pass on: Ray's tasks end with this process (the owner of their tasks)."""

    def describe(self) -> str:
        return (f"on Ray ({self.nodes} node(s), {self.capacity} at a time, {self.cpus:g} CPU(s)"
                + (f" and {self.gpus:g} GPU(s)" if self.gpus else "") + " per run)")

    def settings(self) -> dict:
        return {"executor": self.name, "address": self.address, "nodes": self.nodes, "cpus_per_run": self.cpus,
                "gpus_per_run": self.gpus, "runs_at_once": self.capacity}

    # --- the channel ---------------------------------------------------------------------
    def _serve(self) -> None:
        while not self.closed.is_set():
            try:
                items = self.ray.get(self.mailbox.receive.remote(0.5))
            except Exception:  # the cluster is going away; poll() reports the tasks' fate
                if self.closed.wait(0.5):
                    return
                continue
            for number, message in items:
                try:
                    reply = self._take(message)
                except Exception as e:  # never leave a task waiting on an answer
                    self.log(f"hdr: warning: could not take a message from {message.get('key')}: {e}")
                    reply = None
                self.mailbox.reply.remote(number, reply)

    def _take(self, message: dict):
        job = self.jobs.get(message["key"])
        if job is None or message["attempt"] != job.attempt:
            return None  # from an attempt given up on: its node was declared dead
        with self.written:
            job.run = unpack(message["state"], job.runs_dir)
        if "epoch" in message:
            job.epochs = message["epoch"]
            return self.on_epoch(job, message["epoch"], message["row"])
        return None

    # --- the tasks -----------------------------------------------------------------------
    def _launch(self, job: Job, state: bytes | None) -> None:
        threads = max(1, int(round(self.cpus))) if self.cpus else 1
        env = thread_env(threads)
        if self.gpus and self.gpus < 1:
            env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"  # runs sharing a GPU must not each take all its memory
        request = {k: v for k, v in job.request.items() if k not in ("runs_dir", "log")}
        ref = self.task.options(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=0,
                                runtime_env={"env_vars": env}).remote(job.key, job.attempt, request, state,
                                                                     self.mailbox)
        self.refs[ref] = job

    def submit(self, job: Job) -> None:
        self.jobs[job.key] = job
        state = None
        if job.request.get("action") == "resume":  # a run folder on this machine, sent to a node
            job.run = Path(job.request["run"])
            state = pack(job.run)
        self._launch(job, state)

    def _resend(self, job: Job, why: str) -> bool:
        """Send a run whose node died to another node, from its last epoch the driver holds."""
        if self.stopping or job.attempt + 1 >= MAX_ATTEMPTS:
            return False
        job.attempt += 1
        state = None
        if job.run is not None and (job.run / rundir.CHECKPOINTS).is_dir():
            with self.written:
                info = rundir.read_json(job.run / rundir.RUN)
                if info.get("status") == rundir.RUNNING:  # its process is gone with its node
                    rundir.RunInfo(job.run, info).finish(rundir.INTERRUPTED, reason=f"its Ray node was lost: {why}")
                state = pack(job.run)
        elif job.run is not None:  # nothing to resume from: start again
            shutil.rmtree(job.run, ignore_errors=True)
            job.run = None
        where = f"from epoch {job.epochs}" if state is not None else "from the start"
        self.log(f"{job.label}: its Ray node was lost ({why}); continuing {where} on another node")
        self._launch(job, state)
        return True

    def poll(self, timeout: float) -> list[tuple[Job, dict]]:
        ray = self.ray
        if not self.refs:
            time.sleep(timeout)
            return []
        ready, _ = ray.wait(list(self.refs), num_returns=len(self.refs), timeout=timeout)
        out = []
        for ref in ready:
            job = self.refs.pop(ref)
            try:
                answer = ray.get(ref)
            except ray.exceptions.TaskCancelledError:
                answer = failed_answer("not started: the command was stopped", rundir.NOT_RUN, None)
                if job.run is not None:
                    answer = failed_answer("stopped", rundir.INTERRUPTED, EXIT_SIGNAL[signal.SIGINT])
            except ray.exceptions.RayTaskError as e:  # hdr raised what it never should: a bug
                answer = failed_answer(f"the Ray task failed: {str(e).strip().splitlines()[-1][:300]}")
            except ray.exceptions.RayError as e:  # the node or the worker process died
                why = type(e).__name__
                if self._resend(job, why):
                    continue
                answer = failed_answer(f"its Ray node was lost ({why}) {job.attempt + 1} times")
            if answer.get("run"):
                job.run = job.runs_dir / answer["run"]
                answer["run"] = str(job.run)
            out.append((job, answer))
        return out

    def stop(self, signum: int) -> None:
        """Cancel what has not started; a running task gets SIGINT, so its run stops at the end
        of the current step, is marked `interrupted` and is sent back whole."""
        self.stopping = True
        for ref in list(self.refs):
            # recursive=False: a task waiting on the mailbox must get its KeyboardInterrupt, not
            # lose the message it was sending (that would fail its run instead of stopping it)
            self.ray.cancel(ref, force=False, recursive=False)

    def close(self) -> None:
        self.closed.set()
        self.server.join(timeout=5)
        try:
            self.ray.kill(self.mailbox)
        except Exception:
            pass
        self.ray.shutdown()


# ------------------------------------------------------------------------------ driving

class Progress:
    """One line per finished run and a bar: done / running / pending / failed."""

    def __init__(self, total: int, quiet: bool, unit: str = "run"):
        self.total, self.quiet = total, quiet
        self.done = self.failed = self.running = 0
        self.bar = None
        if not quiet:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False,
                            disable=None, bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}] {postfix}")
            self._show()

    def _show(self) -> None:
        if self.bar is not None:
            pending = max(0, self.total - self.done - self.running)
            self.bar.set_postfix_str(f"done {self.done}, running {self.running}, pending {pending}, "
                                     f"failed {self.failed}")

    def started(self) -> None:
        self.running += 1
        self._show()

    def finished(self, line: str | None, failed: bool) -> None:
        self.running -= 1
        self.done += 1
        self.failed += failed
        self.say(line)
        if self.bar is not None:
            self.bar.update(1)
        self._show()

    def say(self, line: str | None) -> None:
        if line and not self.quiet:
            try:
                if self.bar is not None:
                    self.bar.write(line, file=sys.stderr)
                else:
                    print(line, file=sys.stderr, flush=True)
            except OSError:  # a terminal that went away must not stop the command
                pass

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def drive(executor, next_job, on_done, progress: Progress) -> int | None:
    """Keep the executor busy with next_job() (None: no more) until all is done; on_done(job,
    answer) -> (line, failed) for each finished run. A first Ctrl-C or SIGTERM starts no new run
    and stops the running ones (they end `interrupted`, resumable); so does SIGHUP, a closed
    terminal. Returns the signal, if any."""
    stopped: list[int] = []

    def on_signal(signum, frame):
        if not stopped:
            after_hangup(signum)
            progress.say(f"\n{signal.Signals(signum).name}: stopping the running runs at their next step; "
                         "no new runs start")
            stopped.append(signum)
            executor.stop(signum)

    old = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    in_flight = 0
    exhausted = False
    try:
        while True:
            while not stopped and not exhausted and in_flight < executor.capacity:
                job = next_job()
                if job is None:
                    exhausted = True
                    break
                executor.submit(job)
                in_flight += 1
                progress.started()
            if in_flight == 0:
                break
            for job, answer in executor.poll(0.2):  # short waits: the main thread must stay free to take signals
                in_flight -= 1
                line, failed = on_done(job, answer)
                progress.finished(line, failed)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        progress.close()
    return stopped[0] if stopped else None


# ------------------------------------------------------------------------------ the options

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class Options:
    """Where and how the runs of hdr sweep, cv and tune train (--executor and its options: the
    command line declares them once, in hdr/cli/options.py)."""

    executor: str = "local"
    jobs: int = 1                   # local: runs at once
    address: str | None = None      # ray: the cluster's head; None: a Ray instance on this machine
    cpus_per_run: float = 1.0       # ray
    gpus_per_run: float = 0.0       # ray
    given: frozenset = frozenset()  # the options the user gave; the others are defaults

    def check(self) -> None:
        """The options' mistakes, found before any folder is made."""
        if self.executor == "local" and self.address is not None:
            raise UsageError("--address is for --executor ray; add --executor ray, or leave --address out")
        if self.executor == "ray" and self.jobs != 1:
            raise UsageError("--jobs is for --executor local; with --executor ray, --cpus-per-run and --gpus-per-run "
                             "decide how many runs a cluster trains at once")

    def resumed(self, recorded: dict) -> "Options":
        """The options of a resume: those the command was started with (its settings(), as its
        folder recorded them with record()), except the ones the user gives again. Another
        --executor starts from that executor's defaults."""
        names = [f.name for f in dataclasses.fields(self) if f.name != "given"]
        same = "executor" not in self.given or self.executor == recorded.get("executor")
        values = {}
        for name in names:
            if name in self.given or not same or name not in recorded:
                values[name] = getattr(self, name)
            else:
                values[name] = recorded[name]
        return Options(**values, given=self.given)

    def record(self) -> dict:
        """What the command's folder keeps, for resumed()."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "given"}

    def flags(self) -> str:
        """The options as command-line flags, as a resume line shows them."""
        if self.executor == "local":
            return f"--jobs {self.jobs}"
        flags = "--executor ray" + (f" --address {self.address}" if self.address else "")
        return flags + f" --cpus-per-run {self.cpus_per_run:g}" + (
            f" --gpus-per-run {self.gpus_per_run:g}" if self.gpus_per_run else "")


def no_pruning(job, epoch, row):
    """on_epoch for commands that only watch their runs (sweep, cv)."""
    return None


def to_stderr(message: str) -> None:
    """log for make(): an executor's own lines (a lost Ray node) on stderr."""
    print(message, file=sys.stderr, flush=True)


def make(options: Options, on_epoch, at_most: int, log=None):
    """The executor the options ask for; at_most: the runs there are (no more local workers)."""
    options.check()
    if options.executor == "local":
        return LocalExecutor(max(1, min(options.jobs, at_most)), on_epoch)
    try:
        import ray  # noqa: F401
    except ImportError:
        raise UsageError("--executor ray needs Ray: pip install -e '.[ray]'") from None
    return RayExecutor(options.address, options.cpus_per_run, options.gpus_per_run, on_epoch, log)
