"""Config validation: JSON schema with defaults, then checks the schema cannot express.

Every problem is reported at once, each naming the key and what was expected, before any job
starts.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator, validators

from ftdag.tasks import PAIRS
from ftdag.world import CITY_LETTERS

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    pass


def _with_defaults(validator_class):
    """A validator that fills in each property's `default` before validating it."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def fill_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": fill_defaults})


def _key(path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _describe(error) -> str:
    key = _key(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return f"config key '{key}': unknown key(s) {', '.join(map(repr, unknown))}{hint}"
    if error.validator == "enum":
        return f"config key '{key}': {error.instance!r} is not one of {error.validator_value}"
    expected = error.schema.get("description")
    message = f"config key '{key}': {error.message}"
    return message + (f" ({expected})" if expected else "")


def load_schema(path=SCHEMA_PATH) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def validate_config(config: dict, schema_path=SCHEMA_PATH) -> dict:
    """Fill defaults into `config` in place and check it; raise ConfigError listing every
    problem."""
    schema = load_schema(schema_path)
    validator = _with_defaults(Draft202012Validator)(schema)
    problems = [_describe(e) for e in sorted(validator.iter_errors(config), key=lambda e: e.path)]
    problems += _semantic_problems(config)
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return config


def _semantic_problems(config: dict) -> list[str]:
    """Checks across keys; best effort, since the schema may have found the structure broken
    (those problems are reported already)."""
    try:
        return _cross_key_problems(config)
    except (KeyError, TypeError, AttributeError, ZeroDivisionError):
        return []


def _cross_key_problems(config: dict) -> list[str]:
    problems = []
    exp3 = config["exp3"]
    for arch in exp3["run_archs"]:
        if arch not in exp3["archs"]:
            problems.append(
                f"config key 'exp3.run_archs': {arch!r} is not an arch of exp3.archs "
                f"({', '.join(exp3['archs'])})"
            )
    for pair in exp3["ftwb2_pairs"]:
        missing = [t for t in PAIRS[pair] if t not in exp3["ftwb1_tasks"]]
        if missing:
            problems.append(
                f"config key 'exp3.ftwb2_pairs': pair {pair} ({'+'.join(PAIRS[pair])}) is "
                f"compared with the FTWB1 specialists of its tasks, but exp3.ftwb1_tasks lacks "
                f"{', '.join(missing)}"
            )
    for name, arch in exp3["archs"].items():
        heads, hidden = arch["num_attention_heads"], arch["hidden_size"]
        if hidden % heads or (hidden // heads) % 2:
            problems.append(
                f"config key 'exp3.archs.{name}': hidden_size {hidden} must be a multiple of "
                f"num_attention_heads {heads} with an even head size (rotary embeddings)"
            )
    world = exp3["world"]
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
