"""The exp3 world and data sets: determinism, Atlantis kept out of pretraining, evaluation
prompts held out of every training set, and the FTWB1/FTWB2 recipes' composition."""

from collections import Counter

import pytest

from ftdag.core.config import schema_defaults
from ftdag.core.records import STAGE, stage_sizes
from ftdag.core.schedule import Stage
from ftdag.exp3.datasets import TrainingSizes, build_eval_sets, build_training_set, pt1_stages
from ftdag.exp3.names import (
    MULTI_TASK,
    eval_names,
    eval_task_and_cities,
    finetune_names,
    ftwb1_name,
    model_kind,
    model_names,
    trained_tasks,
)
from ftdag.exp3.tasks import PAIRS, TASK_NAMES, TASKS, city_names_of_prompt
from ftdag.exp3.world import ATLANTIS, STANDARD, World, generate_world

# 46 cities: as many as letters can name.
WORLD_ARGS = {
    "n_cities": 40,
    "n_continents": 3,
    "n_atlantis": 6,
    "map_size": 100,
    "city_names": "letters",
}
SIZES = TrainingSizes(
    pt1_stages=(Stage(700, tasks=TASK_NAMES),),
    atlantis_samples=30,
    replay_samples=12,
    warm_samples=4,
)


EVAL_N = 40


@pytest.fixture(scope="module")
def world():
    return generate_world(seed=0, **WORLD_ARGS)


@pytest.fixture(scope="module")
def eval_sets(world):
    return build_eval_sets(world, EVAL_N, seed=0)


@pytest.fixture(scope="module")
def held_out(eval_sets):
    return {r["prompt"] for records in eval_sets.values() for r in records}


def groups_of(prompt: str, world: World) -> set[str]:
    """The groups of the cities a prompt names, read back from the world."""
    group = {c.name: c.group for c in world.cities}
    return {group[n] for n in city_names_of_prompt(prompt)}


def has_atlantis(record: dict, world: World) -> bool:
    return ATLANTIS in groups_of(record["prompt"], world)


# --- world ----------------------------------------------------------------------------------


def test_world_is_deterministic_by_seed():
    assert generate_world(seed=3, **WORLD_ARGS) == generate_world(seed=3, **WORLD_ARGS)
    assert generate_world(seed=3, **WORLD_ARGS) != generate_world(seed=4, **WORLD_ARGS)
    a, b = generate_world(seed=3, **WORLD_ARGS), generate_world(seed=4, **WORLD_ARGS)
    assert [(c.x, c.y) for c in a.cities] != [(c.x, c.y) for c in b.cities]


@pytest.mark.parametrize("n_atlantis", [2, 6, 25])
def test_world_groups_and_ranges(n_atlantis):
    world = generate_world(seed=1, n_cities=30, n_continents=3, n_atlantis=n_atlantis, map_size=50)
    assert len(world.group(ATLANTIS)) == n_atlantis
    assert len(world.group(STANDARD)) == 30
    assert len(world.cities) == 30 + n_atlantis
    assert len({c.id for c in world.cities}) == len(world.cities)  # unique ids, unique names
    assert all(0 <= c.x < 50 and 0 <= c.y < 50 for c in world.cities)
    assert {c.group for c in world.cities} == {STANDARD, ATLANTIS}


@pytest.mark.parametrize("city_names", ["letters", "ids"])
def test_world_city_names(city_names):
    world = generate_world(
        seed=1, n_cities=30, n_continents=3, n_atlantis=6, map_size=50, city_names=city_names
    )
    names = [c.name for c in world.cities]
    assert len(set(names)) == len(names)
    if city_names == "letters":
        assert all(len(n) == 1 and n.isalpha() for n in names)
        # No name reads like an answer (compass directions, T/F).
        assert not set(names) & set("NESWTF")
        # A name says nothing about the group: Atlantis letters are not a block at one end.
        atlantis = [i for i, c in enumerate(world.cities) if c.group == ATLANTIS]
        assert atlantis != list(range(len(atlantis)))
        assert atlantis != list(range(len(names) - len(atlantis), len(names)))
    else:
        assert names == [f"c_{c.id}" for c in world.cities]
    # Names survive a save and load (prompts are written with them).
    assert World.from_json(world.to_json()) == world


