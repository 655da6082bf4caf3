"""`hdr tune`: a hyperparameter search with Optuna, each trial an ordinary run folder.

The driver asks Optuna for a trial, trains it on an executor (hdr/orchestration/executors.py: local worker
processes or a Ray cluster), reports each committed epoch's validation metric to the trial and
prunes it when Optuna's pruner says so (train's per-epoch hooks; the run ends `pruned`), and
tells Optuna the run's best validation figure. Only the driver opens the study's storage, so the
same code runs on one machine and on a cluster. Ray Tune's Optuna search was the alternative;
it would bring its own trial folders, checkpoints and resume, where hdr's are the point.

The tune folder, <runs-dir>/tune/<id>/, holds tune.json (the search, as given), study.db (the
Optuna study, unless --storage names another database), the trials' run folders, and at the end
trials.csv / trials.md, best.yaml (`hdr train best.yaml` trains the best trial again),
history.png and importance.png (Optuna's plots). `hdr tune --resume DIR` continues after
Ctrl-C, a crash or a reboot: a trial that was training is resumed from its last completed
epoch, a trial asked for but never started is trained with the parameters Optuna gave it, and
new trials are asked until the budget is spent; no trial is lost or run twice.

Selection uses validation data only: the test accuracy of the best trial is printed once, at
the end, and says so; the trials table has no test column.
"""

from __future__ import annotations

import csv
import difflib
import io
import math
import os
import re
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

import click

from hdr.orchestration import executors, resuming
from hdr.core import numbers
from hdr.runs import rundir
from hdr.core.errors import HdrError, Stopped, UsageError
from hdr.engine.config import split_values

KINDS = ("loguniform", "uniform", "int", "choice")
DIST = re.compile(r"^\s*(loguniform|uniform|int|choice)\s*\((.*)\)\s*$", re.S)
CALL = re.compile(r"^\s*([A-Za-z_][\w-]*)\s*\((.*)\)\s*$", re.S)  # NAME(...): meant as a distribution
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")
METRICS = rundir.VAL_METRICS  # the validation figure a search may optimise, and which way is better
MAX_CORNERS = 256  # combinations of the distributions' ends checked against the schema
# What a new search uses for the options left out (a resumed one keeps its own).
DEFAULTS = {"trials": 20, "sampler": "tpe", "pruner": "median", "metric": rundir.VAL_ACCURACY, "startup_trials": 5}


# ------------------------------------------------------------------------------ distributions

@dataclass(frozen=True)
class Dist:
    key: str
    kind: str             # one of KINDS
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    choices: tuple[str, ...] = ()   # YAML texts, as given

    def text(self) -> str:
        if self.kind == "choice":
            return f"choice({','.join(self.choices)})"
        if self.kind == "int":
            return f"int({self.low},{self.high}{',log' if self.log else ''})"
        return f"{self.kind}({self.low!r},{self.high!r})"  # repr: read back exactly on resume

    def corners(self) -> list[str]:
        """The values whose configs must all be valid for every value between to be."""
        if self.kind == "choice":
            return list(self.choices)
        return [yaml_value(self.low), yaml_value(self.high)]

    def optuna(self):
        import optuna.distributions as d

        if self.kind == "choice":
            return d.CategoricalDistribution(list(self.choices))
        if self.kind == "int":
            return d.IntDistribution(int(self.low), int(self.high), log=self.log)
        return d.FloatDistribution(float(self.low), float(self.high), log=self.kind == "loguniform")

    def grid(self, points: int) -> list:
        """The values a grid search tries: the choices, or `points` evenly spaced values (in log
        space for log ranges; distinct integers for int ranges)."""
        if self.kind == "choice":
            return list(self.choices)
        lo, hi = float(self.low), float(self.high)
        log = self.log or self.kind == "loguniform"
        if points == 1:
            values = [math.sqrt(lo * hi) if log else (lo + hi) / 2]
        else:
            values = [math.exp(math.log(lo) + i * (math.log(hi) - math.log(lo)) / (points - 1)) if log
                      else lo + i * (hi - lo) / (points - 1) for i in range(points)]
        if self.kind == "int":
            return sorted({int(round(v)) for v in values})
        return [float(f"{v:.6g}") for v in values]


