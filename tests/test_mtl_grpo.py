"""GRPO for the MTL family: group-relative advantages, per-domain policy losses that add up to
the batch's mean policy loss, and the point of it: on an easy domain it raises the validation
reward of a model fine-tuned briefly with SFT, through the shared loop, with PCGrad too."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from finetune_helpers import TINY_DIMS
from ftdag.core.generate import greedy_decode
from ftdag.core.model import build_model
from ftdag.core.surgery import AggregatedGradients
from ftdag.core.tokenizer import build_tokenizer
from ftdag.core.train import SumOfLosses, TrainConfig, train
from ftdag.mtl.batches import DomainData
from ftdag.mtl.domains import TASK_BY_NAME, reward, sample
from ftdag.mtl.grpo import GroupRelativeData, group_advantages, sample_answers, sampling_seed
from ftdag.mtl.steps import score, validation_metrics

SEED = 0  # also passes with seeds 1-4, 6 and 7 (the rise is smallest, 0.09, with seed 5)
GRPO = {"group_size": 8, "temperature": 1.0, "max_new_tokens": 4}


@pytest.fixture(scope="module")
def tokenizer():
    torch.set_num_threads(1)
    return build_tokenizer()


@pytest.fixture(scope="module")
def boolean(tokenizer, tmp_path_factory):
    """Logic's boolean task (answers T or F): SFT, GRPO and validation records, and a model
    fine-tuned on the first for 64 steps: it answers in the right form, about half right."""
    rng = np.random.default_rng(SEED)
    task = TASK_BY_NAME["boolean"]
    sft, rl, held_out = (sample(task, n, rng) for n in (256, 512, 200))
    model = build_model(tokenizer, seed=SEED, **TINY_DIMS)
    config = TrainConfig(epochs=2, batch_size=8, lr=3e-3, seed=SEED, checkpoint_every=10**6)
    checkpoint = tmp_path_factory.mktemp("sft") / "c.pt"
    train(model, DomainData(tokenizer, sft, ["logic"]), config, checkpoint, progress=False)
    return {"model": model, "rl": rl, "validation": held_out}


def validation_reward(model, tokenizer, records) -> float:
    model.eval()
    _, rewards = score(model, tokenizer, records, batch_size=256, max_new_tokens=4)
    return validation_metrics(records, rewards)["validation_reward_mean"]


def test_advantages_are_rewards_relative_to_their_group():
    rewards = torch.tensor([[1.0, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0], [1, 1, 0, 0]])
    advantages = group_advantages(rewards)
    first = advantages[0]
    assert first[0] > 0 and (first[1:] < 0).all()
    torch.testing.assert_close(first[0], torch.tensor(0.75 / 0.5), rtol=1e-5, atol=0)
    torch.testing.assert_close(advantages.sum(dim=1), torch.zeros(4), atol=1e-5, rtol=0)
    assert (advantages[1:3] == 0).all()  # equal rewards: no answer better than another
    expected = torch.tensor([0.866, 0.866, -0.866, -0.866])  # std 0.577 (unbiased)
    torch.testing.assert_close(advantages[3], expected, rtol=1e-3, atol=0)


def test_sampling_is_seeded_and_leaves_the_global_rng_alone(tokenizer):
    model = build_model(tokenizer, seed=0, **TINY_DIMS)
    prompt = tokenizer("T and F ->", add_special_tokens=False)["input_ids"]
    prompts = [[tokenizer.bos_token_id, *prompt]] * 6
    ids = tokenizer.eos_token_id, tokenizer.pad_token_id
    state = torch.get_rng_state()
    first = sample_answers(model, prompts, 5, 1.0, *ids, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    assert sample_answers(model, prompts, 5, 1.0, *ids, seed=7) == first
    assert sample_answers(model, prompts, 5, 1.0, *ids, seed=8) != first
    assert all(len(s) == 5 or s[-1] == ids[0] for s in first)  # to <eos> or the limit
    assert len({tuple(s) for s in first}) > 1  # a group's answers differ
    assert sampling_seed(0, [1, 2]) != sampling_seed(0, [1, 3]) != sampling_seed(1, [1, 3])


def test_sampling_near_zero_temperature_is_greedy_decoding(tokenizer):
    # Prompts of several lengths (left-padded), and a model whose next token depends on every
    # earlier one and its position (at its initial scale, it repeats the last token).
    model = build_model(tokenizer, seed=0, **TINY_DIMS)
    prompt = tokenizer("T and F ->", add_special_tokens=False)["input_ids"]
    ids = tokenizer.eos_token_id, tokenizer.pad_token_id
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(20 if p.ndim == 2 else 1)
    prompts = [[tokenizer.bos_token_id, *prompt[:n]] for n in (3, 10, 6)]
    greedy = greedy_decode(model, prompts, 5, *ids).tolist()
    greedy = [row[: row.index(ids[0]) + 1] if ids[0] in row else row for row in greedy]
    assert sample_answers(model, prompts, 5, 1e-4, *ids, seed=0) == greedy


def reference_policy_loss(model, data, indices) -> torch.Tensor:
    """The batch's mean policy loss computed answer by answer, unpadded: -advantage x mean
    log-probability of the sampled tokens."""
    prompts = [data.ids[i][: data.answer_start[i]] for i in indices]
    group = data.group_size
    samples = sample_answers(
        model,
        [p for p in prompts for _ in range(group)],
        data.max_new_tokens,
        data.temperature,
        data.tokenizer.eos_token_id,
        data.pad_id,
        sampling_seed(data.seed, indices),
    )
    texts = data.tokenizer.batch_decode(samples, skip_special_tokens=True)
    rewards = [reward(t, data.answers[indices[k // group]]) for k, t in enumerate(texts)]
    advantages = group_advantages(torch.tensor(rewards).view(len(indices), group)).flatten()
    total = torch.zeros(())
    for k, answer in enumerate(samples):
        prompt = prompts[k // group]
        ids = torch.tensor([prompt + answer])
        log_probs = model(input_ids=ids).logits[0, :-1].log_softmax(-1)
        picked = log_probs[len(prompt) - 1 :].gather(1, ids[0, len(prompt) :, None])
        total = total - advantages[k] * picked.mean()
    return total / len(samples)


@pytest.mark.parametrize("forward_per_domain", [False, True])
def test_domain_losses_add_up_to_the_batch_policy_loss(tokenizer, boolean, forward_per_domain):
    model = copy.deepcopy(boolean["model"]).train()
    records = boolean["rl"][:12] + sample(TASK_BY_NAME["lookup"], 12, np.random.default_rng(1))
    data = GroupRelativeData(
        tokenizer, records, ["logic", "tabular", "math"], forward_per_domain, **GRPO
    )
    indices = list(range(0, 24, 2))
    batch = data.batch(indices)
    losses = data.losses(model, batch, "cpu")
    assert list(losses) == ["logic", "tabular", "math"]
    assert losses["math"].item() == 0.0  # no math in the batch
    assert 0 < data.last_mean_reward < 1
    torch.testing.assert_close(
        sum(losses.values()), reference_policy_loss(model, data, indices), rtol=1e-4, atol=1e-6
    )
    assert data.tokens(batch) > int(batch["attention_mask"].sum())  # G answers per prompt
    SumOfLosses().backward(losses, model.parameters())
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())


def test_equal_rewards_give_zero_losses_and_no_gradient(tokenizer):
    # One new token never spells out a sum of two or more digits: every reward is 0.
    records = sample(TASK_BY_NAME["add"], 8, np.random.default_rng(0))
    model = build_model(tokenizer, seed=0, **TINY_DIMS)
    data = GroupRelativeData(tokenizer, records, ["math"], group_size=4, max_new_tokens=1)
    losses = data.losses(model, data.batch(range(8)), "cpu")
    assert data.last_mean_reward == 0.0
    assert losses["math"].item() == 0.0
    losses["math"].backward()
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())


def test_grpo_raises_the_validation_reward_after_brief_sft(tokenizer, boolean, tmp_path):
    model = copy.deepcopy(boolean["model"])
    before = validation_reward(model, tokenizer, boolean["validation"])
    assert 0.2 < before < 0.75  # SFT taught the answers' form, not yet the logic
    data = GroupRelativeData(tokenizer, boolean["rl"], ["logic"], seed=SEED, **GRPO)
    config = TrainConfig(epochs=6, batch_size=16, lr=3e-3, seed=SEED, checkpoint_every=10**6)
    train(model, data, config, tmp_path / "grpo.pt", progress=False)
    after = validation_reward(model, tokenizer, boolean["validation"])
    # 0.475 -> 0.825 with seed 0; 200 prompts: a rise of 0.15 is far beyond their noise.
    assert after > before + 0.15, (before, after)


class RecordingData(GroupRelativeData):
    """Keeps each step's mean sampled reward and domain losses."""

    def losses(self, model, batch, device):
        losses = super().losses(model, batch, device)
        self.log.append((self.last_mean_reward, {k: v.item() for k, v in losses.items()}))
        return losses


