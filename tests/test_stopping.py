"""Early stopping decided from scripted validation histories: each rule alone (minimum epochs,
patience, minimum delta, mode), and when validations fall due."""

import pytest

from ftdag.core.stopping import EarlyStopping, Validation


def history(*values, metric="reward", every=1):
    return [{"epoch": every * (i + 1), metric: v} for i, v in enumerate(values)]


def test_patience_counts_validations_without_improvement():
    rule = EarlyStopping("reward", mode="max", patience=2)
    assert not rule.decide(history(0.1, 0.2, 0.2)).stop  # one without improvement
    decision = rule.decide(history(0.1, 0.2, 0.2, 0.15))
    assert decision.stop and decision.best_epoch == 2 and decision.best_value == 0.2
    assert "did not improve on 0.2 (epoch 2)" in decision.reason
    # an improvement resets the count
    assert not rule.decide(history(0.1, 0.2, 0.19, 0.3, 0.29)).stop


def test_min_delta_is_an_absolute_threshold():
    rule = EarlyStopping("reward", mode="max", patience=2, min_delta=0.01)
    # +0.005 twice is not an improvement by more than 0.01
    assert rule.decide(history(0.5, 0.505, 0.51)).stop
    # +0.02 is
    assert not rule.decide(history(0.5, 0.505, 0.52)).stop


def test_mode_min_watches_a_falling_metric():
    rule = EarlyStopping("loss", mode="min", patience=1)
    assert not rule.decide(history(2.0, 1.5, metric="loss")).stop
    decision = rule.decide(history(2.0, 1.5, 1.6, metric="loss"))
    assert decision.stop and decision.best_epoch == 2


def test_no_stop_before_min_epochs():
    rule = EarlyStopping("reward", mode="max", patience=1, min_epochs=10)
    flat = history(0.3, 0.3, 0.3, every=3)  # epochs 3, 6, 9
    decision = rule.decide(flat)
    assert not decision.stop and "min_epochs is 10" in decision.reason
    assert rule.decide(history(0.3, 0.3, 0.3, 0.3, every=3)).stop  # epoch 12


def test_a_validation_before_training_is_the_first_reference():
    rule = EarlyStopping("reward", mode="max", patience=1)
    entries = [{"epoch": 0, "reward": 0.4}, {"epoch": 1, "reward": 0.3}]
    assert rule.decide(entries).stop  # never beat the untrained model


def test_a_missing_metric_is_named():
    rule = EarlyStopping("validation_reward_mean")
    with pytest.raises(ValueError, match="validation_reward_mean.*epoch 3.*'loss'"):
        rule.decide([{"epoch": 3, "loss": 1.0}])


@pytest.mark.parametrize(
    "kwargs", [{"mode": "up"}, {"patience": 0}, {"min_delta": -1}, {"min_epochs": -1}]
)
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        EarlyStopping("reward", **kwargs)


def test_validation_falls_due_every_k_epochs_and_before_training_when_asked():
    every_three = Validation(evaluate=dict, every_epochs=3, before_training=True)
    assert [e for e in range(0, 10) if every_three.due(e)] == [0, 3, 6, 9]
    assert not Validation(evaluate=dict, every_epochs=2).due(0)
