"""Property-based: any config hypothesis makes is either rejected with one clean line, or trains."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from hdr.engine import config
from hdr.core.errors import UsageError

junk = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True, allow_infinity=True),
                 st.text(max_size=6), st.lists(st.integers(-2, 40), max_size=3))


def maybe(strategy):
    """Mostly sensible values, sometimes junk."""
    return st.one_of(strategy, strategy, strategy, junk)


conv_block = st.fixed_dictionaries({"filters": maybe(st.integers(1, 6))},
                                   optional={"kernel": maybe(st.integers(1, 6)), "pool": maybe(st.integers(0, 3)),
                                             "padding": maybe(st.sampled_from(["valid", "same"])),
                                             "dropout": maybe(st.floats(0, 0.9))})
model = st.one_of(
    st.fixed_dictionaries({"type": st.just("slp")}),
    st.fixed_dictionaries({"type": st.just("mlp")}, optional={
        "hidden": maybe(st.lists(st.integers(1, 16), max_size=2)), "dropout": maybe(st.floats(0, 0.9)),
        "activation": maybe(st.sampled_from(["relu", "tanh", "leaky_relu", "sigmoid", "bogus"]))}),
    st.fixed_dictionaries({"type": st.just("cnn"), "conv": st.lists(conv_block, max_size=3)},
                          optional={"dense": maybe(st.lists(st.integers(1, 16), max_size=2))}),
    st.fixed_dictionaries({"type": st.text(max_size=5)}),
)
optimizer = st.fixed_dictionaries(
    {"name": st.one_of(st.sampled_from(list(config.OPTIMIZERS)), st.text(max_size=6))},
    optional={"learning_rate": maybe(st.floats(1e-4, 0.1))})
configs = st.fixed_dictionaries(
    {"dataset": st.fixed_dictionaries({"name": maybe(st.sampled_from(["mnist", "usps"]))},
                                      optional={"validation_split": maybe(st.floats(0.05, 0.5))}),
     "model": model, "optimizer": optimizer},
    optional={"training": st.fixed_dictionaries({}, optional={
        "epochs": maybe(st.just(1)), "batch_size": maybe(st.integers(16, 128)), "seed": maybe(st.integers(0, 9))}),
        "extra": junk})


@settings(max_examples=400, deadline=None)
@given(configs)
def test_validation_never_crashes(data):
    try:
        cfg = config.validate(data, "gen.yaml")
    except UsageError as e:
        msg = str(e)
        assert msg.startswith("gen.yaml: ") and "\n" not in msg and len(msg) < 600
        return
    # Accepted: the resolved config a run writes as config.yaml reads back as the same config
    # (hdr train --resume and hdr evaluate rebuild the run from it).
    again = config.validate(yaml.safe_load(config.dump(cfg)), "config.yaml")
    assert again.resolved() == cfg.resolved()


MLP = {"dataset": {"name": "usps"}, "model": {"type": "mlp", "hidden": [8]}, "training": {"epochs": 1}}


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(configs)
@example({**MLP, "optimizer": {"name": "adam"}})                           # each outcome at least once:
@example({**MLP, "optimizer": {"name": "sgd", "learning_rate": 1e30}})     # diverges
@example({**MLP, "optimizer": {"name": "sgd", "learning_rate": -1}})       # rejected
def test_generated_configs_train_or_are_rejected_cleanly(tiny_data, tmp_path_factory, cli_run, data):
    """Every outcome is one of three, never a traceback:
    exit 0, one completed run folder, printed last;
    exit 1, one run folder recorded `failed` with its reason; on good (tiny) data the only
    failure a config can cause at run time is a diverging learning rate, so anything else that
    hdr caught and recorded as failed is a crash, and fails here;
    exit 2, one line on stderr and no run folder."""
    folder = tmp_path_factory.mktemp("gen")
    path = folder / "gen.yaml"
    if isinstance(data.get("training"), dict):
        data["training"]["epochs"] = 1  # keep each example short
    path.write_text(yaml.safe_dump(data))
    r = cli_run("train", path, "--runs-dir", folder / "runs", "-q")  # raises on a Python exception
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert "Traceback" not in r.output, r.output
    assert r.exit_code in (0, 1, 2), (r.exit_code, r.output)
    event(f"exit {r.exit_code}")
    runs = sorted((folder / "runs").iterdir()) if (folder / "runs").exists() else []
    if r.exit_code == 2:
        assert r.stderr.startswith("hdr: error: ") and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert runs == []  # rejected: nothing created
        return
    assert len(runs) == 1, (r.exit_code, r.output, runs)
    info = json.loads((runs[0] / "run.json").read_text())
    if r.exit_code == 0:
        assert info["status"] == "completed", info
        assert Path(r.stdout.strip().splitlines()[-1]) == runs[0]
        assert (runs[0] / "model.keras").is_file() and (runs[0] / "metrics.json").is_file()
    else:
        assert info["status"] == "failed" and info.get("reason"), info
        assert "diverged" in info["reason"] and info["diverged_epoch"] >= 1, info["reason"]
        last = r.stderr.strip().splitlines()[-1]
        assert last.startswith("hdr: error: ") and "diverged" in last, r.stderr
