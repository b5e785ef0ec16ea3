"""Multi-process training (DDP through torchrun, gloo on the CPU): two processes sharing each
global batch end where one process with the same global batch ends; a SIGTERM stops both at
the same step with one checkpoint, and the rerun resumes from it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from finetune_helpers import TINY_FINETUNE, save_tiny_parent, weights, write_finetune_data
from ftdag.core import distributed, io

FINETUNE = "ftdag.exp3.steps:finetune"
TESTS = Path(__file__).resolve().parent
# One epoch, and weight decay on, so that the decoupled decay is shared correctly as well.
TRAINING = {**TINY_FINETUNE, "epochs": 1, "weight_decay": 0.01}


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    return save_tiny_parent(tmp_path_factory.mktemp("parent") / "pt1")


def finetune_kwargs(parent, data, out, checkpoint, training=TRAINING) -> dict:
    return {
        "train_data": str(data),
        "parent_dir": str(parent),
        "out_dir": str(out),
        "training": training,
        "checkpoint": str(checkpoint),
        "device": "cpu",
    }


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        ({}, 1),
        ({"gpu": 0}, 1),
        ({"gpu": 4}, 4),
        ({"gres": "gpu:a100:2"}, 2),
        ({"gres": "gpu"}, 1),
        ({"gres": "shard:1"}, 1),
    ],
)
def test_processes_follow_the_gpu_request(resources, expected):
    assert distributed.processes_for(resources) == expected


def test_two_processes_match_one_with_the_same_global_batch(parent, tmp_path):
    # Batches of 8, the last of one sample: one process gets none of it.
    data = write_finetune_data(tmp_path / "train.jsonl", 41, "standard")
    assert len(io.read_jsonl(data)) % 8 == 1
    one, two = tmp_path / "one", tmp_path / "two"
    kwargs_one = finetune_kwargs(parent, data, one, tmp_path / "one.pt")
    distributed.launch(FINETUNE, kwargs_one, processes=1, threads=1)
    kwargs_two = finetune_kwargs(parent, data, two, tmp_path / "two.pt")
    distributed.launch(FINETUNE, kwargs_two, processes=2, threads=1)
    single, double = weights(one), weights(two)
    assert single.keys() == double.keys()
    for name in single:
        torch.testing.assert_close(double[name], single[name], rtol=1e-4, atol=1e-5)
    # Training moved the weights far more than the tolerance above.
    start = weights(parent)["model.layers.0.mlp.up_proj.weight"]
    assert (single["model.layers.0.mlp.up_proj.weight"] - start).abs().max() > 1e-2
    stats_one = json.loads((one / "train_stats.json").read_text())
    stats_two = json.loads((two / "train_stats.json").read_text())
    assert (stats_one["processes"], stats_two["processes"]) == (1, 2)
    assert stats_two["steps"] == stats_one["steps"]
    assert stats_two["tokens"] == stats_one["tokens"]  # each token counted once
    np.testing.assert_allclose(stats_two["loss_curve"], stats_one["loss_curve"], atol=1e-4)


def test_sigterm_stops_both_processes_at_one_checkpoint_and_the_rerun_resumes(parent, tmp_path):
    data = write_finetune_data(tmp_path / "train.jsonl", 2000, "standard")  # seconds of training
    training = {**TRAINING, "epochs": 2, "checkpoint_every": 20}
    checkpoint, out = tmp_path / "ckpt.pt", tmp_path / "out"
    kwargs = finetune_kwargs(parent, data, out, checkpoint, training)
    script = (
        "import json, sys; from ftdag.core import distributed; "
        f"distributed.launch('{FINETUNE}', json.loads(sys.argv[1]), processes=2, threads=1)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(distributed.__file__).parents[2])}
    log = tmp_path / "launch.log"
    with open(log, "w") as log_file:
        launcher = subprocess.Popen(
            [sys.executable, "-c", script, json.dumps(kwargs)],
            env=env,
            stderr=log_file,
            start_new_session=True,
        )
        deadline = time.time() + 120
        while not checkpoint.exists():  # training is under way
            assert launcher.poll() is None, log.read_text()
            assert time.time() < deadline, log.read_text()
            time.sleep(0.2)
        # As SLURM does on scancel or at a time limit: every process of the job gets SIGTERM.
        os.killpg(launcher.pid, signal.SIGTERM)
        assert launcher.wait(timeout=120) == 143, log.read_text()
    text = log.read_text()
    assert text.count("stopped by signal at step") == 2, text  # both ranks, same step
    stopped_at = {
        int(line.rsplit("at step ", 1)[1].split(";")[0])
        for line in text.splitlines()
        if "stopped by signal at step" in line
    }
    assert len(stopped_at) == 1
    saved = torch.load(checkpoint, weights_only=False)
    # The stop wrote its own checkpoint: no work since the last periodic one is lost.
    assert saved["state"]["step"] == stopped_at.pop() >= 20
    assert not out.exists()

    distributed.launch(FINETUNE, kwargs, processes=2, threads=1)
    stats = json.loads((out / "train_stats.json").read_text())
    assert stats["steps"] > saved["state"]["step"]
    assert not checkpoint.exists()  # done: removed


def test_no_process_leaves_while_rank_0_still_saves(parent, tmp_path, monkeypatch):
    # Rank 0 alone saves the model; here it takes 3 s. A rank 1 that left at once closed its
    # connections under rank 0, which then aborted at exit and failed a finished training.
    data = write_finetune_data(tmp_path / "train.jsonl", 24, "standard")
    times = tmp_path / "times"
    times.mkdir()
    monkeypatch.setenv("FTDAG_TEST_TIMES", str(times))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    )
    out = tmp_path / "out"
    kwargs = finetune_kwargs(parent, data, out, tmp_path / "ckpt.pt")
    distributed.launch("slow_save:finetune", kwargs, processes=2, threads=1)  # raises if any fails
    saved = float((times / "saved").read_text())
    for rank in (0, 1):
        assert float((times / f"exit_rank{rank}").read_text()) >= saved, f"rank {rank} left early"
    assert (out / "train_stats.json").exists()
