"""Gradient surgery for multi-task training: PCGrad by hand on gradients whose answer is known,
against torchjd's PCGrad, in the shared loop (non-conflicting tasks: PCGrad is the plain summed
step), and under DDP (two processes make the step of one with the same global batch)."""

from __future__ import annotations

from importlib.metadata import version

import pytest
import torch

import toy_mtl
from ftdag.core import distributed
from ftdag.core.surgery import aggregator_named, pcgrad


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


def test_two_conflicting_gradients_are_projected_then_summed():
    g1, g2 = [1.0, 0.0], [-1.0, 1.0]  # dot -1: they conflict
    # g1 - (g1.g2 / |g2|^2) g2 = [0.5, 0.5];  g2 - (g2.g1 / |g1|^2) g1 = [0, 1]
    result = pcgrad(torch.tensor([g1, g2]), generator())
    torch.testing.assert_close(result, torch.tensor([0.5, 1.5]))


def test_agreeing_gradients_are_summed_unchanged():
    gradients = torch.tensor([[1.0, 2.0, 0.0], [0.5, 0.0, 3.0]])  # dot 0.5
    torch.testing.assert_close(pcgrad(gradients, generator()), gradients.sum(dim=0))


def test_three_gradients_with_a_known_answer_whatever_the_order():
    # g3 conflicts with g1 only; g2 is orthogonal to both, before and after projection.
    gradients = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 1.0]])
    # g1 -> [0.5, 0, 0.5]; g2 unchanged; g3 -> g3 + g1 = [0, 0, 1]
    for seed in range(5):
        torch.testing.assert_close(
            pcgrad(gradients, generator(seed)), torch.tensor([0.5, 1.0, 1.5])
        )


def test_the_sum_not_the_mean():
    gradients = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    torch.testing.assert_close(pcgrad(gradients, generator()), torch.tensor([1.0, 1.0]))


def test_agrees_with_torchjds_pcgrad():
    pytest.importorskip("torchjd")
    assert version("torchjd") == "0.18.0"  # pinned: its API has changed often
    rows = torch.randn(5, 40, generator=generator(1), dtype=torch.float64)
    for seed in range(3):
        # Both draw each task's order with randperm: the same seed, the same orders.
        torch.manual_seed(seed)
        reference = aggregator_named("torchjd:PCGrad")(rows, None)
        torch.testing.assert_close(pcgrad(rows, generator(seed)), reference)


def test_torchjd_aggregators_are_a_name_away():
    pytest.importorskip("torchjd")
    rows = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
    mean = aggregator_named("torchjd:Mean")(rows, generator())
    torch.testing.assert_close(mean, torch.tensor([0.0, 0.5]))
    with pytest.raises(ValueError, match="no aggregator 'Nope'"):
        aggregator_named("torchjd:Nope")
    with pytest.raises(ValueError, match="unknown aggregator"):
        aggregator_named("pcgrd")


def test_without_conflict_pcgrad_makes_the_summed_step(tmp_path):
    # Nothing shared between the tasks: no two gradients can conflict (every dot is 0).
    plain, surgery = str(tmp_path / "plain"), str(tmp_path / "pcgrad")
    toy_mtl.train_toy(plain, None, shared=False)
    toy_mtl.train_toy(surgery, "pcgrad", shared=False)
    a, b = torch.load(plain), torch.load(surgery)
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-5, atol=1e-7)
    start = toy_mtl.model(shared=False).state_dict()
    assert any((a[k] - start[k]).abs().max() > 1e-2 for k in a)  # it did train


def test_pcgrad_changes_the_step_where_tasks_conflict(tmp_path):
    plain, surgery = str(tmp_path / "plain"), str(tmp_path / "pcgrad")
    toy_mtl.train_toy(plain, None)
    toy_mtl.train_toy(surgery, "pcgrad")
    a, b = torch.load(plain), torch.load(surgery)
    assert any(not torch.allclose(a[k], b[k], atol=1e-4) for k in a)


@pytest.mark.slow
def test_two_processes_make_the_pcgrad_steps_of_one(tmp_path, monkeypatch):
    tests = str(toy_mtl.__file__).rsplit("/", 1)[0]
    monkeypatch.setenv("PYTHONPATH", tests)
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    distributed.launch("toy_mtl:train_toy", {"out": one, "aggregator": "pcgrad"}, 1, 1)
    distributed.launch("toy_mtl:train_toy", {"out": two, "aggregator": "pcgrad"}, 2, 1)
    a, b = torch.load(one), torch.load(two)
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=1e-5)
