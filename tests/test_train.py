"""The training loop: it learns, and a run that is killed (SIGKILL) or preempted (SIGTERM)
resumes from its checkpoint to exactly the weights of an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from finetune_helpers import TINY_DIMS
from ftdag.core import train as core_train
from ftdag.core.batches import IGNORE, PromptAnswerData, answer_loss, collate, encode
from ftdag.core.checkpoint import Preempted
from ftdag.core.model import build_model
from ftdag.core.schedule import LEAD_IN_EPOCH, Schedule, Stage, epoch_order, lr_factor
from ftdag.core.stopping import Validation
from ftdag.core.tokenizer import build_tokenizer
from ftdag.core.train import TrainConfig


def train(
    model, tokenizer, records, config, checkpoint, run_id="", progress=True, lead_in=0, stages=()
):
    """The loop on prompt/answer records, as exp3 calls it."""
    data = PromptAnswerData(tokenizer, records, lead_in, stages)
    return core_train.train(model, data, config, checkpoint, run_id, progress=progress)


WORKFLOW = Path(__file__).resolve().parent.parent / "workflow"
TINY = {**TINY_DIMS}


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def count_forward_calls(model) -> list:
    calls = []
    model.register_forward_pre_hook(lambda *_: calls.append(1))
    return calls


def same_weights(a: dict, b: dict) -> bool:
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


# --- pieces, by hand ------------------------------------------------------------------------


def test_encode_and_collate_label_only_the_answer(tokenizer):
    records = [{"prompt": "ab=", "answer": "7"}, {"prompt": "a=", "answer": "NE"}]
    ids, answer_start = encode(tokenizer, records)
    bos, eos, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    char = tokenizer.convert_tokens_to_ids
    assert ids == [
        [bos, char("a"), char("b"), char("="), char("7"), eos],
        [bos, char("a"), char("="), char("N"), char("E"), eos],
    ]
    assert answer_start == [4, 3]
    input_ids, mask, labels = collate(ids, answer_start, pad)
    assert input_ids.tolist() == ids  # same length: no padding needed
    assert labels.tolist() == [
        [IGNORE, IGNORE, IGNORE, IGNORE, char("7"), eos],
        [IGNORE, IGNORE, IGNORE, char("N"), char("E"), eos],
    ]
    assert mask.tolist() == [[1] * 6, [1] * 6]

    input_ids, mask, labels = collate([[bos, 5, eos], [bos, 5, 6, 7, eos]], [2, 2], pad)
    assert input_ids.tolist() == [[bos, 5, eos, pad, pad], [bos, 5, 6, 7, eos]]  # right padding
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert labels.tolist() == [[IGNORE, IGNORE, eos, IGNORE, IGNORE], [IGNORE, IGNORE, 6, 7, eos]]


def test_answer_loss_weighs_every_sample_equally():
    # Two samples: one answer token that costs log(2), four tokens that cost log(4) each.
    logits = torch.zeros(2, 6, 4)
    logits[0, :, 2:] = -1e9  # two equally likely tokens left
    labels = torch.full((2, 6), IGNORE)
    labels[0, 5] = 0
    labels[1, 2:6] = 1
    expected = (torch.log(torch.tensor(2.0)) + torch.log(torch.tensor(4.0))) / 2
    assert torch.isclose(answer_loss(logits, labels), expected)
    # A token-level mean would give (log 2 + 4 log 4) / 5 instead.
    assert not torch.isclose(
        answer_loss(logits, labels),
        (torch.log(torch.tensor(2.0)) + 4 * torch.log(torch.tensor(4.0))) / 5,
    )


def test_lr_schedule_by_hand():
    # 100 steps, 10 of warm-up: 0.1, 0.2, ..., 1.0, then down linearly to 0 at step 100
    assert lr_factor(0, 100, 10) == pytest.approx(0.1)
    assert lr_factor(4, 100, 10) == pytest.approx(0.5)
    assert lr_factor(9, 100, 10) == pytest.approx(1.0)
    assert lr_factor(10, 100, 10) == pytest.approx(1.0)
    assert lr_factor(55, 100, 10) == pytest.approx(0.5)
    assert lr_factor(99, 100, 10) == pytest.approx(1 / 90)
    assert lr_factor(100, 100, 10) == 0.0


def test_epoch_order():
    a = epoch_order(0, 0, 50)
    assert sorted(a.tolist()) == list(range(50))
    assert a.tolist() == epoch_order(0, 0, 50).tolist()
    assert a.tolist() != epoch_order(0, 1, 50).tolist()  # a new order each epoch
    assert a.tolist() != epoch_order(1, 0, 50).tolist()


def test_schedule_lead_in_once_then_epochs_over_the_rest():
    # 10 samples, the first 4 a lead-in; batches of 3: 2 lead-in steps, then 2 epochs of
    # 2 steps over samples 4-9
    schedule = Schedule(n_samples=10, lead_in=4, epochs=2, batch_size=3, seed=0)
    assert (schedule.lead_in_steps, schedule.steps_per_epoch, schedule.total_steps) == (2, 2, 6)
    assert [schedule.position(s) for s in range(6)] == [
        (LEAD_IN_EPOCH, 0),
        (LEAD_IN_EPOCH, 1),
        (0, 0),
        (0, 1),
        (1, 0),
        (1, 1),
    ]
    seen = []
    for step in range(schedule.total_steps):
        epoch, position = schedule.position(step)
        seen.append(schedule.order(epoch)[position * 3 : (position + 1) * 3].tolist())
    flat = [i for batch in seen for i in batch]
    assert sorted(flat[:4]) == [0, 1, 2, 3]  # each lead-in sample once, first
    assert sorted(flat[4:10]) == sorted(flat[10:]) == list(range(4, 10))  # then whole epochs
    assert flat[4:10] != flat[10:]  # shuffled anew each epoch
    assert schedule.order(0).tolist() == Schedule(10, 4, 2, 3, 0).order(0).tolist()

    # without a lead-in: the plain epochs of epoch_order
    plain = Schedule(n_samples=10, lead_in=0, epochs=2, batch_size=3, seed=0)
    assert (plain.total_steps, plain.position(4)) == (8, (1, 0))
    assert plain.order(1).tolist() == epoch_order(0, 1, 10).tolist()


def test_a_lead_in_must_leave_samples_to_train(tokenizer, tmp_path):
    model = build_model(tokenizer, seed=0, **TINY)
    config = TrainConfig(epochs=1, batch_size=4, lr=1e-3)
    with pytest.raises(ValueError, match="lead-in of 24 leaves none of the 24"):
        train(model, tokenizer, _small_records(), config, tmp_path / "c.pt", lead_in=24)


def test_fingerprint():
    config = TrainConfig(epochs=2, batch_size=4, lr=1e-3)
    assert config.fingerprint("run") == TrainConfig(epochs=2, batch_size=4, lr=1e-3).fingerprint(
        "run"
    )
    others = [
        config.fingerprint("other run"),
        TrainConfig(epochs=3, batch_size=4, lr=1e-3).fingerprint("run"),
        TrainConfig(epochs=2, batch_size=8, lr=1e-3).fingerprint("run"),
        TrainConfig(epochs=2, batch_size=4, lr=2e-3).fingerprint("run"),
        TrainConfig(epochs=2, batch_size=4, lr=1e-3, seed=1).fingerprint("run"),
    ]
    assert config.fingerprint("run") not in others
    assert len(set(others)) == len(others)


def test_preempted_exit_code():
    error = Preempted(17)
    assert isinstance(error, SystemExit)
    assert error.code == 143 and error.step == 17


# --- (a) it learns --------------------------------------------------------------------------


def test_training_reduces_loss_on_a_learnable_set(tokenizer, tmp_path):
    # a lookup table: each letter has a fixed two-digit answer
    records = [
        {"prompt": f"{letter}=", "answer": f"{(7 * i) % 100:02d}"}
        for i, letter in enumerate("abcdefghijkl")
    ]
    model = build_model(tokenizer, seed=0, **TINY)
    config = TrainConfig(epochs=80, batch_size=6, lr=1e-2, warmup_fraction=0.05, seed=0)
    stats = train(model, tokenizer, records, config, tmp_path / "checkpoint.pt", progress=False)
    losses = stats["loss_curve"]
    assert stats["steps"] == len(losses) == 160
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.25 * first, (first, last)
    assert not model.training  # handed back ready for evaluation

    # and it has learned the table: greedy answers are right
    right = 0
    for r in records:
        ids, _ = encode(tokenizer, [r])
        prompt = torch.tensor([ids[0][: 1 + len(r["prompt"])]])
        with torch.no_grad():
            out = model.generate(
                prompt, max_new_tokens=3, do_sample=False, pad_token_id=tokenizer.pad_token_id
            )
        right += (
            tokenizer.decode(out[0, prompt.shape[1] :], skip_special_tokens=True) == r["answer"]
        )
    assert right >= 11, right


# --- (c) a checkpoint of another run is ignored ---------------------------------------------


def _small_records():
    return [{"prompt": f"{c}{d}=", "answer": f"{ord(c) + d}"} for c in "pqrstu" for d in range(4)]


@pytest.mark.parametrize("change", ["lr", "run_id", "records", "lead_in", "stages"])
def test_checkpoint_of_another_configuration_is_ignored(tokenizer, tmp_path, caplog, change):
    records = _small_records()  # 24 records, 6 steps of 4 per epoch, 12 steps in all
    config = TrainConfig(epochs=2, batch_size=4, lr=1e-3, checkpoint_every=5, seed=0)
    checkpoint = tmp_path / "checkpoint.pt"

    first = build_model(tokenizer, seed=0, **TINY)
    train(first, tokenizer, records, config, checkpoint, run_id="a", progress=False)
    assert torch.load(checkpoint, weights_only=False)["state"]["step"] == 10  # last one saved

    # control: the same run takes the checkpoint and only runs the last two steps
    same = build_model(tokenizer, seed=0, **TINY)
    calls = count_forward_calls(same)
    train(same, tokenizer, records, config, checkpoint, run_id="a", progress=False)
    assert len(calls) == 2
    assert same_weights(same.state_dict(), first.state_dict())

    other_config, run_id, other_records, lead_in, stages = config, "a", records, 0, ()
    if change == "lr":
        other_config = TrainConfig(epochs=2, batch_size=4, lr=2e-3, checkpoint_every=5, seed=0)
    elif change == "run_id":
        run_id = "b"
    elif change == "records":
        other_records = records[:-4]  # 20 records: 5 steps per epoch, 10 in all
    elif change == "lead_in":
        lead_in = 4  # the same 24 records: 1 lead-in step, then 2 x 5 steps
    else:
        stages = (Stage(4, 3), Stage(20))  # the same records: 3 x 1 steps, then 2 x 5 steps
    total = 3 + 10 if stages else -(-lead_in // 4) + 2 * -(-(len(other_records) - lead_in) // 4)

    other = build_model(tokenizer, seed=0, **TINY)
    calls = count_forward_calls(other)
    with caplog.at_level("WARNING", logger="ftdag.core.train"):
        stats = train(
            other,
            tokenizer,
            other_records,
            other_config,
            checkpoint,
            run_id,
            progress=False,
            lead_in=lead_in,
            stages=stages,
        )
    assert len(calls) == total  # started from step 0
    assert stats["steps"] == len(stats["loss_curve"]) == total
    assert "ignoring" in caplog.text

    fresh = build_model(tokenizer, seed=0, **TINY)
    train(
        fresh,
        tokenizer,
        other_records,
        other_config,
        tmp_path / "fresh.pt",
        run_id=run_id,
        lead_in=lead_in,
        stages=stages,
    )
    assert same_weights(other.state_dict(), fresh.state_dict())


def test_stages_run_in_order_and_are_recorded(tokenizer, tmp_path, caplog):
    """Two stages of 8 and 16 records: 2 steps of 4 twice, then 4 steps for the run's 2 epochs.
    Validations count the last stage's epochs, as they counted the epochs after a lead-in."""
    records = _small_records()
    stages = (Stage(8, 2, ("p",)), Stage(16))
    data = PromptAnswerData(tokenizer, records, stages=stages)
    config = TrainConfig(epochs=2, batch_size=4, lr=1e-3, seed=0)
    model = build_model(tokenizer, seed=0, **TINY)
    seen = []
    original = data.batch
    data.batch = lambda indices: (seen.append(list(indices)), original(indices))[1]
    validation = Validation(lambda _: {"score": 1.0})
    with caplog.at_level("INFO", logger="ftdag.core.train"):
        stats = core_train.train(model, data, config, tmp_path / "c.pt", validation=validation)
    assert stats["steps"] == 2 * 2 + 2 * 4
    assert all(i < 8 for batch in seen[:4] for i in batch)  # stage 1 first, twice
    assert sorted(i for batch in seen[4:8] for i in batch) == list(range(8, 24))
    assert stats["epochs"] == 2
    assert stats["stages"] == [
        {"tasks": ["p"], "samples": 8, "epochs": 2, "first_step": 0, "steps": 4},
        {"samples": 16, "epochs": 2, "first_step": 4, "steps": 8},
    ]
    assert [v["epoch"] for v in stats["validations"]] == [1, 2]
    assert [v["step"] for v in stats["validations"]] == [8, 12]
    passes = [r.getMessage().split(" done")[0] for r in caplog.records if " done:" in r.message]
    assert passes == [
        "stage 1/2 epoch 1/2",
        "stage 1/2 epoch 2/2",
        "stage 2/2 epoch 1/2",
        "stage 2/2 epoch 2/2",
    ]
    with pytest.raises(ValueError, match="do not divide the 24 records"):
        PromptAnswerData(tokenizer, records, stages=(Stage(8, 1), Stage(8)))


