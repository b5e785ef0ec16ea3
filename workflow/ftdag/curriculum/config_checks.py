"""The curriculum family's checks across config keys, and of a user's data file: all before
any job starts, each naming its key (or the file's line)."""

from __future__ import annotations

from pathlib import Path

from ftdag.curriculum.data import DataError, load_user_records

GENERATED = "generated"
TINY = "tiny"  # an arm's base built from curriculum.model


def problems(section: dict) -> list[str]:
    """`section`: the `curriculum` config section, defaults filled."""
    problems = []
    for name, arm in section["arms"].items():
        if arm["template"] not in section["templates"]:
            problems.append(
                f"config key 'curriculum.arms.{name}.template': {arm['template']!r} is not a "
                f"template of curriculum.templates ({', '.join(section['templates'])})"
            )
        own = arm.get("resolution")
        resolution = own or section["resolution"]
        if arm["base"] == TINY and resolution % 28:
            key = f"curriculum.arms.{name}.resolution" if own else "curriculum.resolution"
            problems.append(
                f"config key '{key}': {resolution} is not a multiple of 28 (the tiny model's "
                "14-pixel patches, merged 2 x 2)"
            )
        base = arm["base"]
        if base != TINY and base.startswith((".", "/")) and not Path(base).is_dir():
            problems.append(f"config key 'curriculum.arms.{name}.base': no folder {base}")
    low, high = section["data"]["shape_size"]
    if low >= high:
        problems.append(
            f"config key 'curriculum.data.shape_size': [{low}, {high}] is not [low, high) "
            "with low < high"
        )
    model = section["model"]
    if (
        model["hidden_size"] % model["num_attention_heads"]
        or (model["hidden_size"] // model["num_attention_heads"]) % 8
    ):
        problems.append(
            "config key 'curriculum.model': hidden_size / num_attention_heads must be a head "
            "size divisible by 8"
        )
    splits = section["data"]["splits"]
    if abs(sum(splits.values()) - 1) > 1e-9:
        problems.append(
            f"config key 'curriculum.data.splits': the fractions sum to "
            f"{sum(splits.values()):g}, not 1"
        )
    source = section["data"]["source"]
    if source != GENERATED:
        if not Path(source).is_file():
            problems.append(f"config key 'curriculum.data.source': no file {source}")
        else:
            try:
                load_user_records(source)
            except DataError as error:
                problems.append(f"config key 'curriculum.data.source': {error}")
    return problems