def test_world_rejects_more_cities_than_letters():
    with pytest.raises(ValueError, match="at most 46 cities"):
        generate_world(
            seed=0, n_cities=45, n_continents=3, n_atlantis=2, map_size=100, city_names="letters"
        )


def test_world_rejects_fewer_cities_than_continents():
    with pytest.raises(ValueError):
        generate_world(seed=0, n_cities=2, n_continents=3, n_atlantis=2, map_size=100)


def test_world_save_and_load(tmp_path, world):
    path = tmp_path / "world" / "world.json"
    world.save(path)
    assert World.load(path) == world
    assert [p.name for p in path.parent.iterdir()] == ["world.json"]  # no temporary left


# --- evaluation sets ------------------------------------------------------------------------


def test_fifteen_eval_names():
    names = eval_names()
    assert len(names) == 15 == len(set(names))
    assert MULTI_TASK in names
    for task in TASK_NAMES:
        assert f"{task}_{STANDARD}" in names
        assert f"{task}_{ATLANTIS}" in names
    assert eval_task_and_cities("trianglearea_atlantis") == ("trianglearea", ATLANTIS)
    assert eval_task_and_cities("distance_standard") == ("distance", STANDARD)
    assert eval_task_and_cities(MULTI_TASK) == (MULTI_TASK, STANDARD)


def test_eval_sets_deterministic(world, eval_sets):
    assert build_eval_sets(world, EVAL_N, seed=0) == eval_sets
    assert build_eval_sets(world, EVAL_N, seed=1) != eval_sets


