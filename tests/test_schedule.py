"""The staged schedule: where each step is, which samples it trains on, its learning rate, all
functions of the step alone, so that a resumed run sees what an uninterrupted one saw."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from ftdag.core.schedule import (
    LEAD_IN_EPOCH,
    Position,
    Schedule,
    Stage,
    StagedSchedule,
    epoch_order,
    lead_in_stages,
    lr_factor,
)

# 16 samples in three stages; batches of 3: 2, 3 and 2 steps per pass
STAGES = (Stage(5, 1, ("distance",)), Stage(7, 2), Stage(4, None, ("angle", "compass")))


def schedule(seed: int = 0) -> StagedSchedule:
    return StagedSchedule.of(STAGES, epochs=3, batch_size=3, seed=seed)


def test_stages_take_their_own_epochs_or_the_runs():
    s = schedule()
    assert [stage.epochs for stage in s.stages] == [1, 2, 3]
    assert [s.steps_per_epoch(k) for k in range(3)] == [2, 3, 2]
    assert [s.first_step(k) for k in range(4)] == [0, 2, 8, 14]
    assert [s.first_sample(k) for k in range(4)] == [0, 5, 12, 16]
    assert (s.total_steps, s.n_samples) == (14, 16)


def test_positions_by_hand():
    s = schedule()
    expected = [(0, 0, 0), (0, 0, 1)]  # stage 1, once
    expected += [(1, e, b) for e in range(2) for b in range(3)]  # stage 2, twice
    expected += [(2, e, b) for e in range(3) for b in range(2)]  # stage 3, three times
    assert [s.position(step) for step in range(14)] == [Position(*p) for p in expected]
    assert [step for step in range(14) if s.ends_pass(step)] == [1, 4, 7, 9, 11, 13]
    for step in (-1, 14):
        with pytest.raises(ValueError, match="not in the schedule's 14 steps"):
            s.position(step)


def test_each_pass_is_a_shuffle_of_its_stage_and_stages_come_in_order():
    s = schedule()
    seen = [s.batch(step).tolist() for step in range(s.total_steps)]
    flat = [i for batch in seen for i in batch]
    assert len(flat) == 5 + 2 * 7 + 3 * 4
    passes = [flat[:5], flat[5:12], flat[12:19], flat[19:23], flat[23:27], flat[27:31]]
    ranges = [range(0, 5), range(5, 12), range(5, 12), range(12, 16), range(12, 16), range(12, 16)]
    for samples, stage_range in zip(passes, ranges, strict=True):
        assert sorted(samples) == list(stage_range)  # every sample of its stage, once
    assert passes[1] != passes[2] and passes[3] != passes[4]  # shuffled anew each pass
    assert passes[0] != list(range(5))
    # a batch never spans two passes: a pass's last batch is smaller
    assert [len(b) for b in seen] == [3, 2, 3, 3, 1, 3, 3, 1, 3, 1, 3, 1, 3, 1]
    assert schedule(seed=1).order(1, 0).tolist() != s.order(1, 0).tolist()


def test_the_streams_of_a_plain_run_and_of_a_lead_in_are_kept():
    """One stage is the plain epochs of `epoch_order`; a stage before the last draws as the
    lead-in did, so data with a lead-in (and the default pt1) sees the same batches as before."""
    plain = StagedSchedule.of((Stage(10),), 2, 3, seed=4)
    assert plain.order(0, 1).tolist() == epoch_order(4, 1, 10).tolist()
    s = schedule(seed=4)
    assert s.order(2, 1).tolist() == (12 + epoch_order(4, 1, 4)).tolist()
    lead_in_order = np.random.default_rng([4, 2**31]).permutation(5)
    assert s.order(0, 0).tolist() == lead_in_order.tolist()
    assert s.order(1, 0).tolist() != (5 + epoch_order(4, 0, 7)).tolist()  # a stream apart


def test_the_lead_in_schedule_is_a_view_of_two_stages():
    old = Schedule(n_samples=10, lead_in=4, epochs=2, batch_size=3, seed=0)
    staged = StagedSchedule.of((Stage(4, 1), Stage(6)), 2, 3, 0)
    assert old.staged == staged
    assert lead_in_stages(10, 4) == (Stage(4, 1), Stage(6))
    assert lead_in_stages(10, 0) == (Stage(10),)
    assert old.position(1) == (LEAD_IN_EPOCH, 1) and old.position(2) == (0, 0)
    assert old.order(LEAD_IN_EPOCH).tolist() == staged.order(0, 0).tolist()
    assert old.order(1).tolist() == staged.order(1, 1).tolist()
    with pytest.raises(ValueError, match="a lead-in of 10 leaves none of the 10"):
        lead_in_stages(10, 10)


def lr_scheduler(schedule: StagedSchedule):
    """The loop's learning-rate scheduler for `schedule` (peak 0.1, 5% warm-up)."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: schedule.lr_factor(s, 0.05))
    return optimizer, scheduler


def run_steps(optimizer, scheduler, n: int) -> list[float]:
    """The learning rates of the next `n` steps, stepping as the loop does."""
    rates = []
    for _ in range(n):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return rates


