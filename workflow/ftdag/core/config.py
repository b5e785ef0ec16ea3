"""Config validation: JSON schema with defaults, then checks the schema cannot express.

Every problem is reported at once, each naming the key and what was expected, before any job
starts. The schema (one section per family) is the one place where defaults live. Checks
across keys belong to each family (`ftdag.<family>.config_checks.problems`); the rules pass
them in, so this module imports no family.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator, validators

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"


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
    # libyaml's loader where there is one: the pure-Python one took 70 ms of every dry-run.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path) as f:
        return yaml.load(f, Loader=loader)  # noqa: S506 (a safe loader)


FamilyChecks = Mapping[str, Callable[[dict], list[str]]]


def validate_config(config: dict, checks: FamilyChecks = {}, schema_path=SCHEMA_PATH) -> dict:  # noqa: B006 (read only)
    """Fill defaults into `config` in place and check it; raise ConfigError listing every
    problem. `checks` maps a family's config section to its cross-key checks, which get that
    section (defaults filled) and return problems naming their keys."""
    schema = load_schema(schema_path)
    validator = _with_defaults(Draft202012Validator)(schema)
    problems = [_describe(e) for e in sorted(validator.iter_errors(config), key=lambda e: e.path)]
    for section, check in checks.items():
        problems += _semantic_problems(check, config.get(section))
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return config


def _semantic_problems(check, section) -> list[str]:
    """Checks across keys; best effort, since the schema may have found the structure broken
    (those problems are reported already)."""
    try:
        return check(section)
    except (KeyError, TypeError, AttributeError, ZeroDivisionError):
        return []


def schema_defaults(schema_path=SCHEMA_PATH) -> dict:
    """The configuration that an empty config file means: every default of the schema."""
    config: dict = {}
    _with_defaults(Draft202012Validator)(load_schema(schema_path)).validate(config)
    return config