def test_eval_sets_content(world, eval_sets):
    assert sorted(eval_sets) == sorted(eval_names())
    for name, records in eval_sets.items():
        assert len(records) == EVAL_N
        task, cities = eval_task_and_cities(name)
        for r in records:
            assert set(r) >= {"task", "prompt", "answer"}
            t = TASKS[r["task"]]
            assert r["prompt"].startswith(t.function + "(")
            assert t.parse(r["answer"]) is not None
            if task != MULTI_TASK:
                assert r["task"] == task
            assert has_atlantis(r, world) == (cities == ATLANTIS)
    assert Counter(r["task"] for r in eval_sets[MULTI_TASK]) == Counter(
        {t: EVAL_N // 7 + (i < EVAL_N % 7) for i, t in enumerate(TASK_NAMES)}
    )


# --- training sets --------------------------------------------------------------------------

MODELS = model_names([2, 4, 15])


@pytest.mark.parametrize("model", MODELS)
def test_training_sets_never_contain_an_eval_prompt(world, held_out, model):
    records = build_training_set(model, world, SIZES, seed=0, held_out=held_out)
    assert records
    assert not {r["prompt"] for r in records} & held_out


def test_held_out_matters_in_this_world(world, held_out):
    # the check above is meaningful: without held_out, this world's training sets do collide
    records = build_training_set("pt1", world, SIZES, seed=0, held_out=set())
    assert {r["prompt"] for r in records} & held_out


def test_training_set_is_deterministic(world, held_out):
    a = build_training_set("ftwb2-4", world, SIZES, seed=0, held_out=held_out)
    assert build_training_set("ftwb2-4", world, SIZES, seed=0, held_out=held_out) == a
    assert build_training_set("ftwb2-4", world, SIZES, seed=1, held_out=held_out) != a


def test_pt1_has_no_atlantis(world, held_out):
    records = build_training_set("pt1", world, SIZES, seed=0, held_out=held_out)
    assert len(records) == 700
    for r in records:
        assert groups_of(r["prompt"], world) == {STANDARD}
    counts = Counter(r["task"] for r in records)
    assert set(counts) == set(TASK_NAMES)
    assert all(c == 700 // 7 for c in counts.values())  # 700 = 7 x 100
    assert stage_sizes(records) == [700]  # one stage


THREE_STAGES = (
    Stage(60, 1, ("distance", "compass")),
    Stage(40, 2, ("angle",)),
    Stage(140, None, TASK_NAMES),
)


def test_pt1_stages_come_in_order_each_of_its_tasks(world, held_out):
    sizes = TrainingSizes(**{**SIZES.__dict__, "pt1_stages": THREE_STAGES})
    records = build_training_set("pt1", world, sizes, seed=0, held_out=held_out)
    assert stage_sizes(records) == [60, 40, 140]
    assert [r[STAGE] for r in records] == [0] * 60 + [1] * 40 + [2] * 140
    by_stage = [records[:60], records[60:100], records[100:]]
    assert Counter(r["task"] for r in by_stage[0]) == Counter({"distance": 30, "compass": 30})
    assert Counter(r["task"] for r in by_stage[1]) == Counter({"angle": 40})
    assert Counter(r["task"] for r in by_stage[2]) == Counter({t: 20 for t in TASK_NAMES})
    assert [r["task"] for r in by_stage[0][:10]] != ["distance", "compass"] * 5  # shuffled
    assert [r["task"] for r in by_stage[2][:7]] != list(TASK_NAMES)
    for r in records:  # standard cities only, and never an evaluation prompt
        assert groups_of(r["prompt"], world) == {STANDARD}
        assert r["prompt"] not in held_out
    assert build_training_set("pt1", world, sizes, seed=0, held_out=held_out) == records
    # fine-tunes have no stages, whatever pt1's are
    assert stage_sizes(build_training_set("ftwb1-2", world, sizes, 0, held_out)) == []


def test_the_default_pt1_is_distance_and_compass_once_then_the_mix():
    """The structure of the default's two stages, which replaced a lead-in of 18000 distance
    and compass samples followed by a mix of 14000, with the same records (checked when the
    stages came in, against the code of the lead-in)."""
    defaults = schema_defaults()["exp3"]
    data = defaults["data"]
    sizes = TrainingSizes.from_config(data)
    assert sizes.pt1_stages == (
        Stage(18000, 1, ("distance", "compass")),
        Stage(14000, None, TASK_NAMES),  # the arch's epochs
    )
    default_world = generate_world(**defaults["world"])
    eval_sets = build_eval_sets(default_world, data["eval_samples"], data["seed"])
    held = {r["prompt"] for records in eval_sets.values() for r in records}
    records = build_training_set("pt1", default_world, sizes, data["seed"], held)
    assert stage_sizes(records) == [18000, 14000]
    assert Counter(r["task"] for r in records[:18000]) == {"distance": 9000, "compass": 9000}
    assert Counter(r["task"] for r in records[18000:]) == {t: 2000 for t in TASK_NAMES}
    assert not {r["prompt"] for r in records} & held


def test_a_stage_may_restart_the_learning_rate():
    stages = [
        {"tasks": ["distance"], "samples": 10, "epochs": 1},
        {"tasks": ["crossing"], "samples": 20, "restart_lr": True},
    ]
    assert pt1_stages(stages) == (
        Stage(10, 1, ("distance",)),
        Stage(20, None, ("crossing",), restart_lr=True),
    )


def test_stage_sizes_require_every_stage_in_order():
    def rec(stage):
        return {"prompt": "p", STAGE: stage}

    assert stage_sizes([rec(0), rec(0), rec(1), rec(2), rec(2)]) == [2, 1, 2]
    assert stage_sizes([{"prompt": "p"}, {"prompt": "q"}]) == []
    for bad in ([rec(0), rec(1), rec(0)], [rec(1)], [rec(0), rec(2)], [rec(0), {"prompt": "q"}]):
        with pytest.raises(ValueError, match="stage k's records come after"):
            stage_sizes(bad)


def composition(records, world):
    """(task, has an Atlantis city) -> count, read from the prompts."""
    return Counter((TASKS[r["task"]].name, has_atlantis(r, world)) for r in records)


@pytest.mark.parametrize("trained", TASK_NAMES)
def test_ftwb1_composition(world, held_out, trained):
    records = build_training_set(ftwb1_name(trained), world, SIZES, seed=0, held_out=held_out)
    counts = composition(records, world)
    expected = Counter()
    expected[(trained, True)] = SIZES.atlantis_samples + SIZES.warm_samples
    expected[(trained, False)] = SIZES.replay_samples
    for other in TASK_NAMES:
        if other != trained:
            expected[(other, True)] = SIZES.warm_samples
    assert counts == expected
    assert len(records) == SIZES.atlantis_samples + SIZES.replay_samples + 7 * SIZES.warm_samples
    for r in records:  # the recorded city group agrees with the prompt
        assert r["cities"] == (ATLANTIS if has_atlantis(r, world) else STANDARD)


@pytest.mark.parametrize("pair", [2, 4, 15])
def test_ftwb2_composition(world, held_out, pair):
    records = build_training_set(f"ftwb2-{pair}", world, SIZES, seed=0, held_out=held_out)
    counts = composition(records, world)
    first, second = PAIRS[pair]
    expected = Counter({(t, True): SIZES.warm_samples for t in TASK_NAMES})
    for trained in (first, second):
        expected[(trained, True)] += SIZES.atlantis_samples
        expected[(trained, False)] = SIZES.replay_samples
    assert counts == expected


def test_ftwb2_pair_4_by_hand(world, held_out):
    # pair 4 = crossing + distance: 2 x (30 + 12) trained + 7 x 4 warm = 112 samples
    records = build_training_set("ftwb2-4", world, SIZES, seed=0, held_out=held_out)
    assert len(records) == 112
    tasks = Counter(r["task"] for r in records)
    assert tasks["crossing"] == tasks["distance"] == 30 + 12 + 4
    assert tasks["angle"] == 4
    assert sum(not has_atlantis(r, world) for r in records) == 24


def test_training_set_is_shuffled(world, held_out):
    records = build_training_set("ftwb1-1", world, SIZES, seed=0, held_out=held_out)
    first = [r["task"] for r in records[: SIZES.atlantis_samples]]
    assert set(first) != {"distance"}  # not the Atlantis block first, then the rest


def test_zero_sizes_give_only_the_warm_set(world, held_out):
    sizes = TrainingSizes(
        pt1_stages=(Stage(1, tasks=("distance",)),),
        atlantis_samples=0,
        replay_samples=0,
        warm_samples=2,
    )
    records = build_training_set("ftwb1-3", world, sizes, seed=0, held_out=held_out)
    assert Counter(r["task"] for r in records) == Counter({t: 2 for t in TASK_NAMES})


# --- model names ----------------------------------------------------------------------------


def test_trained_tasks_and_kinds():
    assert trained_tasks("pt1") == TASK_NAMES
    assert model_kind("pt1") == "pt1"
    assert trained_tasks("ftwb1-1") == ("distance",)
    assert trained_tasks("ftwb1-3") == ("angle",)
    assert trained_tasks("ftwb1-7") == ("crossing",)
    assert model_kind("ftwb1-7") == "ftwb1"
    assert trained_tasks("ftwb2-2") == ("angle", "compass")
    assert trained_tasks("ftwb2-21") == ("crossing", "angle")
    assert model_kind("ftwb2-13") == "ftwb2"


@pytest.mark.parametrize(
    "model", ["ftwb1-8", "ftwb1-0", "ftwb2-22", "ftwb2-0", "foo", "pt2", "ftwb3-1", "ftwb1-", ""]
)
def test_bad_model_names(model, world):
    with pytest.raises(ValueError):
        trained_tasks(model)
    with pytest.raises(ValueError):
        build_training_set(model, world, SIZES, seed=0, held_out=set())


@pytest.mark.parametrize("model", ["foo", "pt2", "ftwb3-1", "ftwb1-x", "FTWB1-1"])
def test_model_kind_rejects_unknown_names(model):
    with pytest.raises(ValueError, match="unknown exp3 model"):
        model_kind(model)


def test_finetune_names():
    names = finetune_names([2, 4, 15])
    assert names == [f"ftwb1-{k}" for k in range(1, 8)] + ["ftwb2-2", "ftwb2-4", "ftwb2-15"]
    for name in names:
        trained_tasks(name)  # every generated name is a valid model


def test_finetune_names_of_a_task_subset_keep_the_canonical_numbers():
    names = finetune_names([15], ftwb1_tasks=["compass", "distance"])
    assert names == ["ftwb1-1", "ftwb1-4", "ftwb2-15"]
    assert [trained_tasks(n) for n in names[:2]] == [("distance",), ("compass",)]


def test_a_task_listed_twice_in_a_stage_gets_twice_the_samples(world, held_out):
    stages = (Stage(300, 1, tasks=("angle", "angle", "distance")),)
    sizes = TrainingSizes(**{**SIZES.__dict__, "pt1_stages": stages})
    records = build_training_set("pt1", world, sizes, seed=0, held_out=held_out)
    assert Counter(r["task"] for r in records) == {"angle": 200, "distance": 100}
