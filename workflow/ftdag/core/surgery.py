"""Gradient rules for several losses at once (multi-task learning): one gradient per named loss
over the shared parameters, combined by an aggregator into the step's gradient.

- `pcgrad`: PCGrad as published (Yu et al. 2020, Algorithm 1). For each task's gradient, in a
  random order of the other tasks, where its dot product with another task's *original*
  gradient is negative, subtract its projection onto that gradient; then **sum** the results
  (a copy the study used averaged, a known bug).
- `sum`: the plain sum (what `SumOfLosses` computes in one backward pass; here for checks).
- `torchjd:<Name>`: any aggregator of torchjd (UPGrad, MGDA, CAGrad, NashMTL, Mean, ...).

Under DDP each task's gradient is averaged over the processes *before* the aggregation, so
every process aggregates the same matrix and makes the same step (the study projected each
rank's shard separately). The random order comes from a generator seeded per step, the same
on every process, and leaves the global RNG alone.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Aggregator = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def pcgrad(gradients: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """PCGrad of a (tasks x parameters) matrix: the sum of the projected task gradients."""
    tasks = gradients.shape[0]
    squared_norms = (gradients * gradients).sum(dim=1)
    projected = gradients.clone()
    for i in range(tasks):
        for j in torch.randperm(tasks, generator=generator).tolist():
            if j == i or squared_norms[j] == 0:
                continue
            dot = projected[i] @ gradients[j]
            if dot < 0:
                projected[i] -= dot / squared_norms[j] * gradients[j]
    return projected.sum(dim=0)


def plain_sum(gradients: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return gradients.sum(dim=0)


def torchjd_aggregator(name: str) -> Aggregator:
    """An aggregator of torchjd by class name (pip install torchjd)."""
    try:
        from torchjd import aggregation
    except ImportError as error:
        raise ImportError(
            f"aggregator torchjd:{name} needs torchjd (pip install torchjd)"
        ) from error
    if not hasattr(aggregation, name):
        raise ValueError(f"torchjd has no aggregator {name!r}")
    aggregator = getattr(aggregation, name)()
    return lambda gradients, generator: aggregator(gradients)


def aggregator_named(name: str) -> Aggregator:
    if name == "pcgrad":
        return pcgrad
    if name == "sum":
        return plain_sum
    if name.startswith("torchjd:"):
        return torchjd_aggregator(name.removeprefix("torchjd:"))
    raise ValueError(f"unknown aggregator {name!r}: pcgrad, sum or torchjd:<Name>")


class AggregatedGradients:
    """A gradient rule for `ftdag.core.train.train`: one backward pass per loss (the losses
    share the forward pass), gradients averaged over processes, then aggregated. The model is
    not wrapped in DDP (`wraps_ddp = False`): this rule does the exchange itself, once per
    step for all tasks."""

    wraps_ddp = False

    def __init__(self, aggregator: str | Aggregator = "pcgrad", seed: int = 0):
        self.aggregate = aggregator_named(aggregator) if isinstance(aggregator, str) else aggregator
        self.seed = seed
        self.step = 0  # set by the loop before each backward: a resumed run draws the same

    def backward(self, losses: dict[str, torch.Tensor], parameters) -> None:
        parameters = list(parameters)
        names = sorted(losses)  # the same row order on every process
        rows = []
        for k, name in enumerate(names):
            if losses[name].grad_fn is None:  # a task absent from this batch
                rows.append(torch.cat([torch.zeros_like(p).reshape(-1) for p in parameters]))
                continue
            grads = torch.autograd.grad(
                losses[name], parameters, retain_graph=k < len(names) - 1, allow_unused=True
            )
            rows.append(
                torch.cat(
                    [
                        (g if g is not None else torch.zeros_like(p)).reshape(-1)
                        for g, p in zip(grads, parameters, strict=True)
                    ]
                )
            )
        matrix = torch.stack(rows)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # The train loop scales each loss by the process count; summed over processes,
            # each row is the task's gradient of the global batch.
            torch.distributed.all_reduce(matrix)
            matrix /= torch.distributed.get_world_size()
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.step)
        combined = self.aggregate(matrix.cpu(), generator).to(matrix.device)
        offset = 0
        for p in parameters:
            size = p.numel()
            p.grad = combined[offset : offset + size].view_as(p).to(p.dtype)
            offset += size
