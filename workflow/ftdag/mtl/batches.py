"""What a batch is for the MTL family: prompt/answer records of several domains, with one loss
per domain, so that a gradient rule (`ftdag.core.surgery`) can take one gradient per domain.

A domain's loss is its samples' answer losses summed and divided by the batch size: the
domains' losses add up to the batch's mean loss, so the baseline (their plain sum) is ordinary
training on the mixture, and PCGrad differs from it by the surgery alone. A domain with no
sample in a batch has a loss of zero.

With `forward_per_domain`, each domain's samples go through the model on their own: the
domains' graphs are then disjoint, and a rule that takes one gradient per domain (PCGrad)
backpropagates each through its own samples only, about one full backward pass in all instead
of one per domain. The losses are the same; the baseline keeps the single forward pass (DDP's
wrapper expects one forward per backward).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ftdag.core.batches import PromptAnswerData, per_sample_answer_loss


class DomainData(PromptAnswerData):
    """{prompt, answer, domain} records; `domains` fixes the loss names and their order."""

    def __init__(
        self,
        tokenizer,
        records: list[dict],
        domains: Sequence[str],
        forward_per_domain: bool = False,
    ):
        super().__init__(tokenizer, records)
        self.domains = list(domains)
        self.forward_per_domain = forward_per_domain
        index = {d: k for k, d in enumerate(self.domains)}
        unknown = sorted({r["domain"] for r in records} - set(index))
        if unknown:
            raise ValueError(f"records of domains {unknown} not in {self.domains}")
        self.domain_of = [index[r["domain"]] for r in records]

    @property
    def fingerprint(self) -> str:
        return super().fingerprint + ":" + ",".join(self.domains)

    def batch(self, indices: Sequence[int]) -> dict:
        batch = super().batch(indices)
        batch["domain"] = torch.tensor([self.domain_of[i] for i in indices])
        return batch

    def losses(self, model, batch: dict, device) -> dict[str, torch.Tensor]:
        weights = torch.ones(len(batch["domain"]))
        losses = domain_losses(
            model, batch, weights, len(self.domains), self.forward_per_domain, device
        )
        return dict(zip(self.domains, losses, strict=True))


def domain_losses(
    model, batch: dict, weights: torch.Tensor, n_domains: int, per_domain: bool, device
) -> list[torch.Tensor]:
    """Each domain's loss: the sum over its rows of weight x the row's answer loss (`labels`),
    divided by the batch size (weights of 1 for supervised training, advantages for GRPO). With
    `per_domain`, a forward pass per domain, so that the domains' graphs are disjoint; a domain
    without rows has a loss of 0."""
    size = len(weights)
    weights = weights.to(device)
    if not per_domain:
        per_row = weights * _answer_losses(model, batch, device)
        domain = batch["domain"].to(device)
        return [(per_row * (domain == k)).sum() / size for k in range(n_domains)]
    losses = []
    for k in range(n_domains):
        rows = (batch["domain"] == k).nonzero().flatten()
        if len(rows) == 0:
            losses.append(torch.zeros((), device=device))
            continue
        width = int(batch["attention_mask"][rows].sum(dim=1).max())  # right-padded
        part = {key: batch[key][rows, :width] for key in ("input_ids", "attention_mask", "labels")}
        per_row = weights[rows.to(device)] * _answer_losses(model, part, device)
        losses.append(per_row.sum() / size)
    return losses


def _answer_losses(model, batch: dict, device) -> torch.Tensor:
    logits = model(
        input_ids=batch["input_ids"].to(device),
        attention_mask=batch["attention_mask"].to(device),
    ).logits
    return per_sample_answer_loss(logits, batch["labels"].to(device))
