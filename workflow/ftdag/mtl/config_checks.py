"""The MTL family's checks across config keys, and of a user's data files: all before any job
starts, each naming its key (or the file's line or row)."""

from __future__ import annotations

from pathlib import Path

from ftdag.mtl.user_data import DataError, user_splits

TINY = "tiny"  # mtl.model.base: a causal LM built from mtl.model's dims


def problems(section: dict) -> list[str]:
    """`section`: the `mtl` config section, defaults filled."""
    problems = []
    model = section["model"]
    base = model["base"]
    if base != TINY and base.startswith((".", "/")) and not Path(base).is_dir():
        problems.append(f"config key 'mtl.model.base': no folder {base}")
    if base == TINY and model["hidden_size"] % model["num_attention_heads"]:
        problems.append(
            "config key 'mtl.model': hidden_size must be a multiple of num_attention_heads"
        )
    if section["objective"] == "grpo" and base == TINY:
        problems.append(
            "config key 'mtl.objective': grpo learns from rewards, so it starts from a model "
            "that already answers sometimes: set mtl.model.base to a fine-tuned model folder "
            "(e.g. a copy of an sft run's results/mtl/<arm>/seed0/training/snapshots/best)"
        )
    stopping = section["schedule"]["early_stopping"]
    if stopping["min_epochs"] > section["schedule"]["max_epochs"]:
        problems.append(
            f"config key 'mtl.schedule.early_stopping.min_epochs': {stopping['min_epochs']} "
            f"is more than mtl.schedule.max_epochs ({section['schedule']['max_epochs']})"
        )
    files = section["data"]["files"]
    if files:
        try:
            user_splits(files, section["data"]["validation_per_task"], 0, base == TINY)
        except DataError as error:
            problems.append(f"config key 'mtl.data.files': {error}")
    return problems