# --- (b), (d) killed and preempted runs, in subprocesses ------------------------------------
#
# Importing torch and transformers costs several CPU-seconds, far more than these runs take to
# train. So one helper process imports them once and forks a child per run (a fork server); the
# tests signal the children by pid, as a scheduler would signal a job.

HELPER = '''
"""Fork server: imports once, then for each command on stdin:
  start DIR  -> forks a child that trains a tiny model with fixed seeds in DIR (checkpoint.pt
                while it runs; final.pt, a state_dict, and stats.json at the end); replies the pid
  wait PID   -> waits for that child; replies its return code (negative: killed by a signal)
"""

import json
import os
import signal
import sys
import traceback
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)

from ftdag.core.batches import PromptAnswerData
from ftdag.core.model import build_model
from ftdag.core.schedule import Stage
from ftdag.core.tokenizer import build_tokenizer
from ftdag.core.train import TrainConfig, train
from ftdag.exp3.tasks import sample_examples
from ftdag.exp3.world import generate_world


def run(out):
    world = generate_world(seed=0, n_cities=30, n_continents=3, n_atlantis=6, map_size=100)
    rng = np.random.default_rng(0)
    examples = sample_examples(["distance", "compass"], 160, world, rng, False)
    records = [e.to_record("standard") for e in examples]
    tokenizer = build_tokenizer()
    model = build_model(
        tokenizer,
        hidden_size=32,
        intermediate_size=64,
        num_attention_heads=2,
        num_hidden_layers=1,
        seed=0,
    )
    calls = []
    model.register_forward_pre_hook(lambda *_: calls.append(1))
    config = TrainConfig(epochs=30, batch_size=4, lr=1e-3, checkpoint_every=25, seed=0)
    # Three stages: 60 records once (15 steps), 60 twice (30 steps), then 40 for the run's
    # epochs. The first checkpoint (step 25), where the tests stop a run, falls inside the
    # second stage, so a resumed run starts mid-stage and crosses into the third.
    stages = (Stage(60, 1), Stage(60, 2), Stage(40))
    data = PromptAnswerData(tokenizer, records, stages=stages)
    stats = train(model, data, config, out / "checkpoint.pt", "tiny", progress=False)
    torch.save(model.state_dict(), out / "final.pt")
    stats["forward_calls"] = len(calls)
    (out / "stats.json").write_text(json.dumps(stats))


children = set()
print("ready", flush=True)
for line in sys.stdin:
    command, argument = line.split()
    if command == "start":
        out = Path(argument)
        out.mkdir(parents=True, exist_ok=True)
        pid = os.fork()
        if pid == 0:  # the child: trains, never returns to the loop
            log = os.open(out.parent / (out.name + ".log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            os.dup2(log, 1)
            os.dup2(log, 2)
            code = 0
            try:
                run(out)
            except SystemExit as stop:  # Preempted: exit code 143
                code = stop.code
            except BaseException:
                traceback.print_exc()
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        children.add(pid)
        print(pid, flush=True)
    elif command == "wait":
        pid = int(argument)
        _, status = os.waitpid(pid, 0)
        children.discard(pid)
        print(os.waitstatus_to_exitcode(status), flush=True)
for pid in children:  # stdin closed: the tests are over
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
'''
TOTAL_STEPS = 345  # 60 / 4 per batch once, 60 / 4 twice, then 40 / 4 x 30 epochs
CHECKPOINT_EVERY = 25


