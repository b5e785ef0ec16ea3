"""Config validation: the shipped config passes with defaults filled in; every mistake is an
error that names its key, and several mistakes are reported together."""

import copy
from pathlib import Path

import pytest
import yaml

from ftdag.core import config as core_config
from ftdag.core.config import ConfigError
from ftdag.exp3 import config_checks


def validate_config(config: dict) -> dict:
    return core_config.validate_config(config, {"exp3": config_checks.problems})


CONFIG = Path(__file__).resolve().parent.parent / "config" / "config.yaml"


@pytest.fixture
def config():
    with open(CONFIG) as f:
        return yaml.safe_load(f)


def error_of(config) -> str:
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    return str(info.value)


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


def test_repo_config_validates_and_gets_defaults(config):
    assert "eval" not in config["exp3"] and "runtime" not in config  # left to the defaults
    original = copy.deepcopy(config)
    result = validate_config(config)
    assert result is config  # filled in place
    exp3 = config["exp3"]
    # values given in the file are kept
    assert exp3["ftwb2_pairs"] == original["exp3"]["ftwb2_pairs"]
    assert exp3["finetune"]["lr"] == original["exp3"]["finetune"]["lr"]
    assert exp3["archs"]["narrow"]["hidden_size"] == 64
    # keys left out get their defaults
    assert exp3["eval"]["batch_size"] == 256
    assert config["runtime"]["device"] == "auto"
    assert exp3["pretrain"]["weight_decay"] == 0.01
    assert exp3["pretrain"]["warmup_fraction"] == 0.05
    assert exp3["finetune"]["grad_clip"] == 1.0
    assert exp3["finetune"]["lora"] is None
    assert exp3["pretrain"]["seed"] == 0


def test_empty_config_gets_the_embedded_defaults():
    """The schema's defaults are the embedded default: an empty config plans the same campaign
    as config/config.yaml (which spells its values out for readers)."""
    defaults = validate_config({})["exp3"]
    shipped = validate_config(yaml.safe_load(CONFIG.read_text()))["exp3"]
    for key in ("run_archs", "ftwb2_pairs", "world", "data", "eval"):
        assert defaults[key] == shipped[key], key
    assert defaults["archs"]["wide"] == shipped["archs"]["wide"]
    assert defaults["finetune"]["lora"] is None


def test_defaults_do_not_leak_between_configs():
    a = validate_config({})
    a["exp3"]["run_archs"].append("narrow")
    a["exp3"]["archs"]["wide"]["hidden_size"] = 8
    b = validate_config({})
    assert b["exp3"]["run_archs"] == ["wide"]
    assert b["exp3"]["archs"]["wide"]["hidden_size"] == 256


def test_lora_gets_its_defaults():
    config = validate_config({"exp3": {"finetune": {"lora": {"r": 8}}}})
    lora = config["exp3"]["finetune"]["lora"]
    assert lora["r"] == 8
    assert lora["alpha"] == 16
    assert lora["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj"]


def _set(config, dotted, value):
    *parents, last = dotted.split(".")
    node = config
    for key in parents:
        node = node[key]
    node[last] = value


def _rename(config, dotted, new_name):
    *parents, last = dotted.split(".")
    node = config
    for key in parents:
        node = node[key]
    node[new_name] = node.pop(last)


@pytest.mark.parametrize(
    ("dotted", "value", "names"),
    [
        ("exp3.ftwb2_pairs", [2, 22], ["exp3.ftwb2_pairs"]),
        ("exp3.ftwb2_pairs", [0, 4], ["exp3.ftwb2_pairs"]),
        ("exp3.ftwb2_pairs", [4, 4], ["exp3.ftwb2_pairs"]),
        ("exp3.ftwb2_pairs", [], ["exp3.ftwb2_pairs"]),
        ("exp3.ftwb2_pairs", "2,4", ["exp3.ftwb2_pairs"]),
        ("exp3.data.eval_samples", 0, ["exp3.data.eval_samples"]),
        ("exp3.world.seed", "zero", ["exp3.world.seed"]),
        ("exp3.world.n_cities", 12.5, ["exp3.world.n_cities"]),
        ("exp3.pretrain.lr", 0, ["exp3.pretrain.lr"]),
        ("exp3.finetune.batch_size", "32", ["exp3.finetune.batch_size"]),
        ("exp3.finetune.lora", {"alpha": 16}, ["exp3.finetune.lora"]),
        ("runtime", {"device": "tpu"}, ["runtime.device", "tpu"]),
        ("exp3.run_archs", ["huge"], ["exp3.run_archs", "huge"]),
        ("exp3.run_archs", ["wide", "narow"], ["exp3.run_archs", "narow"]),
        ("exp3.archs.wide.hidden_size", 250, ["exp3.archs.wide", "250"]),  # 250 % 8 != 0
        ("exp3.archs.narrow.num_attention_heads", 3, ["exp3.archs.narrow"]),  # 64 % 3 != 0
        ("exp3.archs.wide.hidden_size", 24, ["exp3.archs.wide"]),  # head size 3: odd
        ("exp3.archs", {}, ["exp3.archs"]),
        ("exp3.archs.wide.lr", 0, ["exp3.archs.wide.lr", "0"]),
        ("exp3.archs.wide.lr", "small", ["exp3.archs.wide.lr", "'small'"]),
        (
            "exp3.archs.bad_name",
            dict(
                hidden_size=8,
                intermediate_size=8,
                num_attention_heads=2,
                num_hidden_layers=1,
                epochs=1,
            ),
            ["exp3.archs", "bad_name"],
        ),
        ("exp3.world.n_continents", 70, ["exp3.world.n_cities"]),
        ("exp3.world.city_names", "numbers", ["exp3.world.city_names", "letters", "ids"]),
        ("exp3.world.n_cities", 200, ["exp3.world.city_names", "at most 46", "'ids'"]),
    ],
)
def test_bad_value_names_its_key(config, dotted, value, names):
    _set(config, dotted, value)
    message = error_of(config)
    for name in names:
        assert name in message


