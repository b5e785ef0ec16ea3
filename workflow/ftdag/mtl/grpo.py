"""GRPO for the MTL family: a reward objective in place of the supervised answer loss.

The study fine-tuned with PPO on the tasks' rewards (1 for an exactly right answer, else 0).
This is the group-relative variant (GRPO, Shao et al. 2024, DeepSeekMath): for each prompt the
current model samples a group of G answers, each answer's advantage is its reward relative to
its group's, (reward - group mean) / (group std + eps), and the loss is the policy gradient
-advantage x mean log-probability of the answer's sampled tokens. The group mean stands in for
PPO's value model, so there is nothing to train but the policy. One update per sampled batch
(the samples are on-policy), so no ratio clipping and no reference model.

The losses are per domain, as for supervised training (`ftdag.mtl.batches`): a domain's loss
is the sum over its sampled answers divided by (batch size x G), so the domains' losses add up
to the batch's mean policy loss, their plain sum is ordinary GRPO on the mixture, and a gradient
rule such as PCGrad (`ftdag.core.surgery`) takes one gradient per domain just the same.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import torch

from ftdag.core.batches import collate
from ftdag.core.generate import decode_loop, left_pad
from ftdag.mtl.batches import DomainData, domain_losses
from ftdag.mtl.domains import reward

EPS = 1e-6  # keeps a group of nearly equal rewards from dividing by zero


def group_advantages(rewards: torch.Tensor) -> torch.Tensor:
    """(prompts x G) rewards to advantages: each reward less its group's mean, divided by the
    group's standard deviation (+ EPS). A group of equal rewards has advantages of 0: it tells
    nothing about which answer is better."""
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    return centred / (rewards.std(dim=1, keepdim=True) + EPS)


def sampling_seed(seed: int, indices: Sequence[int]) -> int:
    """A generator seed from the run's seed and the batch's sample indices: a resumed run
    samples what the uninterrupted one did, and every DDP process (its own indices) differs."""
    text = json.dumps([seed, list(indices)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


@torch.no_grad()
def sample_answers(
    model,
    sequences: list[list[int]],
    max_new_tokens: int,
    temperature: float,
    eos_id: int,
    pad_id: int,
    seed: int,
) -> list[list[int]]:
    """Sampled continuations of each token sequence, up to and including <eos> or
    `max_new_tokens` tokens. Draws from its own generator (seeded with `seed`), never from the
    global RNG, whose stream the training loop owns."""
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    input_ids, mask = left_pad(sequences, pad_id)
    attention_mask = mask.to(device)
    # Positions count real tokens only, as greedy decoding numbers left-padded prompts.
    position = (mask.cumsum(-1) - 1).clamp(min=0).to(device)
    output = model(
        input_ids=input_ids.to(device),
        attention_mask=attention_mask,
        position_ids=position,
        use_cache=True,
        logits_to_keep=1,
    )

    def sample(logits: torch.Tensor) -> torch.Tensor:
        probabilities = torch.softmax(logits.float() / temperature, dim=-1)
        return torch.multinomial(probabilities, 1, generator=generator).squeeze(1)

    new_tokens = decode_loop(
        model, output, attention_mask, position[:, -1:], max_new_tokens, eos_id, pad_id, sample
    )
    rows = new_tokens.tolist()
    return [row[: row.index(eos_id) + 1] if eos_id in row else row for row in rows]


def policy_losses(
    model, inputs: dict, advantages: torch.Tensor, n_domains: int, per_domain: bool, device
) -> list[torch.Tensor]:
    """Each domain's policy loss: -advantage x mean log-probability of each sampled answer
    (its labelled tokens in `inputs`), summed over the domain's answers, divided by their
    total number (`ftdag.mtl.batches.domain_losses`, weighted by the advantages: the
    cross-entropy is minus the mean log-probability of the answer's tokens)."""
    return domain_losses(model, inputs, advantages, n_domains, per_domain, device)


class GroupRelativeData(DomainData):
    """{prompt, answer, domain} records trained by GRPO: per domain, the policy loss of G
    answers sampled per prompt (see the module's docstring). The records' answers are only
    rewarded against, never trained on."""

    def __init__(
        self,
        tokenizer,
        records: list[dict],
        domains: Sequence[str],
        forward_per_domain: bool = False,
        group_size: int = 4,
        temperature: float = 1.0,
        max_new_tokens: int = 8,
        seed: int = 0,
    ):
        super().__init__(tokenizer, records, domains, forward_per_domain)
        if group_size < 2:
            raise ValueError(f"a group needs at least 2 answers to compare, not {group_size}")
        if temperature <= 0 or max_new_tokens < 1:
            raise ValueError("sampling needs temperature > 0 and max_new_tokens >= 1")
        self.tokenizer = tokenizer
        self.answers = [r["answer"] for r in records]
        self.group_size, self.temperature = group_size, temperature
        self.max_new_tokens, self.seed = max_new_tokens, seed
        self.last_mean_reward = float("nan")  # of the answers sampled for the latest batch

    @property
    def fingerprint(self) -> str:
        settings = (self.group_size, self.temperature, self.max_new_tokens, self.seed)
        return super().fingerprint + ":grpo:" + ",".join(map(str, settings))

    def batch(self, indices: Sequence[int]) -> dict:
        batch = super().batch(indices)
        batch["index"] = torch.tensor(list(indices), dtype=torch.long)  # prompts and answers
        return batch

    def losses(self, model, batch: dict, device) -> dict[str, torch.Tensor]:
        indices, group = batch["index"].tolist(), self.group_size
        repeated = _repeat(indices, group)  # each prompt G times, in a row
        prompts = [self.ids[i][: self.answer_start[i]] for i in repeated]
        samples = sample_answers(
            getattr(model, "module", model),  # not through DDP's wrapper: no backward follows
            prompts,
            self.max_new_tokens,
            self.temperature,
            self.tokenizer.eos_token_id,
            self.pad_id,
            sampling_seed(self.seed, indices),
        )
        texts = self.tokenizer.batch_decode(samples, skip_special_tokens=True)
        rewards = torch.tensor(
            [reward(t, self.answers[i]) for t, i in zip(texts, repeated, strict=True)]
        ).view(len(indices), group)
        self.last_mean_reward = float(rewards.mean())
        input_ids, mask, labels = collate(
            [p + s for p, s in zip(prompts, samples, strict=True)],
            [len(p) for p in prompts],
            self.pad_id,
        )
        batch["sampled_tokens"] = int(mask.sum())  # what the policy's forward pass read
        inputs = {"input_ids": input_ids, "attention_mask": mask, "labels": labels}
        inputs["domain"] = batch["domain"].repeat_interleave(group)
        losses = policy_losses(
            model,
            inputs,
            group_advantages(rewards).flatten(),
            len(self.domains),
            self.forward_per_domain,
            device,
        )
        return dict(zip(self.domains, losses, strict=True))

    @staticmethod
    def tokens(batch: dict) -> int:
        """The tokens of the prompts and sampled answers once `losses` has run on the batch,
        else those of the prompts and reference answers."""
        return batch.get("sampled_tokens", int(batch["attention_mask"].sum()))


def _repeat(items: Sequence, times: int) -> list:
    return [item for item in items for _ in range(times)]
