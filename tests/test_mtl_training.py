"""The MTL family's batches: one loss per domain, adding up to the batch's mean answer loss,
each depending on its own domain's samples only; trained by the shared loop with PCGrad."""

from __future__ import annotations

import json

import numpy as np
import torch

from finetune_helpers import TINY_DIMS
from ftdag.core.batches import PromptAnswerData
from ftdag.core.model import build_model
from ftdag.core.surgery import AggregatedGradients
from ftdag.core.tokenizer import build_tokenizer
from ftdag.core.train import TrainConfig, train
from ftdag.mtl.batches import DomainData
from ftdag.mtl.domains import DOMAINS, TASK_BY_NAME, sample


def mixed_records(n_per_task=8, seed=0):
    rng = np.random.default_rng(seed)
    names = ("add", "boolean", "program", "convert", "automaton", "lookup")
    return [r for name in names for r in sample(TASK_BY_NAME[name], n_per_task, rng)]


def test_domain_losses_add_up_to_the_batch_loss_and_stay_apart():
    torch.manual_seed(0)
    tokenizer = build_tokenizer()
    records = mixed_records()
    model = build_model(tokenizer, seed=0, **TINY_DIMS)
    data = DomainData(tokenizer, records, DOMAINS)
    indices = list(range(0, len(records), 3))
    batch = data.batch(indices)
    losses = data.losses(model, batch, "cpu")
    assert list(losses) == list(DOMAINS)
    whole = PromptAnswerData(tokenizer, records).losses(model, batch, "cpu")["answer"]
    torch.testing.assert_close(sum(losses.values()), whole)
    # The math loss has no gradient from a logic sample's answer: change only logic answers.
    math = losses["math"]
    math.backward()
    first = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    logic_rows = [k for k, i in enumerate(indices) if records[i]["domain"] == "logic"]
    batch["labels"][logic_rows] = batch["labels"][logic_rows].flip(1)
    data.losses(model, batch, "cpu")["math"].backward()
    assert all(torch.equal(a, p.grad) for a, p in zip(first, model.parameters(), strict=True))


def test_a_forward_pass_per_domain_gives_the_same_losses_and_pcgrad_step():
    tokenizer = build_tokenizer()
    records = mixed_records()[:40]  # lookup (tabular) left out: a domain absent from the batch
    model = build_model(tokenizer, seed=0, **TINY_DIMS)
    shared = DomainData(tokenizer, records, DOMAINS)
    separate = DomainData(tokenizer, records, DOMAINS, forward_per_domain=True)
    batch = shared.batch(list(range(0, 40, 2)))
    steps = []
    for data in (shared, separate):
        losses = data.losses(model, batch, "cpu")
        model.zero_grad()
        AggregatedGradients("pcgrad", seed=3).backward(losses, list(model.parameters()))
        steps.append((losses, [p.grad.clone() for p in model.parameters()]))
    (shared_losses, shared_grads), (separate_losses, separate_grads) = steps
    assert float(separate_losses["tabular"]) == 0.0
    for name in DOMAINS:
        torch.testing.assert_close(separate_losses[name], shared_losses[name])
    for a, b in zip(shared_grads, separate_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_pcgrad_trains_six_domains_in_the_shared_loop(tmp_path):
    torch.set_num_threads(1)
    tokenizer = build_tokenizer()
    data = DomainData(tokenizer, mixed_records(16), DOMAINS, forward_per_domain=True)
    model = build_model(tokenizer, seed=0, **TINY_DIMS)
    config = TrainConfig(epochs=4, batch_size=16, lr=3e-3, seed=0)
    stats = train(
        model, data, config, tmp_path / "c.pt", progress=False, gradient=AggregatedGradients()
    )
    losses = stats["loss_curve"]
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3]), losses


def test_validation_reward_mean_weighs_domains_equally():
    from ftdag.mtl.steps import validation_metrics

    records = [{"domain": "math"}] * 3 + [{"domain": "logic"}]
    metrics = validation_metrics(records, [1.0, 1.0, 1.0, 0.0])
    assert metrics == {
        "validation_reward_mean": 0.5,  # not 3 / 4: each domain counts once
        "validation_reward_math": 1.0,
        "validation_reward_logic": 0.0,
    }


