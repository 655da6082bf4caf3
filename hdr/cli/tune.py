"""`hdr tune ...`."""

from __future__ import annotations

import click

from hdr.cli import options
from hdr.orchestration import tune


@click.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=str))
@click.argument("items", nargs=-1, metavar="[KEY=DIST | KEY=VALUE]...")
# Defaults are None so that a resume can tell a given option from one left out (which keeps the
# search's own); tune.DEFAULTS holds the values a new search starts with.
@click.option("--trials", type=click.IntRange(min=1), default=None,
              help=f"Trials in all.  [default: {tune.DEFAULTS['trials']}; a resume keeps the search's]")
@click.option("--sampler", "sampler_name", type=click.Choice(tune.SAMPLERS), default=None,
              help="tpe: Optuna's TPE; random; grid: choices as given, ranges cut into about --trials points.  "
                   f"[default: {tune.DEFAULTS['sampler']}; a resume keeps the search's]")
@click.option("--pruner", "pruner_name", type=click.Choice(tune.PRUNERS), default=None,
              help="Stop trials whose per-epoch validation figure falls behind (Optuna's pruners).  "
                   f"[default: {tune.DEFAULTS['pruner']}; a resume keeps the search's]")
@click.option("--metric", type=click.Choice(list(tune.METRICS)), default=None,
              help=f"The validation figure to optimise: a trial's best epoch of it.  [default: {tune.DEFAULTS['metric']}]")
@click.option("--startup-trials", type=click.IntRange(min=0), default=None,
              help="Trials sampled at random and never pruned before TPE and the median pruner act.  "
                   f"[default: {tune.DEFAULTS['startup_trials']}; a resume keeps the search's]")
@click.option("--seed", type=int, default=None, help="The sampler's seed.  [default: training.seed]")
@click.option("--storage", metavar="URL", default=None,
              help="Optuna storage: any database URL Optuna supports.  [default: sqlite in the tune folder]")
@options.executor
@options.runs_dir("The tune folder is created in RUNS_DIR/tune/.")
@options.resume("DIR", "Continue a stopped search: resume its interrupted trials, then ask for the rest.")
@options.quiet("No progress lines; print the table, the best trial and the folder.")
def command(config, items, trials, sampler_name, pruner_name, metric, startup_trials, seed, storage, executor,
            runs_dir, resume_dir, quiet):
    """Search CONFIG's hyperparameters with Optuna: each trial a run folder, chosen on validation.

    A distribution is KEY=loguniform(a,b), uniform(a,b), int(a,b[,log]) or choice(v1,v2,...);
    the same can live in a search: block of the config (KEY: DIST). Other KEY=VALUE pairs
    override the config as in hdr train.

    \b
      hdr tune configs/mlp_sgd.yaml optimizer.learning_rate='loguniform(1e-4,1e-1)' --trials 20
      hdr tune configs/mlp_adam.yaml 'optimizer.name=choice(sgd,adam,adagrad)' \\
          'training.batch_size=int(32,512,log)' --trials 40 --jobs 2
      hdr tune --resume runs/tune/<id>

    The last line printed is the tune folder.
    """
    tune.run(config, list(items), trials, sampler_name, pruner_name, metric, startup_trials, seed, storage, executor,
             runs_dir, resume_dir, quiet)