def test_pcgrad_takes_a_gradient_per_domain_of_the_policy_losses(tokenizer, tmp_path):
    rng = np.random.default_rng(SEED)
    tasks = [TASK_BY_NAME["boolean"], TASK_BY_NAME["lookup"]]
    sft, rl, held_out = ([r for t in tasks for r in sample(t, n, rng)] for n in (256, 256, 100))
    domains = ["logic", "tabular"]
    model = build_model(tokenizer, seed=SEED, **TINY_DIMS)
    config = TrainConfig(epochs=4, batch_size=16, lr=3e-3, seed=SEED, checkpoint_every=10**6)
    train(model, DomainData(tokenizer, sft, domains), config, tmp_path / "sft.pt", progress=False)
    before = validation_reward(model, tokenizer, held_out)
    data = RecordingData(tokenizer, rl, domains, forward_per_domain=True, seed=SEED, **GRPO)
    data.log = []
    stats = train(
        model,
        data,
        TrainConfig(epochs=3, batch_size=16, lr=3e-3, seed=SEED, checkpoint_every=10**6),
        tmp_path / "grpo.pt",
        progress=False,
        gradient=AggregatedGradients("pcgrad", SEED),
    )
    assert np.isfinite(stats["loss_curve"]).all()
    # Both domains' policy losses (two rows for PCGrad) in nearly every step.
    for name in domains:
        assert sum(losses[name] != 0 for _, losses in data.log) >= 0.9 * len(data.log)
    sampled = [r for r, _ in data.log]
    quarter = len(sampled) // 4
    assert np.mean(sampled[-quarter:]) >= np.mean(sampled[:quarter])
    after = validation_reward(model, tokenizer, held_out)
    assert after > before - 0.05, (before, after)  # no collapse (0.275 -> 0.295 with seed 0)
