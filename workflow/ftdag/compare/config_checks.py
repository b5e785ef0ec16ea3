"""The compare family's checks across config keys, of the user's data file and of the API key:
all before any job starts, each naming its key (or the file's entry)."""

from __future__ import annotations

import os
from pathlib import Path

TINY = "tiny"  # a local model fine-tuned here from the tiny base
GENERATED = "generated"


def problems(section: dict) -> list[str]:
    """`section`: the `compare` config section, defaults filled."""
    from ftdag.compare.data import DataError, load_user_scores

    problems = []
    names = [m["name"] for m in section["models"]]
    if len(set(names)) < len(names):
        problems.append(f"config key 'compare.models': model names repeat: {names}")
    for k, spec in enumerate(section["models"]):
        model = spec["model"]
        if spec["kind"] == "local" and model != TINY and not Path(model).is_dir():
            problems.append(
                f"config key 'compare.models[{k}].model': no model folder {model} (or 'tiny': "
                "fine-tuned here)"
            )
    if section["resolution"] % 28:
        problems.append(
            f"config key 'compare.resolution': {section['resolution']} is not a multiple of 28 "
            "(the tiny model's 14-pixel patches, merged 2 x 2)"
        )
    api = section["api"]
    uses_api = any(m["kind"] != "local" for m in section["models"])
    if uses_api and api["base_url"] != "local" and not os.environ.get(api["api_key_env"]):
        problems.append(
            f"config key 'compare.api.api_key_env': the endpoint {api['base_url']} needs a key "
            f"in the environment variable {api['api_key_env']}, which is not set"
        )
    source = section["data"]["source"]
    if source != GENERATED:
        try:
            load_user_scores(source)
        except DataError as error:
            problems.append(f"config key 'compare.data.source': {error}")
    return problems
