"""What the shared loop gained for every family, tested on exp3-shaped data: validation every
k epochs (which must not change the training), early stopping, kept snapshots (the last M and
the best), and TensorBoard tracking read back from its event files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from finetune_helpers import TINY_DIMS, standard_records
from ftdag.core.batches import PromptAnswerData
from ftdag.core.checkpoint import Retention
from ftdag.core.generate import generate_answers
from ftdag.core.model import build_model, load_model, save_model
from ftdag.core.stopping import EarlyStopping, Validation
from ftdag.core.tokenizer import build_tokenizer
from ftdag.core.tracking import open_tracker
from ftdag.core.train import TrainConfig, train

TINY = {**TINY_DIMS}
CONFIG = TrainConfig(epochs=6, batch_size=8, lr=3e-3, checkpoint_every=1000, seed=0)


@pytest.fixture(scope="module")
def tokenizer():
    torch.set_num_threads(1)
    return build_tokenizer()


@pytest.fixture(scope="module")
def records():
    return standard_records(["distance", "compass"], 64)


def exact_match(tokenizer, held_out):
    def evaluate(model):
        answers = generate_answers(
            model, tokenizer, [r["prompt"] for r in held_out], 64, 6, progress=False
        )
        right = [a.strip() == r["answer"] for a, r in zip(answers, held_out, strict=True)]
        return {"exact_match": float(np.mean(right)), "n": len(right)}

    return evaluate


def scripted(values):
    """A validation that reports the given values in turn."""
    calls = iter(values)
    return lambda model: {"reward": next(calls)}


def test_validation_every_k_epochs_leaves_the_training_unchanged(tokenizer, records, tmp_path):
    data = PromptAnswerData(tokenizer, records[:48])
    validation = Validation(
        exact_match(tokenizer, records[48:]), every_epochs=2, before_training=True
    )
    validated = build_model(tokenizer, seed=0, **TINY)
    stats = train(validated, data, CONFIG, tmp_path / "a.pt", progress=False, validation=validation)
    assert [v["epoch"] for v in stats["validations"]] == [0, 2, 4, 6]
    assert all(0 <= v["exact_match"] <= 1 and v["n"] == 16 for v in stats["validations"])
    assert stats["stopped_early"] is None and stats["steps"] == 6 * 6

    plain = build_model(tokenizer, seed=0, **TINY)
    plain_stats = train(plain, data, CONFIG, tmp_path / "b.pt", progress=False)
    assert plain_stats["loss_curve"] == stats["loss_curve"]
    for name, value in plain.state_dict().items():
        assert torch.equal(value, validated.state_dict()[name]), name


def test_early_stopping_ends_training_and_retention_keeps_the_last_and_the_best(
    tokenizer, records, tmp_path
):
    data = PromptAnswerData(tokenizer, records)
    retention = Retention(
        tmp_path / "kept",
        every_epochs=1,
        keep_last=2,
        save=lambda m, d: save_model(m, tokenizer, d),
    )
    model = build_model(tokenizer, seed=0, **TINY)
    stats = train(
        model,
        data,
        CONFIG,
        tmp_path / "c.pt",
        progress=False,
        # best after epoch 2, then two validations without improvement by more than 0.01
        validation=Validation(scripted([0.1, 0.3, 0.305, 0.2, 0.9, 0.9])),
        early_stopping=EarlyStopping("reward", mode="max", patience=2, min_delta=0.01),
        retention=retention,
    )
    assert [v["epoch"] for v in stats["validations"]] == [1, 2, 3, 4]
    assert stats["steps"] == 4 * 8  # 64 samples in batches of 8, four epochs of six
    assert "stopped after epoch 4" in stats["stopped_early"]
    assert retention.kept() == [3, 4]
    assert (tmp_path / "kept/best/EPOCH").read_text().strip() == "2"
    last = load_model(tmp_path / "kept/epoch_4")
    for name, value in last.state_dict().items():  # the snapshot is the model as trained
        torch.testing.assert_close(value, model.state_dict()[name])


def test_min_epochs_holds_off_early_stopping(tokenizer, records, tmp_path):
    data = PromptAnswerData(tokenizer, records)
    stats = train(
        build_model(tokenizer, seed=0, **TINY),
        data,
        CONFIG,
        tmp_path / "d.pt",
        progress=False,
        validation=Validation(scripted([0.5] * 6)),
        early_stopping=EarlyStopping("reward", patience=1, min_epochs=5),
    )
    assert [v["epoch"] for v in stats["validations"]] == [1, 2, 3, 4, 5]
    assert "stopped after epoch 5" in stats["stopped_early"]


def test_early_stopping_needs_a_validation(tokenizer, records, tmp_path):
    with pytest.raises(ValueError, match="needs a validation"):
        train(
            build_model(tokenizer, seed=0, **TINY),
            PromptAnswerData(tokenizer, records),
            CONFIG,
            tmp_path / "e.pt",
            early_stopping=EarlyStopping("reward"),
        )


def test_tensorboard_events_hold_the_losses_lr_and_validations(tokenizer, records, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tracker = open_tracker(
        {"backends": ["tensorboard"], "dir": str(tmp_path / "tracking")}, "exp3-tiny-pt1"
    )
    config = TrainConfig(epochs=2, batch_size=8, lr=3e-3, warmup_fraction=0.25, seed=0)
    stats = train(
        build_model(tokenizer, seed=0, **TINY),
        PromptAnswerData(tokenizer, records),
        config,
        tmp_path / "f.pt",
        progress=False,
        validation=Validation(exact_match(tokenizer, records[:16])),
        tracker=tracker,
    )
    events = EventAccumulator(str(tmp_path / "tracking/tensorboard/exp3-tiny-pt1"))
    events.Reload()
    losses = events.Scalars("train/loss")
    assert [e.step for e in losses] == list(range(1, 17))
    np.testing.assert_allclose([e.value for e in losses], stats["loss_curve"], atol=1e-4)
    lr = [e.value for e in events.Scalars("train/lr")]
    assert lr[0] < max(lr) and lr[-1] < max(lr)  # warm-up, then decay
    assert all(e.value > 0 for e in events.Scalars("train/tokens_per_second"))
    validations = events.Scalars("validation/exact_match")
    assert [e.step for e in validations] == [8, 16]
    assert [e.value for e in validations] == [v["exact_match"] for v in stats["validations"]]


def test_an_uninstalled_backend_is_a_clear_error(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    with pytest.raises(RuntimeError, match="pip install wandb"):
        open_tracker({"backends": ["wandb"], "dir": str(tmp_path)}, "run")
    with pytest.raises(ValueError, match="tracking.backends"):
        open_tracker({"backends": ["comet"]}, "run")


def test_bf16_precision_trains_under_autocast_and_keeps_float32_weights(
    tokenizer, records, tmp_path
):
    config = TrainConfig(epochs=2, batch_size=8, lr=3e-3, seed=0, precision="bf16")
    model = build_model(tokenizer, seed=0, **TINY)
    stats = train(
        model, PromptAnswerData(tokenizer, records), config, tmp_path / "g.pt", progress=False
    )
    fp32 = train(
        build_model(tokenizer, seed=0, **TINY),
        PromptAnswerData(tokenizer, records),
        TrainConfig(epochs=2, batch_size=8, lr=3e-3, seed=0),
        tmp_path / "h.pt",
        progress=False,
    )
    assert stats["loss_curve"][-1] < stats["loss_curve"][0]
    assert stats["loss_curve"] != fp32["loss_curve"]  # bfloat16 rounding: not the fp32 run
    np.testing.assert_allclose(stats["loss_curve"][:3], fp32["loss_curve"][:3], rtol=0.05)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert stats["config"]["precision"] == "bf16"


class TwoTaskData(PromptAnswerData):
    """One loss per task, as multi-task learning needs: distance and compass apart."""

    def __init__(self, tokenizer, records):
        super().__init__(tokenizer, records)
        self.tasks = [r["task"] for r in records]

    def batch(self, indices):
        return {**super().batch(indices), "task": [self.tasks[i] for i in indices]}

    def losses(self, model, batch, device):
        from ftdag.core.batches import answer_loss

        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        losses = {}
        for task in sorted(set(batch["task"])):
            rows = torch.tensor([t == task for t in batch["task"]])
            share = rows.float().mean()  # so that the tasks' losses sum to the batch mean
            losses[task] = answer_loss(logits[rows], batch["labels"][rows]) * share
        return losses


class PerTaskBackward:
    """A gradient rule that sees each task's gradient apart (where gradient surgery would
    change them) and then sums them."""

    wraps_ddp = False

    def __init__(self):
        self.seen = []

    def backward(self, losses, parameters):
        total = [torch.zeros_like(p) for p in parameters]
        for loss in losses.values():
            grads = torch.autograd.grad(loss, parameters, retain_graph=True, allow_unused=True)
            for t, g in zip(total, grads, strict=True):
                if g is not None:
                    t += g
        for p, t in zip(parameters, total, strict=True):
            p.grad = t
        self.seen.append(sorted(losses))


def test_what_a_batch_is_and_how_losses_become_a_gradient_are_parameters(
    tokenizer, records, tmp_path
):
    config = TrainConfig(epochs=1, batch_size=16, lr=3e-3, seed=0)
    rule = PerTaskBackward()
    per_task = build_model(tokenizer, seed=0, **TINY)
    stats = train(
        per_task,
        TwoTaskData(tokenizer, records),
        config,
        tmp_path / "i.pt",
        progress=False,
        gradient=rule,
    )
    assert rule.seen and all(tasks == ["compass", "distance"] for tasks in rule.seen)
    summed = build_model(tokenizer, seed=0, **TINY)
    plain = train(
        summed, PromptAnswerData(tokenizer, records), config, tmp_path / "j.pt", progress=False
    )
    # Summing the tasks' gradients is the plain step: same losses, same weights.
    np.testing.assert_allclose(stats["loss_curve"], plain["loss_curve"], atol=1e-4)
    for name, value in summed.state_dict().items():
        torch.testing.assert_close(per_task.state_dict()[name], value, rtol=1e-4, atol=1e-5)
