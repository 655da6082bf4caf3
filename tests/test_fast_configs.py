"""configs/fast/: the configs made for time to accuracy (BENCHMARKS.md, "Time to 99 %"). Their
timings live in bench/perf/time_to_accuracy.py; here only that they are valid, use the stride that
makes them cheap, and learn on real data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hdr.engine import config as config_mod
from tests.conftest import CONFIGS, REPO

FAST = sorted((CONFIGS / "fast").glob("*.yaml"))


def test_there_is_a_fast_config_per_dataset():
    assert {p.stem for p in FAST} == {"mnist", "usps"}


@pytest.mark.parametrize("path", FAST, ids=lambda p: p.stem)
def test_fast_configs_validate_for_their_dataset(path):
    cfg = config_mod.load(path)
    assert cfg.dataset.name == path.stem
    assert cfg.training.precision == "float32"  # bf16 is emulated, so slower, on CPUs without it
    assert cfg.dataset.validation_split  # the curves of the time-to-accuracy plot are validation accuracy


def test_a_stride_shrinks_the_feature_map_in_the_conv_and_is_written_out(tmp_path):
    from hdr.engine import models

    cfg = config_mod.load(CONFIGS / "fast" / "mnist.yaml")
    model = models.build(cfg, (28, 28, 1))
    convs = [layer for layer in model.layers if layer.__class__.__name__ == "Conv2D"]
    assert [c.output.shape[1] for c in convs] == [14, 7]  # "same" padding, stride 2: 28 -> 14 -> 7
    resolved = yaml.safe_load(config_mod.dump(cfg))
    assert [b["stride"] for b in resolved["model"]["conv"]] == [2, 2]
    with pytest.raises(Exception, match="model.conv.0.stride"):
        config_mod.load(CONFIGS / "fast" / "mnist.yaml", ["model.conv.0.stride=0"])


def test_a_run_from_before_stride_existed_keeps_its_fingerprint():
    """Resume compares the config's fingerprint with the one recorded; a stride of 1 is what every
    conv had before the key existed, so it must not change the fingerprint."""
    cfg = config_mod.load(CONFIGS / "cnn_adam.yaml")
    data = cfg.resolved()
    for block in data["model"]["conv"]:
        del block["stride"]  # as an earlier hdr wrote config.yaml
    old = config_mod.validate(data)
    assert config_mod.fingerprint(old) == config_mod.fingerprint(cfg)
    strided = config_mod.load(CONFIGS / "cnn_adam.yaml", ["model.conv.0.stride=2"])
    assert config_mod.fingerprint(strided) != config_mod.fingerprint(cfg)


@pytest.mark.realdata
def test_fast_usps_learns_in_two_epochs_and_the_process_ends_with_its_folder(real_data, tmp_path):
    """Through the console entry point, as a user runs it: hdr.cli.main ends a completed `hdr train`
    with os._exit (no Python tear-down of TensorFlow), so this also checks that stdout was flushed
    and every file is there when the process has gone."""
    env = {**os.environ, "HDR_DATA_DIR": str(real_data), "TF_CPP_MIN_LOG_LEVEL": "3"}
    r = subprocess.run([sys.executable, "-m", "hdr.cli", "train", str(CONFIGS / "fast" / "usps.yaml"),
                        "training.epochs=2", "--runs-dir", str(tmp_path)], capture_output=True, text=True, env=env,
                       cwd=REPO, timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith("test accuracy ")
    folder = Path(r.stdout.strip().splitlines()[-1])
    m = json.loads((folder / "metrics.json").read_text())
    assert m["test_accuracy"] >= 0.85 and m["epochs"] == 2
    assert json.loads((folder / "run.json").read_text())["status"] == "completed"
    for name in ("model.keras", "history.csv", "accuracy.png", "loss.png", "summary.txt", "config.yaml"):
        assert (folder / name).is_file(), name
    assert not (folder / "checkpoint").exists()