def yaml_value(v) -> str:
    """A number as YAML reads it back as a number (PyYAML takes 1e-05 for a string; 1.0e-05 not)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, int):
        return str(v)
    text = repr(float(v))
    if "e" in text and "." not in text.split("e")[0]:
        mantissa, exp = text.split("e")
        text = f"{mantissa}.0e{exp}"
    return text


def _number(text: str, item: str, integer: bool = False):
    try:
        return int(text) if integer else float(text)
    except ValueError:
        what = "an integer" if integer else "a number"
        raise UsageError(f"{item}: {text.strip()!r} is not {what}") from None


def parse_dist(key: str, text: str) -> Dist:
    item = f"{key}={text}"
    m = DIST.match(str(text))
    if not m:
        named = CALL.match(str(text))
        close = difflib.get_close_matches(named.group(1), KINDS, n=1, cutoff=0.75) if named else []  # normal is no misspelt uniform
        if close:  # a misspelt kind (log_uniform)
            raise UsageError(f"{item}: unknown distribution {named.group(1)}; did you mean {close[0]}? "
                             f"({', '.join(KINDS)})")
        raise UsageError(f"{item}: not a distribution; use loguniform(a,b), uniform(a,b), int(a,b[,log]) or "
                         "choice(v1,v2,...)")
    kind, inner = m.group(1), m.group(2)
    parts = split_values(inner)
    if kind == "choice":
        if parts == [""] or any(p == "" for p in parts):
            raise UsageError(f"{item}: choice needs values separated by single commas: choice(sgd,adam)")
        if len(set(parts)) != len(parts):
            raise UsageError(f"{item}: a value is listed twice")
        return Dist(key, kind, choices=tuple(parts))
    log = False
    if kind == "int" and len(parts) == 3 and parts[2] == "log":
        log, parts = True, parts[:2]
    if len(parts) != 2:
        form = "int(a,b) or int(a,b,log)" if kind == "int" else f"{kind}(a,b)"
        raise UsageError(f"{item}: {kind} takes a low and a high end: {form}")
    low, high = (_number(p, item, kind == "int") for p in parts)
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise UsageError(f"{item}: the low end must be below the high end, both finite")
    if (kind == "loguniform" or log) and low <= 0:
        raise UsageError(f"{item}: a log range needs a low end above 0")
    return Dist(key, kind, low, high, log)


def parse_space(search: dict, items: list[str]) -> tuple[dict[str, Dist], list[str]]:
    """The distributions (a config's search: block, then KEY=DIST arguments, which win) and the
    plain KEY=VALUE overrides among the arguments."""
    space: dict[str, Dist] = {}
    for key, text in (search or {}).items():
        space[str(key)] = parse_dist(str(key), str(text))
    fixed = []
    for item in items:
        key, eq, value = item.partition("=")
        if eq and CALL.match(value):
            space[key.strip()] = parse_dist(key.strip(), value)
        else:
            fixed.append(item)
    clash = sorted(set(space) & {o.partition("=")[0].strip() for o in fixed})
    if clash:
        raise UsageError(f"{clash[0]} is both searched and set to one value; give it in one place")
    return space, fixed


def read_config(path: str, overrides: list[str]):
    """CONFIG with its search: block taken out: (the validated config, the block)."""
    from hdr.engine import config as config_mod

    data = config_mod._load_yaml(Path(path))  # its checks (missing, binary, too large) are the config's own
    search = data.pop("search", None) or {}
    if not isinstance(search, dict):
        raise UsageError(f"{path}: search: must be a mapping of KEY: DISTRIBUTION, such as "
                         "optimizer.learning_rate: loguniform(1e-4,1e-1)")
    return config_mod.validate(config_mod.apply_overrides(data, overrides), source=path, overrides=overrides), search


def check_space(config: str, fixed: list[str], space: dict[str, Dist]) -> None:
    """Every corner of the space is a valid config: a wrong key or an impossible range is found
    before any trial starts. With many distributions only each one's corners, alone."""
    import itertools

    if not space:
        raise UsageError("nothing to search: give at least one KEY=DIST (such as optimizer.learning_rate="
                         "loguniform(1e-4,1e-1)) or a search: block in the config")
    corners = [[f"{d.key}={v}" for v in d.corners()] for d in space.values()]
    if math.prod(len(c) for c in corners) <= MAX_CORNERS:
        combos = itertools.product(*corners)
    else:
        combos = ([c] for cs in corners for c in cs)
    for combo in combos:
        try:
            read_config(config, [*fixed, *combo])
        except UsageError as e:
            raise UsageError(f"search space at {', '.join(combo)}: {e}") from None


def overrides_of(space: dict[str, Dist], params: dict) -> list[str]:
    return [f"{k}={yaml_value(params[k]) if space[k].kind != 'choice' else params[k]}" for k in space if k in params]


def params_text(space: dict[str, Dist], params: dict) -> str:
    """The parameters as a progress line shows them (overrides_of keeps every digit)."""
    return " ".join(f"{k}={numbers.param(params[k])}" for k in space if k in params)


def grid_space(space: dict[str, Dist], trials: int) -> dict[str, list]:
    """The grid --sampler grid walks: choices as given, each range cut into as many points as
    make the grid about `trials` points."""
    ranges = [d for d in space.values() if d.kind != "choice"]
    fixed = math.prod(len(d.choices) for d in space.values() if d.kind == "choice")
    per = max(1, round((trials / fixed) ** (1 / len(ranges)))) if ranges else 1
    return {k: d.grid(per) for k, d in space.items()}


# ------------------------------------------------------------------------------ the study

def _optuna():
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def sampler(settings: dict, space: dict[str, Dist], parallel: bool, trial: int = 0):
    """The sampler that proposes trial number `trial`. Random and TPE: a fresh one for every
    trial, seeded by (the search's seed, trial), so that a resumed search proposes what an
    undisturbed one would have (one sampler kept from the start would begin its random stream
    again on resume). Grid: the search's seed shuffles the grid once, and trial n takes its
    n-th point, which a resume continues as it is."""
    optuna = _optuna()
    name, seed = settings["sampler"], int(settings["seed"])
    if name == "grid":
        return optuna.samplers.GridSampler(grid_space(space, settings["trials"]), seed=seed)
    seed = (seed + 7919 * trial) % 2**32
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=settings["startup_trials"],
                                      constant_liar=parallel)


