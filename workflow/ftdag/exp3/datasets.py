"""Training and evaluation sets of exp3, deterministic from the world and a seed.

Models and their data:
- ``pt1``: standard cities only (Atlantis never appears), in stages (`exp3.data.pt1_stages`),
  each of its own tasks; by default distance and compass seen once, then the seven-task mix: a
  tiny model learns where the cities are from those far sooner than from the mix;
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

from ftdag.core.records import STAGE
from ftdag.core.schedule import Stage
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


def pt1_stages(config_stages: list[dict]) -> tuple[Stage, ...]:
    """pt1's stages from `exp3.data.pt1_stages`; a stage without `epochs` takes the arch's
    (the loop's `TrainConfig.epochs`)."""
    return tuple(
        Stage(s["samples"], s.get("epochs"), tuple(s["tasks"]), s.get("restart_lr", False))
        for s in config_stages
    )


@dataclass(frozen=True)
class TrainingSizes:
    pt1_stages: tuple[Stage, ...]  # in training order; the data needs their tasks and samples
    atlantis_samples: int  # per trained task, every sample has an Atlantis city
    replay_samples: int  # per trained task, standard cities only
    warm_samples: int  # per task (all seven), with an Atlantis city

    @classmethod
    def from_config(cls, data: dict) -> TrainingSizes:
        sizes = {k: data[k] for k in cls.__dataclass_fields__ if k != "pt1_stages"}
        return cls(pt1_stages(data["pt1_stages"]), **sizes)


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
    model: str, world: World, sizes: TrainingSizes, seed: int, held_out: set[str]
) -> list[dict]:
    """The training samples of `model`, shuffled, none of whose prompts is in `held_out`.
    pt1's come stage by stage, each record marked with its stage, each stage shuffled apart."""
    rng = _rng(seed, "train/" + model)
    if model_kind(model) == PRETRAINED:
        return _pt1_records(world, sizes.pt1_stages, rng, held_out)
    records: list[dict] = []

    def add(tasks, n, require_atlantis):
        examples = sample_examples(tasks, n, world, rng, require_atlantis, exclude=held_out)
        records.extend(e.to_record(ATLANTIS if require_atlantis else STANDARD) for e in examples)

    for task in trained_tasks(model):
        add((task,), sizes.atlantis_samples, require_atlantis=True)
        add((task,), sizes.replay_samples, require_atlantis=False)
    add(TASK_NAMES, sizes.warm_samples * len(TASK_NAMES), require_atlantis=True)
    order = rng.permutation(len(records))
    return [records[i] for i in order]


def _pt1_records(world: World, stages, rng, held_out: set[str]) -> list[dict]:
    """Each stage's examples, then their shuffle, drawn in turn from one stream: the draws that
    a lead-in followed by the mix made, so the default stages keep those records."""
    records: list[dict] = []
    for k, stage in enumerate(stages):
        examples = sample_examples(stage.tasks, stage.samples, world, rng, False, exclude=held_out)
        order = rng.permutation(len(examples))
        records += [{**examples[i].to_record(STANDARD), STAGE: k} for i in order]
    return records