MIX = ["distance", "trianglearea", "angle", "compass", "inside", "perimeter", "crossing"]


@pytest.mark.parametrize(
    ("stages", "names"),
    [
        ([], ["'exp3.data.pt1_stages'", "non-empty"]),
        ("mix", ["'exp3.data.pt1_stages'"]),
        (
            [{"tasks": MIX, "samples": 10}, {"tasks": ["dist"], "samples": 5}],
            [
                "'exp3.data.pt1_stages[1].tasks[0]'",
                "'dist'",
            ],
        ),
        ([{"tasks": [], "samples": 10}], ["'exp3.data.pt1_stages[0].tasks'"]),
        ([{"tasks": MIX, "samples": 0}], ["'exp3.data.pt1_stages[0].samples'"]),
        ([{"tasks": MIX, "samples": 9, "epochs": 0}], ["'exp3.data.pt1_stages[0].epochs'"]),
        ([{"tasks": MIX, "samples": 9, "epochs": 1.5}], ["'exp3.data.pt1_stages[0].epochs'"]),
        (
            [{"tasks": MIX, "samples": 9, "restart_lr": "yes"}],
            ["'exp3.data.pt1_stages[0].restart_lr'", "'yes'", "boolean"],
        ),
        (
            [{"tasks": MIX, "samples": 9}, {"tasks": MIX}],
            [
                "'exp3.data.pt1_stages[1]'",
                "'samples' is a required property",
            ],
        ),
        (
            [{"tasks": MIX, "samples": 9, "epoch": 2}],
            [
                "'exp3.data.pt1_stages[0]'",
                "'epoch'",
                "allowed: epochs, restart_lr, samples, tasks",
            ],
        ),
    ],
)
def test_a_bad_pt1_stage_names_its_key(config, stages, names):
    config["exp3"]["data"]["pt1_stages"] = stages
    message = error_of(config)
    for name in names:
        assert name in message


def test_pt1_stages_keep_a_missing_epochs_missing(config):
    """A stage without epochs takes its arch's: the schema must not fill one in."""
    config["exp3"]["data"]["pt1_stages"] = [{"tasks": MIX, "samples": 9}]
    assert validate_config(config)["exp3"]["data"]["pt1_stages"] == [{"tasks": MIX, "samples": 9}]


@pytest.mark.parametrize(
    ("dotted", "typo", "names"),
    [
        ("exp3.world", "worlds", ["exp3", "worlds"]),
        ("exp3.archs.wide.hidden_size", "hidden", ["exp3.archs.wide", "hidden"]),
        ("exp3.data.pt1_stages", "pt1_stage", ["exp3.data", "pt1_stage"]),
        ("exp3.finetune.lr", "learning_rate", ["exp3.finetune", "learning_rate"]),
        ("exp3", "exp_3", ["exp_3"]),
    ],
)
def test_unknown_key_is_an_error_never_a_silent_default(config, dotted, typo, names):
    _rename(config, dotted, typo)
    message = error_of(config)
    for name in names:
        assert name in message


def test_unknown_key_message_lists_the_allowed_keys(config):
    config["exp3"]["worlds"] = config["exp3"].pop("world")
    message = error_of(config)
    assert "'worlds'" in message
    assert "world" in message.replace("'worlds'", "")  # the right spelling is suggested


def test_several_problems_reported_at_once(config):
    config["exp3"]["data"]["pt1_stages"][1]["samples"] = -5
    config["exp3"]["world"]["seed"] = "zero"
    config["exp3"]["ftwb2_pairs"] = [22]
    config["exp3"]["archs"]["wide"]["hidden"] = config["exp3"]["archs"]["wide"].pop("hidden_size")
    message = error_of(config)
    for key in ("exp3.data.pt1_stages[1].samples", "exp3.world.seed", "exp3.ftwb2_pairs", "hidden"):
        assert key in message
    assert len([line for line in message.splitlines() if "config key" in line]) >= 4


def test_several_cross_key_problems_reported_at_once(config):
    config["exp3"]["run_archs"] = ["wide", "huge"]
    config["exp3"]["archs"]["narrow"]["hidden_size"] = 66  # 66 % 2 == 0 but head size 33 odd
    config["exp3"]["archs"]["wider"]["num_attention_heads"] = 7
    message = error_of(config)
    for key in ("huge", "exp3.archs.narrow", "exp3.archs.wider"):
        assert key in message


def test_unknown_ftwb1_task_is_named(config):
    config["exp3"]["ftwb1_tasks"] = ["distance", "teleport"]
    message = error_of(config)
    assert "exp3.ftwb1_tasks[1]" in message and "'teleport'" in message


def test_pair_needs_the_specialists_of_its_tasks(config):
    config["exp3"]["ftwb1_tasks"] = ["distance", "trianglearea", "angle"]
    config["exp3"]["ftwb2_pairs"] = [1, 2]  # 1 = distance+trianglearea, 2 = angle+compass
    message = error_of(config)
    assert "pair 2 (angle+compass)" in message and "lacks compass" in message
    assert "pair 1" not in message


def test_code_defaults_agree_with_the_schema():
    """Defaults live in the schema; where a dataclass also has one, it must be the same."""
    import dataclasses

    from ftdag.core.train import TrainConfig

    training = core_config.load_schema()["$defs"]["training"]["properties"]
    for field in dataclasses.fields(TrainConfig):
        if field.default is not dataclasses.MISSING:
            assert field.default == training[field.name]["default"], field.name
