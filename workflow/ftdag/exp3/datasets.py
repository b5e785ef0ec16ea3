"""Training and evaluation sets of exp3, deterministic from the world and a seed.

Models and their data:
- ``pt1``: the seven-task mix on standard cities only (Atlantis never appears), after an
  optional lead-in of a few tasks (distance and compass by default) that training sees once,
  first: a tiny model learns where the cities are from those far sooner than from the mix;
- ``ftwb1-k``: task k with an Atlantis city in every sample, a replay of task k without
  Atlantis, and a small warm set of Atlantis samples of every task;
- ``ftwb2-p``: the same recipe for the two tasks of pair p.
The 15 evaluation sets (each task on standard cities, each task with Atlantis, and the
pretraining mix) are drawn first; no training set contains one of their prompts.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from ftdag.core.records import LEAD_IN
from ftdag.exp3.names import (
    MULTI_TASK,
    PRETRAINED,
    eval_names,
    eval_task_and_cities,
    model_kind,
    trained_tasks,
)
from ftdag.exp3.tasks import TASK_NAMES, sample_examples
from ftdag.exp3.world import ATLANTIS, STANDARD, World


@dataclass(frozen=True)
class TrainingSizes:
    pt1_samples: int
    atlantis_samples: int  # per trained task, every sample has an Atlantis city
    replay_samples: int  # per trained task, standard cities only
    warm_samples: int  # per task (all seven), with an Atlantis city
    pt1_lead_in_samples: int  # pt1 only, seen once before the mix

    @classmethod
    def from_config(cls, data: dict) -> TrainingSizes:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


def _rng(seed: int, name: str) -> np.random.Generator:
    """An independent stream per data set, so adding a set never changes another one."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def build_eval_sets(world: World, n_per_set: int, seed: int) -> dict[str, list[dict]]:
    sets: dict[str, list[dict]] = {}
    for name in eval_names():
        task, cities = eval_task_and_cities(name)
        tasks = TASK_NAMES if task == MULTI_TASK else (task,)
        examples = sample_examples(
            tasks, n_per_set, world, _rng(seed, "eval/" + name), cities == ATLANTIS
        )
        sets[name] = [e.to_record(cities) for e in examples]
    return sets


def build_training_set(
    model: str,
    world: World,
    sizes: TrainingSizes,
    seed: int,
    held_out: set[str],
    lead_in_tasks: tuple[str, ...],
) -> list[dict]:
    """The training samples of `model`, shuffled, none of whose prompts is in `held_out`.
    pt1's lead-in samples (of `lead_in_tasks`, marked LEAD_IN) come first, shuffled apart."""
    rng = _rng(seed, "train/" + model)
    lead_in: list[dict] = []
    if model_kind(model) == PRETRAINED and sizes.pt1_lead_in_samples:
        examples = sample_examples(
            lead_in_tasks, sizes.pt1_lead_in_samples, world, rng, False, exclude=held_out
        )
        lead_in = [
            {**examples[i].to_record(STANDARD), LEAD_IN: True}
            for i in rng.permutation(len(examples))
        ]
    records: list[dict] = []

    def add(tasks, n, require_atlantis):
        examples = sample_examples(tasks, n, world, rng, require_atlantis, exclude=held_out)
        records.extend(e.to_record(ATLANTIS if require_atlantis else STANDARD) for e in examples)

    tasks = trained_tasks(model)
    if model_kind(model) == PRETRAINED:
        add(tasks, sizes.pt1_samples, require_atlantis=False)
    else:
        for task in tasks:
            add((task,), sizes.atlantis_samples, require_atlantis=True)
            add((task,), sizes.replay_samples, require_atlantis=False)
        add(TASK_NAMES, sizes.warm_samples * len(TASK_NAMES), require_atlantis=True)
    order = rng.permutation(len(records))
    return lead_in + [records[i] for i in order]
