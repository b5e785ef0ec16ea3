"""A user's own MTL domains (Parquet or JSONL files of {prompt, answer, domain}): validated
with every problem named by file and line or row, before any job starts; then trained and
evaluated like the generated domains (tests/data/mtl is the example)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from ftdag.mtl.user_data import DataError, hold_out, load_files, user_splits
from workflow_helpers import REPO, run_snakemake, write_config

EXAMPLE = REPO / "tests" / "data" / "mtl"
FILES = {"train": [str(EXAMPLE / "train.jsonl")], "test": [str(EXAMPLE / "test.parquet")]}


def write_jsonl(path, rows) -> str:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return str(path)


def test_the_example_splits_into_trained_and_held_out_tasks():
    splits = user_splits(FILES, validation_per_task=4, seed=0, tiny=True)
    assert {r["domain"] for r in splits["train"]} == {"arith", "words"}
    held = pd.DataFrame(splits["validation"]).groupby("task").size().to_dict()
    assert held == {"add": 4, "reverse": 4}
    assert len(splits["train"]) == 80 - 8
    trained = {r["task"]: r["trained"] for r in splits["test"]}
    assert trained == {"add": True, "add_long": False, "reverse": True}  # add_long: never trained
    train_prompts = {r["prompt"] for r in splits["train"]}
    assert not train_prompts & {r["prompt"] for r in splits["validation"]}


def test_every_problem_of_a_jsonl_file_is_named_with_its_line(tmp_path):
    path = write_jsonl(
        tmp_path / "bad.jsonl",
        [
            {"prompt": "1+1=", "answer": "2", "domain": "math"},
            {"prompt": "2+2=", "domain": "math"},
            "{not json",
            {"prompt": "", "answer": "3", "domain": "math"},
            {"prompt": "3+3=", "answer": 6.0, "domain": "math"},
            {"prompt": "4+4=", "answer": 8, "domain": "math two"},
            {"prompt": "café?", "answer": "yes", "domain": "words"},
        ],
    )
    with pytest.raises(DataError) as error:
        load_files([path], tiny=True)
    text = str(error.value)
    assert f"{path}, line 2: missing 'answer'" in text
    assert f"{path}, line 3: not JSON" in text
    assert f"{path}, line 4: 'prompt' must be a non-empty string" in text
    assert f"{path}, line 5: 'answer' must be a non-empty string, not 6.0" in text
    assert f"{path}, line 6: 'domain' 'math two' must be letters" in text
    assert f"{path}, line 7: characters ['é']" in text
    assert "line 1:" not in text
    # A hub model's tokenizer reads any character, and an integer answer is its digits.
    good = write_jsonl(
        tmp_path / "good.jsonl",
        [
            {"prompt": "café?", "answer": "yes", "domain": "words"},
            {"prompt": "4+4=", "answer": 8, "domain": "m"},
        ],
    )
    records = load_files([good], tiny=False)
    assert records[1] == {"prompt": "4+4=", "answer": "8", "domain": "m", "task": "m"}


def test_parquet_problems_name_the_row(tmp_path):
    path = tmp_path / "math__math_500.parquet"
    pd.DataFrame({"prompt": ["1+1=", "2+2="], "domain": ["math", "math"]}).to_parquet(path)
    with pytest.raises(DataError, match=r"math__math_500.parquet, row 2: missing 'answer'"):
        load_files([str(path)], tiny=True)
    with pytest.raises(DataError, match="nowhere.jsonl: no such file"):
        load_files([str(tmp_path / "nowhere.jsonl")], tiny=True)
    with pytest.raises(DataError, match="expected a .jsonl or .parquet file"):
        load_files([write_jsonl(tmp_path / "data.csv", ["prompt,answer"])], tiny=True)


def test_a_test_prompt_seen_in_training_stops_the_split(tmp_path):
    train = write_jsonl(
        tmp_path / "train.jsonl",
        [{"prompt": f"{k}?", "answer": "a", "domain": "d"} for k in range(6)],
    )
    test = write_jsonl(tmp_path / "test.jsonl", [{"prompt": "3?", "answer": "a", "domain": "d"}])
    with pytest.raises(
        DataError, match="1 test prompts are also training or validation prompts, e.g. '3\\?'"
    ):
        user_splits({"train": [train], "test": [test]}, 2, 0, True)


def test_holding_out_needs_more_records_than_it_takes():
    records = [{"prompt": f"{k}", "answer": "x", "domain": "d", "task": "t"} for k in range(3)]
    kept, held = hold_out(records, 2, seed=0)
    assert len(kept) == 1 and len(held) == 2
    with pytest.raises(
        DataError, match="task .t. has 3 distinct training prompts.*validation_per_task = 3"
    ):
        hold_out(records, 3, seed=0)


def user_config(tmp_path, files) -> str:
    smoke = (REPO / "tests" / "smoke_config.yaml").read_text()
    import yaml

    config = yaml.safe_load(smoke)
    config["mtl"]["data"] = {**config["mtl"]["data"], "files": files, "validation_per_task": 4}
    return str(write_config(tmp_path / "config.yaml", config))


def test_a_bad_file_stops_the_workflow_before_any_job(tmp_path):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "1+1=", "answer": "2"}])
    config = user_config(tmp_path, {"train": [bad], "test": FILES["test"]})
    result = run_snakemake(tmp_path, "-n", "results/mtl/report.md", configfile=config, check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "mtl.data.files" in output and f"{bad}, line 1: missing 'domain'" in output
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_the_users_domains_are_trained_and_compared(tmp_path):
    config = user_config(tmp_path, FILES)
    run_snakemake(tmp_path, "--cores", "2", "results/mtl/report.md", configfile=config)
    comparison = pd.read_csv(tmp_path / "results/mtl/comparison.csv")
    assert set(comparison.loc[comparison["level"] == "domain", "name"]) == {"arith", "words"}
    tasks = comparison[comparison["level"] == "task"].set_index("name")
    assert tasks.loc[["add", "add_long", "reverse"], "n"].tolist() == [10, 10, 10]
    evolution = pd.read_csv(tmp_path / "results/mtl/evolution.csv")
    trained = evolution.groupby("task")["trained"].first().to_dict()
    assert trained == {"add": True, "add_long": False, "reverse": True}
    stats = json.loads(
        (tmp_path / "results/mtl/pcgrad/seed0/training/train_stats.json").read_text()
    )
    assert stats["domains"] == ["arith", "words"]  # one gradient per user domain


def test_the_mtl_sections_cross_key_problems_name_their_keys(tmp_path):
    from ftdag.core.config import ConfigError, validate_config
    from ftdag.mtl import config_checks

    config = {
        "mtl": {
            "objective": "grpo",  # from the tiny model, which answers nothing yet
            "model": {"base": str(tmp_path / "no_such_model")},
            "schedule": {"max_epochs": 4, "early_stopping": {"min_epochs": 6}},
            "data": {"files": {"train": [str(tmp_path / "none.jsonl")], "test": FILES["test"]}},
        }
    }
    with pytest.raises(ConfigError) as error:
        validate_config(config, {"mtl": config_checks.problems})
    text = str(error.value)
    assert f"'mtl.model.base': no folder {tmp_path / 'no_such_model'}" in text
    assert "'mtl.schedule.early_stopping.min_epochs': 6 is more than" in text
    assert f"'mtl.data.files': invalid MTL data:\n  {tmp_path / 'none.jsonl'}: no such file" in text
    config["mtl"]["model"]["base"] = "tiny"
    with pytest.raises(ConfigError, match="'mtl.objective': grpo learns from rewards"):
        validate_config(config, {"mtl": config_checks.problems})