def pruner(settings: dict, epochs: int):
    optuna = _optuna()
    name = settings["pruner"]
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=settings["startup_trials"], n_warmup_steps=0)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(1, epochs))
    return optuna.pruners.NopPruner()


def open_study(settings: dict, space: dict[str, Dist], epochs: int, parallel: bool, create: bool):
    optuna = _optuna()
    try:
        return optuna.create_study(study_name=settings["study"], storage=settings["storage"],
                                   direction=METRICS[settings["metric"]], load_if_exists=not create,
                                   sampler=sampler(settings, space, parallel), pruner=pruner(settings, epochs))
    except optuna.exceptions.DuplicatedStudyError:
        raise UsageError(f"the storage {settings['storage']} already holds a study named {settings['study']}; "
                         "resume it with hdr tune --resume, or use another --storage") from None
    except (ImportError, ValueError, RuntimeError) as e:
        raise UsageError(f"cannot open the study's storage {settings['storage']}: {str(e).splitlines()[0][:200]}") \
            from None


def best_of(history: list[dict], metric: str) -> float | None:
    values = [r[metric] for r in history if r.get(metric) is not None]
    if not values:
        return None
    return max(values) if METRICS[metric] == "maximize" else min(values)


# ------------------------------------------------------------------------------ running

class Tune:
    def __init__(self, folder: Path, settings: dict, space: dict[str, Dist], study, quiet: bool):
        self.folder, self.settings, self.space, self.study, self.quiet = folder, settings, space, study, quiet
        self.metric = settings["metric"]
        self.lock = threading.Lock()  # the storage is used from the executor's threads too
        self.queue: list[executors.Job] = []  # trials of an earlier session to finish first
        self.done = 0
        self.parallel = False  # trials trained at once (TPE's constant liar)
        self.signum: int | None = None  # the signal that stopped the search, if one did

    def save(self, **fields) -> None:
        self.settings.update(fields)
        rundir.write_json(self.folder / "tune.json", self.settings)

    def fields(self, number: int) -> dict:
        return {"tune_id": self.folder.name, "study": self.settings["study"], "trial": number}

    def train_job(self, trial, number: int) -> executors.Job:
        from hdr.engine import config as config_mod

        overrides = overrides_of(self.space, trial.params)
        cfg = read_config(self.settings["config"], [*self.settings["overrides"], *overrides])[0]
        request = {"action": "train", "config": config_mod.dump(cfg),
                   "config_name": f"{Path(self.settings['config']).stem}-trial{number:04d}",
                   "info": self.fields(number)}
        return executors.Job(f"trial-{number:04d}", f"trial {number}", request, self.folder,
                             meta={"trial": trial, "number": number, "overrides": overrides})

    def pending(self) -> None:
        """The trials an earlier session left RUNNING: each resumed, trained, or (when its run
        ended and only the telling was lost) told now."""
        optuna = _optuna()
        found = resuming.index(self.folder, {}, "trial")  # the tune folder holds its trials only
        for frozen in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            trial = optuna.trial.Trial(self.study, frozen._trial_id)
            what, run = resuming.state(found.get(str(frozen.number)))
            if what == "resume":
                history = rundir.read_history(run / rundir.HISTORY)
                for row in history:  # an epoch committed just before the stop may not have been reported
                    if row["epoch"] not in frozen.intermediate_values and row.get(self.metric) is not None:
                        trial.report(row[self.metric], row["epoch"])
                reason = self.prune_reason(trial, frozen.number, history[-1])
                if reason is not None:  # the stop came between that epoch and its pruning decision
                    rundir.RunInfo(run, rundir.read_info(run)).pruned(reason)
                    what = "done"
            if what == "done":
                self.tell(trial, run, rundir.read_info(run).get("status"))
                continue
            if what == "resume":
                job = executors.Job(f"trial-{frozen.number:04d}", f"trial {frozen.number}",
                                    {"action": "resume", "run": str(run)}, self.folder, run=run,
                                    epochs=len(history), meta={"trial": trial, "number": frozen.number,
                                                               "overrides": overrides_of(self.space, frozen.params)})
            else:
                job = self.train_job(trial, frozen.number)
            self.queue.append(job)

    def next_job(self) -> executors.Job | None:
        if self.queue:
            return self.queue.pop(0)
        optuna = _optuna()
        distributions = {k: d.optuna() for k, d in self.space.items()}
        with self.lock:
            if len(self.study.trials) >= self.settings["trials"]:
                return None
            self.study.sampler = sampler(self.settings, self.space, self.parallel, len(self.study.trials))
            if self.settings["sampler"] == "grid" and self.study.sampler.is_exhausted(self.study):
                return None
            trial = self.study.ask(distributions)
        try:
            return self.train_job(trial, trial.number)
        except UsageError as e:  # a combination of values no config allows (checked corners aside)
            with self.lock:
                trial.set_user_attr("error", str(e))
                self._tell(trial, state=optuna.trial.TrialState.FAIL)
            self.say(f"trial {trial.number}: {params_text(self.space, trial.params)}: invalid: {e}")
            return self.next_job()

    def say(self, line: str) -> None:
        if not self.quiet:
            click.echo(line, err=True)

    def on_epoch(self, job: executors.Job, epoch: int, row: dict):
        value = row.get(self.metric)
        if value is None or self.settings["pruner"] == "none":
            return None
        trial = job.meta["trial"]
        with self.lock:
            trial.report(value, epoch)
        return self.prune_reason(trial, job.meta["number"], row)

    def prune_reason(self, trial, number: int, row: dict) -> str | None:
        """The pruner's decision after the epoch of this history row: why to prune, or None."""
        value = row.get(self.metric)
        if value is None or self.settings["pruner"] == "none":
            return None
        with self.lock:
            prune = trial.should_prune()
        if prune:
            return f"{self.settings['pruner']} pruner, trial {number}, after epoch {row['epoch']} " \
                   f"({self.metric} {numbers.metric(self.metric, value)})"
        return None

    def tell(self, trial, run: Path | None, status: str) -> float | None:
        optuna = _optuna()
        state = optuna.trial.TrialState
        value = None
        with self.lock:
            if run is not None:
                trial.set_user_attr("run", run.name)
            if status == rundir.COMPLETED:
                value = best_of(rundir.read_history(run / rundir.HISTORY), self.metric)
                if value is None or not math.isfinite(value):
                    self._tell(trial, state=state.FAIL)
                else:
                    self._tell(trial, value)
            elif status == rundir.PRUNED:
                self._tell(trial, state=state.PRUNED)
            else:
                self._tell(trial, state=state.FAIL)
        return value

    def _tell(self, trial, value=None, state=None) -> None:
        try:
            self.study.tell(trial, value, state=state)
        except RuntimeError as e:
            # GridSampler stops the study once its grid is done, which outside study.optimize()
            # raises after the trial's state is stored; next_job stops asking on its own.
            if "Study.stop" not in str(e):
                raise

    def on_done(self, job: executors.Job, answer: dict):
        number = job.meta["number"]
        run = Path(answer["run"]) if answer.get("run") else (job.run or resuming.find_run(self.folder,
                                                                                          self.fields(number)))
        status = resuming.settled(answer["status"], run)
        if status in (rundir.INTERRUPTED, rundir.NOT_RUN):
            return None, False  # stays RUNNING in the study: --resume finishes it
        value = self.tell(job.meta["trial"], run, status)
        self.done += 1
        params = params_text(self.space, job.meta["trial"].params)
        if status == rundir.COMPLETED:
            what = f"{self.metric} {numbers.metric(self.metric, value)}" if value is not None else "no validation figure"
        elif status == rundir.PRUNED:
            epochs = len(rundir.read_history(run / rundir.HISTORY)) if run else 0
            what = f"pruned after {epochs} epoch{'s' if epochs != 1 else ''}"
        else:
            what = answer.get("error") or status
        return f"[trial {number}] {params}: {status}, {what}", status not in (rundir.COMPLETED, rundir.PRUNED)

    def run(self, executor, options: executors.Options) -> int | None:
        self.save(status=rundir.RUNNING, ended=None, **executor.settings(), options=options.record())
        total = self.settings["trials"] - self.finished()
        progress = executors.Progress(max(total, len(self.queue)), self.quiet, "trial")
        signum = executors.drive(executor, self.next_job, self.on_done, progress)
        self.save(status=rundir.INTERRUPTED if signum else rundir.COMPLETED, ended=rundir.now_iso())
        return signum

    def finished(self) -> int:
        optuna = _optuna()
        return len([t for t in self.study.trials if t.state != optuna.trial.TrialState.RUNNING])


