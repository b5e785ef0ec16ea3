"""A toy multi-task problem for the gradient-surgery tests: a small MLP, three regression tasks
(each its own output) sharing the hidden layer, trained by the shared loop. Importable by
module path, so that `distributed.launch` can start it in several processes."""

from __future__ import annotations

import torch

from ftdag.core.surgery import AggregatedGradients
from ftdag.core.train import TrainConfig, train

TASKS = ("a", "b", "c")


class ToyTasks:
    """n samples, each of one task (i % 3); the loss of a task is its samples' squared errors on
    its own output, summed and divided by the batch size (linear in the samples, as the MTL
    family's, so that processes' shares add up). `conflict` makes task b's target the opposite
    of task a's."""

    lead_in = 0

    def __init__(self, n: int = 48, conflict: bool = True, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 4, generator=generator)
        base = self.x @ torch.randn(4, generator=generator)
        self.y = torch.stack([base, -base if conflict else base, torch.sin(base)], dim=1)
        self.task = torch.arange(n) % len(TASKS)
        self.n_samples = n
        self.fingerprint = f"toy{n}{conflict}{seed}"

    def batch(self, indices):
        indices = torch.as_tensor(indices)
        return {"x": self.x[indices], "y": self.y[indices], "task": self.task[indices]}

    def losses(self, model, batch, device):
        out = model(batch["x"].to(device))
        errors = (out - batch["y"].to(device)) ** 2
        task = batch["task"].to(device)
        return {
            name: (errors[:, k] * (task == k)).sum() / len(task) for k, name in enumerate(TASKS)
        }

    @staticmethod
    def tokens(batch) -> int:
        return len(batch["x"])


class SeparateHeads(torch.nn.Module):
    """One small network per task, nothing shared: the tasks' gradients never overlap."""

    def __init__(self):
        super().__init__()
        self.heads = torch.nn.ModuleList(
            torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
            for _ in TASKS
        )

    def forward(self, x):
        return torch.cat([head(x) for head in self.heads], dim=1)


def model(seed: int = 0, shared: bool = True) -> torch.nn.Module:
    torch.manual_seed(seed)
    if not shared:
        return SeparateHeads()
    return torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))


def train_toy(out: str, aggregator: str | None, shared: bool = True, device: str = "cpu"):
    """Trains the toy model with `aggregator` (None: the plain summed loss) and saves its
    weights to `out` (from rank 0)."""
    from ftdag.core import distributed

    net = model(shared=shared)
    gradient = AggregatedGradients(aggregator, seed=0) if aggregator else None
    config = TrainConfig(epochs=3, batch_size=12, lr=1e-2, seed=0, checkpoint_every=1000)
    train(net, ToyTasks(), config, out + ".pt", progress=False, gradient=gradient)
    if distributed.is_main():
        torch.save(net.state_dict(), out)
