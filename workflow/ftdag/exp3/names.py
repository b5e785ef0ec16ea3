"""exp3's names, in one place: models (`pt1`, `ftwb1-k`, `ftwb2-p`), evaluations
(`{task}_{cities}`, `multi_task`), their order and what each trains. Rules (wildcard
constraints), data, metrics, plots and tests all read them from here.
"""

from __future__ import annotations

import re

from ftdag.exp3.tasks import PAIRS, TASK_NAMES
from ftdag.exp3.world import CITY_GROUPS, STANDARD

PRETRAINED = "pt1"
FTWB1, FTWB2 = "ftwb1", "ftwb2"
KINDS = (PRETRAINED, FTWB1, FTWB2)
MULTI_TASK = "multi_task"
PLOTS = ("ftwb1_evaluation_heatmap", "ftwb2_evaluation_heatmap", "ftwb2_vs_ftwb1")
_FINETUNED = re.compile(r"(ftwb1|ftwb2)-(\d+)")


def ftwb1_name(task: str) -> str:
    """FTWB1-k trains the k-th task of TASK_NAMES."""
    return f"{FTWB1}-{TASK_NAMES.index(task) + 1}"


def ftwb2_name(pair: int) -> str:
    return f"{FTWB2}-{pair}"


def finetune_names(ftwb2_pairs, ftwb1_tasks=TASK_NAMES) -> list[str]:
    """FTWB1-k for each task of `ftwb1_tasks` (in TASK_NAMES order), then FTWB2-p."""
    ftwb1 = [ftwb1_name(t) for t in TASK_NAMES if t in ftwb1_tasks]
    return ftwb1 + [ftwb2_name(p) for p in ftwb2_pairs]


def model_names(ftwb2_pairs, ftwb1_tasks=TASK_NAMES) -> list[str]:
    return [PRETRAINED, *finetune_names(ftwb2_pairs, ftwb1_tasks)]


def _parse(model: str) -> tuple[str, int]:
    if model == PRETRAINED:
        return PRETRAINED, 0
    match = _FINETUNED.fullmatch(model)
    if not match:
        raise ValueError(f"unknown exp3 model name {model!r}: expected pt1, ftwb1-K or ftwb2-P")
    return match.group(1), int(match.group(2))


def model_kind(model: str) -> str:
    """'pt1', 'ftwb1' or 'ftwb2'."""
    return _parse(model)[0]


def model_number(model: str) -> int:
    """k of ftwb1-k, p of ftwb2-p (0 for pt1)."""
    return _parse(model)[1]


def trained_tasks(model: str) -> tuple[str, ...]:
    kind, number = _parse(model)
    if kind == PRETRAINED:
        return TASK_NAMES
    if kind == FTWB1:
        if not 1 <= number <= len(TASK_NAMES):
            raise ValueError(f"{model}: FTWB1 runs are numbered 1-{len(TASK_NAMES)}")
        return (TASK_NAMES[number - 1],)
    if number not in PAIRS:
        raise ValueError(f"{model}: FTWB2 pairs are numbered 1-{len(PAIRS)}")
    return PAIRS[number]


def model_order(model: str) -> tuple[int, int]:
    """Sort key: pt1, then ftwb1-1..7, then ftwb2 by pair number."""
    kind, number = _parse(model)
    return KINDS.index(kind), number


def model_label(model: str) -> str:
    """How plots name a model: `3 angle` (FTWB1), `2: angle+compass` (FTWB2)."""
    kind, number = _parse(model)
    if kind == FTWB1:
        return f"{number} {trained_tasks(model)[0]}"
    if kind == FTWB2:
        return f"{number}: {'+'.join(trained_tasks(model))}"
    return model


def eval_names() -> list[str]:
    """The 15 evaluations: each task on standard cities, each task with Atlantis, the mix."""
    return [f"{t}_{g}" for g in CITY_GROUPS for t in TASK_NAMES] + [MULTI_TASK]


def eval_task_and_cities(eval_name: str) -> tuple[str, str]:
    if eval_name == MULTI_TASK:
        return MULTI_TASK, STANDARD
    task, cities = eval_name.rsplit("_", 1)
    return task, cities