class ForkServer:
    def __init__(self, root: Path):
        helper = root / "train_tiny.py"
        helper.write_text(HELPER)
        self.root = root
        self.log = open(root / "server.log", "w")  # noqa: SIM115 (closed in close())
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(WORKFLOW), env.get("PYTHONPATH")]))
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1")
        self.process = subprocess.Popen(
            [sys.executable, str(helper)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            bufsize=1,
        )
        self.pids: dict[int, Path] = {}

    def _ask(self, line: str) -> str:
        if line:
            self.process.stdin.write(line + "\n")
            self.process.stdin.flush()
        reply = self.process.stdout.readline().strip()
        if not reply:
            pytest.fail(f"the fork server died:\n{(self.root / 'server.log').read_text()}")
        return reply

    def ready(self) -> None:
        assert self._ask("") == "ready"

    def start(self, run_dir: Path) -> int:
        pid = int(self._ask(f"start {run_dir}"))
        self.pids[pid] = run_dir
        return pid

    def wait(self, pid: int) -> int:
        code = int(self._ask(f"wait {pid}"))
        if code not in (0, -signal.SIGKILL, 143):
            log = self.pids[pid].parent / (self.pids[pid].name + ".log")
            pytest.fail(f"run {pid} failed ({code}):\n{log.read_text()[-3000:]}")
        return code

    def close(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = ForkServer(tmp_path_factory.mktemp("runs"))
    yield server
    server.close()


@pytest.fixture(scope="module")
def reference(server):
    """The uninterrupted run, started at once so that it overlaps the interrupted ones."""
    server.ready()
    run_dir = server.root / "reference"
    pid = server.start(run_dir)
    done = []

    def get():
        if not done:
            assert server.wait(pid) == 0
            done.append(result(run_dir))
        return done[0]

    return get


def wait_for_checkpoint(checkpoint: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not checkpoint.exists():
        if time.monotonic() > deadline:
            pytest.fail(f"no checkpoint appeared: see {checkpoint.parent}.log")
        time.sleep(0.001)


def checkpoint_step(checkpoint: Path) -> int:
    return torch.load(checkpoint, weights_only=False)["state"]["step"]


def result(run_dir: Path) -> tuple[dict, dict]:
    weights = torch.load(run_dir / "final.pt", weights_only=True)
    return weights, json.loads((run_dir / "stats.json").read_text())


def _check_resumed(run_dir: Path, resumed_from: int, reference) -> None:
    ref_weights, ref_stats = reference()
    assert ref_stats["steps"] == ref_stats["forward_calls"] == TOTAL_STEPS
    weights, stats = result(run_dir)
    assert stats["steps"] == TOTAL_STEPS
    assert stats["forward_calls"] == TOTAL_STEPS - resumed_from  # it did resume
    assert stats["loss_curve"] == ref_stats["loss_curve"]
    assert set(weights) == set(ref_weights)
    for name in ref_weights:
        assert torch.equal(weights[name], ref_weights[name]), name


def test_killed_run_resumes_to_identical_weights(server, reference):
    run_dir = server.root / "killed"
    checkpoint = run_dir / "checkpoint.pt"
    pid = server.start(run_dir)
    wait_for_checkpoint(checkpoint)
    os.kill(pid, signal.SIGKILL)
    assert server.wait(pid) == -signal.SIGKILL  # really killed, not finished
    step = checkpoint_step(checkpoint)
    assert 0 < step < TOTAL_STEPS
    assert step % CHECKPOINT_EVERY == 0
    assert not (run_dir / "final.pt").exists()

    assert server.wait(server.start(run_dir)) == 0
    _check_resumed(run_dir, step, reference)


def test_sigterm_saves_a_checkpoint_and_exits_143(server, reference):
    run_dir = server.root / "terminated"
    checkpoint = run_dir / "checkpoint.pt"
    pid = server.start(run_dir)
    wait_for_checkpoint(checkpoint)
    seen = checkpoint_step(checkpoint)
    time.sleep(0.02)  # let the run get past the step it has just checkpointed
    os.kill(pid, signal.SIGTERM)
    assert server.wait(pid) == 143
    step = checkpoint_step(checkpoint)
    assert seen < step < TOTAL_STEPS  # saved at the end of the step it was in
    assert not (run_dir / "final.pt").exists()

    assert server.wait(server.start(run_dir)) == 0
    _check_resumed(run_dir, step, reference)