# ------------------------------------------------------------------------------ the results

def trials_table(study, space: dict[str, Dist], metric: str, folder: Path) -> tuple[str, list[dict]]:
    """One row per trial: parameters, state, validation figure, epochs, run. No test column:
    the search chooses on validation data."""
    rows = []
    for t in study.trials:
        run = t.user_attrs.get("run")
        epochs = None
        if run and (folder / run / rundir.HISTORY).is_file():
            epochs = len(rundir.read_history(folder / run / rundir.HISTORY))
        rows.append({"trial": t.number, "state": t.state.name.lower(),
                     **{k: t.params.get(k) for k in space}, metric: t.value, "epochs": epochs, "run": run})
    direction = METRICS[metric]
    rows.sort(key=lambda r: (r[metric] is None, -(r[metric] or 0) if direction == "maximize" else (r[metric] or 0)))
    from tabulate import tabulate

    def shown(v, key):
        if v is None:
            return "-"
        if key == metric:
            return numbers.pct(v) if "loss" not in metric else numbers.loss(v)
        return numbers.param(v)

    keys = ["trial", "state", *space, metric, "epochs", "run"]
    headers = [f"{k} %" if k == metric and "loss" not in metric else k for k in keys]
    text = tabulate([[shown(r[k], k) for k in keys] for r in rows], headers=headers, tablefmt="github")
    return text, rows