def test_kept_snapshots_in_epoch_order_then_best(tmp_path):
    from ftdag.mtl.steps import SNAPSHOTS, kept_snapshots

    for name in ("epoch_10", "epoch_2", "best", "epoch_1"):
        (tmp_path / SNAPSHOTS / name).mkdir(parents=True)
    (tmp_path / SNAPSHOTS / "epoch_3.tmp").touch()  # not a snapshot
    assert kept_snapshots(tmp_path) == ["epoch_1", "epoch_2", "epoch_10", "best"]


def test_an_arm_trains_with_sft_then_grpo_from_its_snapshot(tmp_path):
    """mtl.objective: grpo starts from a model folder (here the sft arm's last snapshot) and
    trains through the same step, with the arm's gradient rule."""
    from ftdag.core import io
    from ftdag.mtl.training import train_arm

    torch.set_num_threads(1)
    records = mixed_records(6)
    for r in records:
        r["trained"] = True
    io.write_jsonl(tmp_path / "train.jsonl", records)
    io.write_jsonl(tmp_path / "validation.jsonl", mixed_records(2, seed=1))
    schedule = {
        "max_epochs": 2,
        "validate_every_epochs": 1,
        "checkpoint_every_epochs": 1,
        "keep_last": 2,
        "early_stopping": {"metric": "validation_reward_mean", "min_epochs": 2},
    }
    common = {
        "train_split": tmp_path / "train.jsonl",
        "validation_split": tmp_path / "validation.jsonl",
        "training": {"lr": 3e-3, "batch_size": 12},
        "aggregator": "pcgrad",
        "schedule": schedule,
        "eval_settings": {"batch_size": 64, "max_new_tokens": 6},
        "seed": 0,
        "device": "cpu",
    }
    train_arm(
        **common,
        model_settings={"base": "tiny", **TINY_DIMS},
        out_dir=tmp_path / "sft",
        checkpoint=tmp_path / "sft.pt",
    )
    snapshot = tmp_path / "sft/snapshots/epoch_2"
    grpo = {"name": "grpo", "group_size": 2, "temperature": 1.0, "max_new_tokens": 6}
    train_arm(
        **common,
        model_settings={"base": str(snapshot)},
        out_dir=tmp_path / "grpo",
        checkpoint=tmp_path / "grpo.pt",
        objective=grpo,
    )
    stats = json.loads((tmp_path / "grpo/train_stats.json").read_text())
    assert stats["objective"] == "grpo" and stats["aggregator"] == "pcgrad"
    assert stats["steps"] == 2 * 3  # 36 records in batches of 12, two epochs
    assert (tmp_path / "grpo/snapshots/epoch_2/model.safetensors").exists()
    assert not (tmp_path / "grpo.pt").exists()  # the in-job checkpoint is gone once done


def test_a_lora_arm_saves_plain_snapshots_and_keeps_training(tmp_path):
    """Snapshots of a LoRA arm hold the adapters merged into a copy: they load as plain models,
    and the training's own model keeps its adapters (the next epoch still changes them)."""
    from transformers import AutoModelForCausalLM

    from ftdag.core import io
    from ftdag.mtl.training import train_arm

    torch.set_num_threads(1)
    io.write_jsonl(tmp_path / "train.jsonl", mixed_records(4))
    io.write_jsonl(tmp_path / "validation.jsonl", mixed_records(1, seed=1))
    lora = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
    train_arm(
        train_split=tmp_path / "train.jsonl",
        validation_split=tmp_path / "validation.jsonl",
        model_settings={"base": "tiny", **TINY_DIMS, "lora": lora},
        training={"lr": 1e-2, "batch_size": 8},
        aggregator="sum",
        schedule={
            "max_epochs": 2,
            "validate_every_epochs": 1,
            "checkpoint_every_epochs": 1,
            "keep_last": 2,
            "early_stopping": {"metric": "validation_reward_mean", "min_epochs": 2},
        },
        eval_settings={"batch_size": 64, "max_new_tokens": 4},
        seed=0,
        out_dir=tmp_path / "arm",
        checkpoint=tmp_path / "arm.pt",
        device="cpu",
    )
    first, second = (tmp_path / f"arm/snapshots/epoch_{k}" for k in (1, 2))
    assert not (first / "adapter_config.json").exists()
    weights = [AutoModelForCausalLM.from_pretrained(p).state_dict() for p in (first, second)]
    assert not any("lora" in name for name in weights[0])
    changed = [k for k in weights[0] if not torch.equal(weights[0][k], weights[1][k])]
    # Only the adapted projections move between the epochs (merged in); the rest is frozen.
    assert changed and all(("q_proj" in k or "v_proj" in k) for k in changed), changed