@pytest.mark.parametrize("resume_at", [1, 2, 5, 8, 13])  # inside and at the edges of stages
def test_a_resumed_run_sees_the_batches_and_rates_of_an_uninterrupted_one(resume_at):
    """The loop keeps one order per pass while it runs; a restart builds the schedule anew at
    the checkpoint's step, mid-stage or not. Both see the same batches and learning rates."""
    s = schedule()
    uninterrupted, cached = [], (None, None)
    for step in range(s.total_steps):  # as the loop does: one permutation per pass
        p = s.position(step)
        if cached[0] != (p.stage, p.epoch):
            cached = ((p.stage, p.epoch), s.order(p.stage, p.epoch))
        uninterrupted.append(cached[1][p.batch * 3 : (p.batch + 1) * 3].tolist())
    restarted = schedule()  # a new process: nothing carried over but the step
    resumed = [restarted.batch(step).tolist() for step in range(resume_at, s.total_steps)]
    assert resumed == uninterrupted[resume_at:]

    # the learning rate spans all stages: warm-up, then one decay across their boundaries
    rates = run_steps(*lr_scheduler(s), s.total_steps)
    assert rates[0] == pytest.approx(0.1) and rates[-1] > 0
    assert rates == sorted(rates, reverse=True)
    # a checkpoint at `resume_at` holds the scheduler's state; a restart loads it into its own
    optimizer, scheduler = lr_scheduler(s)
    run_steps(optimizer, scheduler, resume_at)
    state = scheduler.state_dict()
    optimizer, scheduler = lr_scheduler(restarted)
    scheduler.load_state_dict(state)
    resumed_rates = run_steps(optimizer, scheduler, s.total_steps - resume_at)
    assert resumed_rates == rates[resume_at:]


def test_without_restarts_the_rate_is_one_warm_up_and_decay_over_the_run():
    s = schedule()
    warmup = max(1, int(0.05 * s.total_steps))
    assert s.lr_segments() == [(0, s.total_steps)]
    for step in range(s.total_steps + 1):
        assert s.lr_factor(step, 0.05) == lr_factor(step, s.total_steps, warmup)


def restarting(*restart_at: int) -> StagedSchedule:
    stages = tuple(replace(st, restart_lr=k in restart_at) for k, st in enumerate(STAGES))
    return StagedSchedule.of(stages, epochs=3, batch_size=3, seed=0)


def test_a_stage_that_restarts_the_rate_warms_up_and_decays_on_its_own():
    s = restarting(1)  # steps 0-1 (stage 1), then 2-13 (stages 2 and 3) anew
    assert s.lr_segments() == [(0, 2), (2, 14)]
    rates = [s.lr_factor(step, 0.25) for step in range(14)]
    assert rates[:2] == [1.0, 1.0]  # the first stretch: a warm-up step, then decay (to 0 at 2)
    assert rates[2:5] == [pytest.approx(1 / 3), pytest.approx(2 / 3), 1.0]  # warm-up again
    assert rates[4:] == sorted(rates[4:], reverse=True) and rates[-1] == pytest.approx(1 / 9)
    assert s.lr_factor(14, 0.25) == 0.0
    assert restarting(0).lr_segments() == [(0, 14)]  # the first stage starts the run anyway
    assert restarting(1, 2).lr_segments() == [(0, 2), (2, 8), (8, 14)]
    assert s.summary()[1]["restart_lr"] is True and "restart_lr" not in s.summary()[0]


def test_a_resumed_run_with_restarts_sees_the_rates_of_an_uninterrupted_one():
    s = restarting(1, 2)
    rates = run_steps(*lr_scheduler(s), s.total_steps)
    for resume_at in (1, 2, 3, 8, 9):
        optimizer, scheduler = lr_scheduler(s)
        run_steps(optimizer, scheduler, resume_at)
        state = scheduler.state_dict()
        optimizer, scheduler = lr_scheduler(restarting(1, 2))
        scheduler.load_state_dict(state)
        assert run_steps(optimizer, scheduler, s.total_steps - resume_at) == rates[resume_at:]


def test_bad_stages():
    with pytest.raises(ValueError, match="at least one stage"):
        StagedSchedule((), 3, 0)
    with pytest.raises(ValueError, match="stage 2 needs samples and epochs"):
        StagedSchedule((Stage(4, 1), Stage(0, 1)), 3, 0)
    with pytest.raises(ValueError, match="stage 1 needs samples and epochs"):
        StagedSchedule((Stage(4),), 3, 0)  # epochs left to the run, and no run to take them from


def test_describe_and_summary():
    s = schedule()
    assert s.describe(Position(1, 0, 2)) == "stage 2/3 epoch 1/2"
    plain = StagedSchedule.of((Stage(10),), 3, 3, 0)
    assert plain.describe(Position(0, 2, 0)) == "epoch 3/3"
    assert s.summary() == [
        {"tasks": ["distance"], "samples": 5, "epochs": 1, "first_step": 0, "steps": 2},
        {"samples": 7, "epochs": 2, "first_step": 2, "steps": 6},
        {"tasks": ["angle", "compass"], "samples": 4, "epochs": 3, "first_step": 8, "steps": 6},
    ]