def write_results(study, settings: dict, space: dict[str, Dist], folder: Path) -> dict | None:
    """trials.csv, trials.md, best.yaml and the plots; the best trial's record, or None."""
    optuna = _optuna()
    metric = settings["metric"]
    text, rows = trials_table(study, space, metric, folder)
    rundir.atomic_write(folder / "trials.md", text + "\n")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["trial"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    rundir.atomic_write(folder / "trials.csv", buf.getvalue())
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        return None
    best = study.best_trial
    run = folder / best.user_attrs["run"]
    rundir.atomic_write(folder / "best.yaml", f"# the best trial of {folder.name}: trial {best.number}, {metric} "
                        f"{numbers.metric(metric, best.value)} (run {run.name}); hdr train best.yaml trains it again\n"
                        + (run / rundir.CONFIG).read_text())
    _plots(study, folder, metric)
    metrics = rundir.read_json(run / rundir.METRICS) if (run / rundir.METRICS).is_file() else {}
    return {"trial": best.number, "value": best.value, "params": best.params, "run": run.name,
            rundir.TEST_ACCURACY: metrics.get(rundir.TEST_ACCURACY)}


def _plots(study, folder: Path, metric: str) -> None:
    from optuna.visualization import matplotlib as ovm

    from hdr.core.plots import pyplot, save_figure

    pyplot()  # hdr's non-interactive backend
    ax = ovm.plot_optimization_history(study, target_name=metric)
    ax.set_title(f"optimization history ({folder.name})")
    save_figure(ax.figure, folder / "history.png")
    try:
        ax = ovm.plot_param_importances(study)  # fANOVA over the completed trials; Optuna's own title
        save_figure(ax.figure, folder / "importance.png")
    except (RuntimeError, ValueError, ZeroDivisionError):
        pass  # too few completed trials to tell; the history plot still stands


# ------------------------------------------------------------------------------ command

def run(config, items, trials, sampler_name, pruner_name, metric, startup_trials, seed, storage, options, runs_dir,
        resume_dir, quiet):
    """What `hdr tune` does with its parsed options (hdr/cli/tune.py): the search validated (or
    reloaded), its trials asked for and trained on the executor, then the results. On resume,
    an option left out keeps the value the search was started with (None: not given)."""
    if resume_dir is None:
        given = {"trials": trials, "sampler": sampler_name, "pruner": pruner_name, "metric": metric,
                 "startup_trials": startup_trials}
        chosen = {k: DEFAULTS[k] if v is None else v for k, v in given.items()}
        settings, space, cfg = _new_search(config, list(items), trials, chosen["sampler"], chosen["pruner"],
                                           chosen["metric"], chosen["startup_trials"], seed, storage)
        options.check()
        made = _executor(options, settings)  # before the folder: a cluster that cannot be reached leaves nothing
        folder = _create(runs_dir, settings)
        with resuming.hold(folder, "search") as lock:
            tune = _search(made, options, lock, folder, settings, space, cfg, True, quiet)
            _conclude(tune, tune.signum)
    else:
        if config or items or storage or metric or seed is not None:
            raise UsageError("--resume takes only the tune folder (and --trials, --sampler, --pruner, "
                             "--startup-trials and executor options); the search is in its tune.json")
        settings, space = _load(resume_dir)
        changed = {"trials": trials, "sampler": sampler_name, "pruner": pruner_name, "startup_trials": startup_trials}
        settings.update({k: v for k, v in changed.items() if v is not None})
        cfg = read_config(settings["config"], settings["overrides"])[0]
        options = options.resumed(settings.get("options") or settings)
        options.check()
        with resuming.hold(resume_dir, "search") as lock:
            tune = _search(_executor(options, settings), options, lock, resume_dir, settings, space, cfg, False, quiet)
            _conclude(tune, tune.signum)


def _executor(options, settings) -> tuple:
    """The executor, and the dict through which its epochs reach the Tune made later."""
    relay: dict = {}
    ex = executors.make(options, lambda job, epoch, row: relay["tune"].on_epoch(job, epoch, row), settings["trials"],
                        log=executors.to_stderr)
    return ex, relay


def _search(made: tuple, options, lock: int, folder: Path, settings: dict, space, cfg, create: bool,
            quiet: bool) -> "Tune":
    """Open the study, finish what an earlier session left, ask and train the rest (the
    executor's workers keep the tune folder's lock); the Tune, with its stopping signal."""
    ex, relay = made
    ex.keep_open((lock,))
    try:
        study = open_study(settings, space, cfg.training.epochs, ex.capacity > 1, create=create)
        tune = relay["tune"] = Tune(folder, settings, space, study, quiet)
        tune.parallel = ex.capacity > 1
        tune.pending()
        if not quiet:
            click.echo(f"tune {folder.name}: {settings['trials']} trials ({tune.finished()} done), "
                       f"{settings['sampler']} sampler, {settings['pruner']} pruner, {ex.describe()}", err=True)
        tune.signum = tune.run(ex, options)
    finally:
        ex.close()
    return tune


def _new_search(config, items, trials, sampler_name, pruner_name, metric, startup_trials, seed, storage):
    """(tune.json's settings, the space, the config) of a new search, every corner of it validated."""
    if not config:
        raise UsageError("missing CONFIG: give a YAML config file (see configs/) or --resume DIR")
    space, fixed = parse_space({}, items)
    cfg, search = read_config(config, fixed)
    block, _ = parse_space(search, [])
    space = {**block, **space}
    if cfg.dataset.validation_split is None:
        raise UsageError(f"{config}: dataset.validation_split is null, and a search chooses on validation data; "
                         "set it (0.2 is usual)")
    check_space(config, fixed, space)
    if sampler_name == "grid":
        grid = grid_space(space, trials or DEFAULTS["trials"])
        trials = min(trials or DEFAULTS["trials"], math.prod(len(v) for v in grid.values()))
    if storage is not None:  # an unreachable database is found before anything is made
        _storage_ok(storage)
    settings = {"id": None, "status": rundir.RUNNING, "config": config, "config_name": Path(config).stem,
                "overrides": fixed, "space": {k: d.text() for k, d in space.items()}, "trials": trials or DEFAULTS["trials"],
                "sampler": sampler_name, "pruner": pruner_name, "metric": metric,
                "startup_trials": startup_trials, "seed": cfg.training.seed if seed is None else seed,
                "storage": storage, "study": None, "started": rundir.now_iso(), "ended": None,
                "command": rundir.command_line(), "cwd": os.getcwd()}
    return settings, space, cfg


def _create(runs_dir: Path, settings: dict) -> Path:
    """The tune folder of a new search, with its tune.json (and, by default, the study's database)."""
    folder = rundir.create(runs_dir / "tune", Path(settings["config"]).stem)
    settings.update(id=folder.name, study=folder.name,
                    storage=settings["storage"] or f"sqlite:///{(folder / 'study.db').resolve()}")
    rundir.write_json(folder / "tune.json", settings)
    return folder


def _conclude(tune: Tune, signum) -> None:
    """The trials table, the best trial (its test accuracy once, labelled), and the exit."""
    study, settings, space, folder = tune.study, tune.settings, tune.space, tune.folder
    best = write_results(study, settings, space, folder)
    click.echo((folder / "trials.md").read_text().rstrip())
    click.echo()
    if best is not None:
        params = params_text(space, best["params"])
        click.echo(f"best: trial {best['trial']} ({params}), {settings['metric']} "
                   f"{numbers.metric(settings['metric'], best['value'])}, chosen on validation data; {folder / 'best.yaml'}")
        if best[rundir.TEST_ACCURACY] is not None and signum is None:
            # Once, at the end, and labelled: never an input to the choice.
            click.echo(f"test accuracy of the best trial (reported once, not used to choose): "
                       f"{numbers.percent(best[rundir.TEST_ACCURACY])}")
        tune.save(best=best)
    click.echo(str(folder))
    if signum is not None:
        raise Stopped(f"tune stopped by {signal.Signals(signum).name}: {tune.finished()} of {settings['trials']} "
                      f"trials finished; continue with: hdr tune --resume {folder}", signum)
    if best is None:
        raise HdrError(f"no trial completed (see {folder}/trials.md)")


def _storage_ok(url: str) -> None:
    try:
        _optuna().storages.get_storage(url)
    except Exception as e:  # any driver's own error: the URL is the user's to fix
        raise UsageError(f"--storage {url}: cannot open it ({str(e).strip().splitlines()[0][:200]})") from None


def _load(folder: Path) -> tuple[dict, dict[str, Dist]]:
    path = folder / "tune.json"
    if not path.is_file():
        raise UsageError(f"{folder} is not a tune folder (no tune.json); tune folders are in RUNS_DIR/tune/")
    try:
        settings = rundir.read_json(path)
        space = {k: parse_dist(k, v) for k, v in settings["space"].items()}
        settings["config"], settings["storage"], settings["study"]  # noqa: B018  (present)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(f"{path} is damaged ({type(e).__name__}: {e}); the search cannot be resumed") from None
    if not Path(settings["config"]).is_file():
        raise UsageError(f"{settings['config']}, the search's config, is gone; put it back to resume")
    return settings, space
