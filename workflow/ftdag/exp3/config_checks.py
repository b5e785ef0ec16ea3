"""exp3's checks across config keys, which the schema cannot express; each problem names its
key. Plugged into `ftdag.core.config.validate_config` by the rules."""

from __future__ import annotations

from ftdag.exp3.tasks import PAIRS
from ftdag.exp3.world import CITY_LETTERS


def problems(section: dict) -> list[str]:
    """`section`: the `exp3` config section, defaults filled."""
    problems = []
    for arch in section["run_archs"]:
        if arch not in section["archs"]:
            problems.append(
                f"config key 'exp3.run_archs': {arch!r} is not an arch of exp3.archs "
                f"({', '.join(section['archs'])})"
            )
    for pair in section["ftwb2_pairs"]:
        missing = [t for t in PAIRS[pair] if t not in section["ftwb1_tasks"]]
        if missing:
            problems.append(
                f"config key 'exp3.ftwb2_pairs': pair {pair} ({'+'.join(PAIRS[pair])}) is "
                f"compared with the FTWB1 specialists of its tasks, but exp3.ftwb1_tasks lacks "
                f"{', '.join(missing)}"
            )
    for name, arch in section["archs"].items():
        heads, hidden = arch["num_attention_heads"], arch["hidden_size"]
        if hidden % heads or (hidden // heads) % 2:
            problems.append(
                f"config key 'exp3.archs.{name}': hidden_size {hidden} must be a multiple of "
                f"num_attention_heads {heads} with an even head size (rotary embeddings)"
            )
    world = section["world"]
    if world["n_cities"] < world["n_continents"]:
        problems.append(
            "config key 'exp3.world.n_cities': fewer cities than n_continents "
            f"({world['n_cities']} < {world['n_continents']})"
        )
    total = world["n_cities"] + world["n_atlantis"]
    if world["city_names"] == "letters" and total > len(CITY_LETTERS):
        problems.append(
            f"config key 'exp3.world.city_names': 'letters' names at most {len(CITY_LETTERS)} "
            f"cities, and n_cities + n_atlantis is {total}: use 'ids' for a world this large"
        )
    return problems
